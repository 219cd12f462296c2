#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An element-wise activation whose derivative is a function of its output, so the
/// backward needs only the saved output (for LeakyReLU with a positive slope, y and x
/// have the same sign).
public final class Activation: Module {
    public enum Kind: Sendable, Equatable {
        case relu
        case leakyReLU(slope: Float)
        case tanh
        case sigmoid
    }

    public let kind: Kind
    private var output: Tensor?
    private var inputGrad: Tensor?

    public init(_ kind: Kind) {
        if case .leakyReLU(let slope) = kind { precondition(slope > 0, "LeakyReLU slope must be positive") }
        self.kind = kind
    }

    public var parameters: [Parameter] { [] }

    /// The result of the last `forward`, if any.
    public var lastOutput: Tensor? { output }

    public func forward(_ x: Tensor) -> Tensor {
        let y = Tensor.reuse(output, shape: x.shape); output = y
        let kind = self.kind
        Parallel.forRanges(x.count, minimumPerChunk: 1 << 18) { range in
            let xp = x.data, yp = y.data
            switch kind {
            case .relu:
                for i in range { let v = xp[i]; yp[i] = v > 0 ? v : 0 }
            case .leakyReLU(let slope):
                for i in range { let v = xp[i]; yp[i] = v > 0 ? v : slope * v }
            case .tanh:
                var i = range.lowerBound
                while i + 16 <= range.upperBound {
                    let v = UnsafeRawPointer(xp + i).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(yp + i).storeBytes(of: rationalTanh(v), as: SIMD16<Float>.self)
                    i += 16
                }
                while i < range.upperBound { yp[i] = tanhf(xp[i]); i += 1 }
            case .sigmoid:
                for i in range { yp[i] = sigmoid(xp[i]) }
            }
        }
        return y
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("Activation.backward before forward") }
        let dx = Tensor.reuse(inputGrad, shape: y.shape); inputGrad = dx
        let kind = self.kind
        Parallel.forRanges(y.count, minimumPerChunk: 1 << 18) { range in
            let yp = y.data, dyp = dy.data, dxp = dx.data
            switch kind {
            case .relu:
                for i in range { dxp[i] = yp[i] > 0 ? dyp[i] : 0 }
            case .leakyReLU(let slope):
                for i in range { dxp[i] = yp[i] > 0 ? dyp[i] : slope * dyp[i] }
            case .tanh:
                for i in range { let t = yp[i]; dxp[i] = dyp[i] * (1 - t * t) }
            case .sigmoid:
                for i in range { let s = yp[i]; dxp[i] = dyp[i] * s * (1 - s) }
            }
        }
        return dx
    }
}

/// tanh of 16 values by a 13/6-degree rational interpolant (the one Eigen uses), accurate to
/// a few ulp on [-9, 9], beyond which tanh is +-1 in Float: x P(x^2) / Q(x^2). A generator's
/// output layer takes a tanh per pixel, and libm's `tanhf`, one value at a time, was ~4% of
/// generation's time.
@inlinable
public func rationalTanh(_ input: SIMD16<Float>) -> SIMD16<Float> {
    typealias V = SIMD16<Float>
    @inline(__always) func c(_ value: Float) -> V { V(repeating: value) }
    let x = pointwiseMax(pointwiseMin(input, c(9)), c(-9))
    let x2 = x * x
    var p = x2 * c(-2.76076847742355e-16) + c(2.00018790482477e-13)
    p = x2 * p + c(-8.60467152213735e-11)
    p = x2 * p + c(5.12229709037114e-08)
    p = x2 * p + c(1.48572235717979e-05)
    p = x2 * p + c(6.37261928875436e-04)
    p = x2 * p + c(4.89352455891786e-03)
    var q = x2 * c(1.19825839466702e-06) + c(1.18534705686654e-04)
    q = x2 * q + c(2.26843463243900e-03)
    q = x2 * q + c(4.89352518554385e-03)
    return pointwiseMax(pointwiseMin(x * p / q, c(1)), c(-1))
}

/// 1 / (1 + e^-x), without overflow for large |x|.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
