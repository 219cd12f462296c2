/// Batch normalisation over (B, H, W) for each channel of an NCHW tensor, as PyTorch's
/// BatchNorm2d: eps 1e-5, momentum 0.1, biased variance to normalise, unbiased variance in
/// the running estimate.
public final class BatchNorm2d: Module {
    public let gamma: Parameter
    public let beta: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    private let name: String
    public private(set) var isTraining = true

    private var normalized: Tensor?   // x-hat, kept for backward
    private var invStd: [Float]
    private var output: Tensor?
    private var inputGrad: Tensor?

    public init(_ name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.channels = channels
        self.eps = eps
        self.momentum = momentum
        gamma = Parameter("\(name).weight", shape: [channels])
        beta = Parameter("\(name).bias", shape: [channels])
        gamma.value.fill(1)
        runningMean = Tensor(zeros: [channels])
        runningVar = Tensor(zeros: [channels])
        runningVar.fill(1)
        invStd = Array(repeating: 1, count: channels)
        self.name = name
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var buffers: [NamedTensor] {
        [NamedTensor("\(name).running_mean", runningMean), NamedTensor("\(name).running_var", runningVar)]
    }
    public func setTraining(_ training: Bool) { isTraining = training }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == channels,
                     "BatchNorm2d expects (B, \(channels), H, W), got \(x.shape)")
        let batch = x.shape[0]
        let area = x.shape[2] * x.shape[3]
        let y = Tensor.reuse(output, shape: x.shape); output = y
        let xhat = Tensor.reuse(normalized, shape: x.shape); normalized = xhat
        let perChannel = batch * area
        let stride = channels * area
        invStd.withUnsafeMutableBufferPointer { invStd in
            Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(perChannel, 1))) { range in
                for c in range {
                    let base = c * area
                    let (mean, inv) = statistics(x, channel: c)
                    invStd[c] = inv
                    let scale = gamma.value[c], shift = beta.value[c]
                    for b in 0..<batch {
                        let xp = x.data + b * stride + base
                        let hp = xhat.data + b * stride + base
                        let yp = y.data + b * stride + base
                        for i in 0..<area {
                            let h = (xp[i] - mean) * inv
                            hp[i] = h
                            yp[i] = h * scale + shift
                        }
                    }
                }
            }
        }
        return y
    }

    /// Channel c's mean and 1 / sqrt(variance + eps) to normalise x (B, C, H, W) with: this
    /// batch's in training mode (updating the running estimates), the running ones otherwise.
    /// Channels are independent: parallel loops over them may call this for their own.
    func statistics(_ x: Tensor, channel c: Int) -> (mean: Float, invStd: Float) {
        guard isTraining else { return (runningMean[c], 1 / (runningVar[c] + eps).squareRoot()) }
        let batch = x.shape[0], area = x.shape[2] * x.shape[3]
        let stride = channels * area, base = c * area, perChannel = batch * area
        // Two passes (mean, then squared deviations): E[x^2] - mean^2 cancels badly.
        let mean = sum(runs: batch, of: area, stride: stride, from: x.data + base) / Float(perChannel)
        let squares = sumOfSquaredDeviations(runs: batch, of: area, stride: stride, from: x.data + base, center: mean)
        let variance = squares / Float(perChannel)
        let unbiased = perChannel > 1 ? squares / Float(perChannel - 1) : variance
        runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mean
        runningVar[c] = (1 - momentum) * runningVar[c] + momentum * unbiased
        return (mean, 1 / (variance + eps).squareRoot())
    }

    /// dy has the input's shape; returns dx.
    ///
    /// Training mode: with xhat the normalised input and N = B*H*W,
    /// dx = invStd / N * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), dxhat = dy * gamma.
    /// Inference mode: dx = dy * gamma * invStd.
    public func backward(_ dy: Tensor, parameterGradients: Bool = true) -> Tensor {
        guard let xhat = normalized else { preconditionFailure("BatchNorm2d.backward before forward") }
        let shape = xhat.shape
        let batch = shape[0], area = shape[2] * shape[3]
        let dx = Tensor.reuse(inputGrad, shape: shape); inputGrad = dx
        let perChannel = batch * area
        let stride = channels * area
        let training = isTraining
        invStd.withUnsafeBufferPointer { invStd in
            Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(perChannel, 1))) { range in
                for c in range {
                    let base = c * area
                    var sumDy: Float = 0, sumDyXhat: Float = 0
                    for b in 0..<batch {
                        sumDy += sum(dy.data + b * stride + base, area)
                        sumDyXhat += dot(dy.data + b * stride + base, xhat.data + b * stride + base, area)
                    }
                    if parameterGradients {
                        gamma.grad[c] += sumDyXhat
                        beta.grad[c] += sumDy
                    }
                    let g = gamma.value[c], inv = invStd[c]
                    if training {
                        let n = Float(perChannel)
                        let meanDy = sumDy / n
                        let meanDyXhat = sumDyXhat / n
                        let k = g * inv
                        for b in 0..<batch {
                            let dyp = dy.data + b * stride + base
                            let hp = xhat.data + b * stride + base
                            let dxp = dx.data + b * stride + base
                            for i in 0..<area { dxp[i] = k * (dyp[i] - meanDy - hp[i] * meanDyXhat) }
                        }
                    } else {
                        let k = g * inv
                        for b in 0..<batch {
                            let dyp = dy.data + b * stride + base
                            let dxp = dx.data + b * stride + base
                            for i in 0..<area { dxp[i] = k * dyp[i] }
                        }
                    }
                }
            }
        }
        return dx
    }
}
