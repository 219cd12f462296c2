import CUDA
import Engine

/// ReLU, LeakyReLU and Tanh on a device, forward and backward (`Engine/Layers/Activations.swift`);
/// element-wise, so outputs keep their input's layout.
public final class DeviceActivation {
    public let kind: Activation.Kind
    private var input: DeviceTensor?, output: DeviceTensor?, inputGradient: DeviceTensor?

    public init(_ kind: Activation.Kind) {
        precondition(kind != .sigmoid, "no sigmoid kernel: the losses take logits")
        self.kind = kind
    }

    /// The last forward pass's output.
    public var lastOutput: DeviceTensor? { output }

    /// y = act(x), or with `bias` (LeakyReLU only) act(x + bias per channel): the bias a
    /// convolution left out of x (`DeviceConv2d.biasUse`), added in the same
    /// pass. The backward pass then reads the sign of y, which is that of x + bias.
    public func forward(_ x: DeviceTensor, bias: DeviceTensor? = nil) throws(CUDAError) -> DeviceTensor {
        let device = x.device
        let y = try DeviceTensor.reuse(output, shape: x.shape, on: device, channelMajor: x.channelMajor)
        (input, output) = (x, y)
        let n = KernelArgument.int64(x.count)
        if let bias {
            guard case .leakyReLU(let slope) = kind else { preconditionFailure("a bias fused into \(kind): LeakyReLU only") }
            precondition(x.count < 1 << 31 && x.shape.count == 4, "leaky_relu_bias_forward: maps indexed in 32 bits")
            try device.launchElementwise("leaky_relu_bias_forward", count: x.count,
                                         [x.argument, bias.argument, y.argument, .int32(Int32(x.shape[1])),
                                          .int32(Int32(x.channelRuns.hw)), n, .float(slope)])
            input = y
            return y
        }
        switch kind {
        case .relu: try device.launchElementwise("relu_forward", count: x.count, [x.argument, y.argument, n])
        case .leakyReLU(let slope): try device.launchElementwise("leaky_relu_forward", count: x.count, [x.argument, y.argument, n, .float(slope)])
        case .tanh: try device.launchElementwise("tanh_forward", count: x.count, [x.argument, y.argument, n])
        case .sigmoid: preconditionFailure()
        }
        return y
    }

    public func backward(_ dy: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        guard let x = input, let y = output else { preconditionFailure("Activation.backward before forward") }
        let device = dy.device
        precondition(dy.channelMajor == y.channelMajor, "Activation.backward: dy laid out as its output")
        let dx = try DeviceTensor.reuse(inputGradient, shape: y.shape, on: device, channelMajor: y.channelMajor)
        inputGradient = dx
        let n = KernelArgument.int64(y.count)
        switch kind {
        case .relu: try device.launchElementwise("relu_backward", count: y.count, [x.argument, dy.argument, dx.argument, n])
        case .leakyReLU(let slope):
            try device.launchElementwise("leaky_relu_backward", count: y.count, [x.argument, dy.argument, dx.argument, n, .float(slope)])
        case .tanh: try device.launchElementwise("tanh_backward", count: y.count, [y.argument, dy.argument, dx.argument, n])
        case .sigmoid: preconditionFailure()
        }
        return dx
    }
}
