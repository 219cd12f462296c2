import CUDA
import Engine

/// BatchNorm in training mode (batch statistics, running averages updated) fused with the
/// activation that follows it, as `Engine/Layers/BatchNorm2d.swift` then `Activation`: one
/// kernel forward and one backward where an eager framework runs three or four.
public final class DeviceBatchNorm {
    public enum FusedActivation: Int32, Sendable {
        case none = 0, relu = 1, leakyReLU = 2
    }

    public let layer: BatchNorm2d
    public let activation: FusedActivation
    public let slope: Float
    let gamma: DeviceTensor, gammaGradient: DeviceTensor
    let beta: DeviceTensor, betaGradient: DeviceTensor
    /// The running statistics (the CPU layer's buffers, uploaded; `downloadBuffers` returns them).
    public let runningMean: DeviceTensor, runningVar: DeviceTensor
    private let mean: DeviceTensor, invStd: DeviceTensor
    private var output: DeviceTensor?, normalized: DeviceTensor?, inputGradient: DeviceTensor?

    public init(_ layer: BatchNorm2d, activation: FusedActivation = .none, slope: Float = 0.2, arena: ParameterArena) throws(CUDAError) {
        self.layer = layer
        self.activation = activation
        self.slope = slope
        gamma = arena.value(layer.gamma)
        gammaGradient = arena.gradient(layer.gamma)
        beta = arena.value(layer.beta)
        betaGradient = arena.gradient(layer.beta)
        let device = arena.device
        runningMean = try DeviceTensor(layer.runningMean, on: device)
        runningVar = try DeviceTensor(layer.runningVar, on: device)
        mean = try DeviceTensor(on: device, shape: [layer.channels])
        invStd = try DeviceTensor(on: device, shape: [layer.channels])
    }

    var device: any KernelDevice { gamma.device }

    /// x (B, C, H, W) -> act(gamma * (x - mean) / std + beta), statistics of this batch.
    public func forward(_ x: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        precondition(x.shape.count == 4 && x.shape[1] == layer.channels, "BatchNorm2d expects (B, \(layer.channels), H, W), got \(x.shape)")
        let y = try DeviceTensor.reuse(output, shape: x.shape, on: device)
        let xhat = try DeviceTensor.reuse(normalized, shape: x.shape, on: device)
        (output, normalized) = (y, xhat)
        try device.launch("batchnorm_forward_training", grid: layer.channels, block: 256,
                          [x.argument, y.argument, xhat.argument, gamma.argument, beta.argument, mean.argument, invStd.argument,
                           runningMean.argument, runningVar.argument, .int32(Int32(x.shape[0])), .int32(Int32(layer.channels)),
                           .int32(Int32(x.shape[2] * x.shape[3])), .float(layer.eps), .float(layer.momentum),
                           .int32(activation.rawValue), .float(slope)])
        return y
    }

    /// dy of the activation's output -> dx, and gamma's and beta's gradients added when
    /// `parameterGradients` (the kernel computes them anyway: they are the sums dx needs).
    public func backward(_ dy: DeviceTensor, parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor {
        guard let y = output, let xhat = normalized else { preconditionFailure("BatchNorm2d.backward before forward") }
        let dx = try DeviceTensor.reuse(inputGradient, shape: y.shape, on: device)
        inputGradient = dx
        // Without parameter gradients the sums go to the scratch statistics (mean is no longer needed).
        let (dgamma, dbeta) = parameterGradients ? (gammaGradient, betaGradient) : (mean, mean)
        try device.launch("batchnorm_backward_training", grid: layer.channels, block: 256,
                          [dy.argument, y.argument, xhat.argument, gamma.argument, invStd.argument, dx.argument, dgamma.argument,
                           dbeta.argument, .int32(Int32(y.shape[0])), .int32(Int32(layer.channels)),
                           .int32(Int32(y.shape[2] * y.shape[3])), .int32(activation.rawValue), .float(slope)])
        return dx
    }

    /// The running statistics into the CPU layer (before a checkpoint save).
    public func downloadBuffers() throws(CUDAError) {
        let means = try runningMean.values(), variances = try runningVar.values()
        for c in 0..<layer.channels { layer.runningMean[c] = means[c]; layer.runningVar[c] = variances[c] }
    }
}
