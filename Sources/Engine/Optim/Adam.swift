/// Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam: the optional weight
/// decay is L2 (added to the gradient) unless `decoupledWeightDecay` (AdamW) is set.
public final class Adam: @unchecked Sendable {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float
    public var weightDecay: Float
    public let decoupledWeightDecay: Bool
    /// Updates taken so far (for bias correction).
    public private(set) var step: Int = 0
    /// First and second moment estimates, one per parameter.
    public let firstMoments: [Tensor]
    public let secondMoments: [Tensor]

    public init(_ parameters: [Parameter], learningRate: Float = 2e-4,
                beta1: Float = 0.5, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        firstMoments = parameters.map { Tensor(zeros: $0.shape) }
        secondMoments = parameters.map { Tensor(zeros: $0.shape) }
    }

    /// One update from the accumulated gradients (which it leaves as they are).
    public func update() {
        step += 1
        let correction1 = 1 - pow(beta1, step)
        let correction2 = 1 - pow(beta2, step)
        // PyTorch: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)
        let stepSize = learningRate / correction1
        let rootCorrection2 = correction2.squareRoot()
        let (b1, b2, eps, wd, decoupled, lr) = (beta1, beta2, self.eps, weightDecay, decoupledWeightDecay, learningRate)
        for (index, parameter) in parameters.enumerated() {
            let p = parameter.value.data, g = parameter.grad.data
            let m = firstMoments[index].data, v = secondMoments[index].data
            Parallel.forRanges(parameter.value.count, minimumPerChunk: 1 << 17) { range in
                // 16 lanes at a time with the scalar loop's very operations (IEEE division and
                // square root round the same in a vector): the compiler left the loop scalar
                // (the four buffers might alias), 4% of a bfloat16 training step.
                var i = range.lowerBound
                if wd == 0 {
                    while i + 16 <= range.upperBound {
                        let grad = SIMD16<Float>(loading: g + i)
                        let first = b1 * SIMD16(loading: m + i) + (1 - b1) * grad
                        let second = b2 * SIMD16(loading: v + i) + (1 - b2) * grad * grad
                        let change = stepSize * first / (second.squareRoot() / rootCorrection2 + eps)
                        first.store(to: m + i)
                        second.store(to: v + i)
                        (SIMD16(loading: p + i) - change).store(to: p + i)
                        i += 16
                    }
                }
                for i in i..<range.upperBound {
                    var grad = g[i]
                    if wd != 0 {
                        if decoupled { p[i] -= lr * wd * p[i] } else { grad += wd * p[i] }
                    }
                    m[i] = b1 * m[i] + (1 - b1) * grad
                    v[i] = b2 * v[i] + (1 - b2) * grad * grad
                    p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + eps)
                }
            }
        }
    }

    /// Restores the step count from a checkpoint (the moments are restored through
    /// `firstMoments` and `secondMoments`).
    public func restore(step: Int) { self.step = step }
}

@inlinable func pow(_ base: Float, _ exponent: Int) -> Float {
    var result: Float = 1
    for _ in 0..<exponent { result *= base }
    return result
}

extension SIMD16<Float> {
    /// 16 floats from `pointer` on (any alignment).
    @inline(__always) init(loading pointer: UnsafePointer<Float>) {
        self = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Stores the 16 floats at `pointer` on (any alignment).
    @inline(__always) func store(to pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: SIMD16<Float>.self)
    }
}
