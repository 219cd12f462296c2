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
                for i in range { yp[i] = tanhf(xp[i]) }
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

/// 1 / (1 + e^-x), without overflow for large |x|.
@inlinable
public func sigmoid(_ x: Float) -> Float {
    if x >= 0 { return 1 / (1 + expf(-x)) }
    let e = expf(x)
    return e / (1 + e)
}
