import CUDA
import Engine
import GPUEngine

/// DiffAugment on a device (`DiffAugment`'s maps: colour, translation, cutout), one use per
/// instance: the step's real batch, generated batch for D, generated batch for G each get
/// their own, so that the G step's backward pass uses the parameters of its forward pass.
///
/// Parameters are drawn on the device from `seed` and the step counter in device memory (new
/// ones every step without the host, as a captured graph needs), so they are not the CPU
/// augmentation's draws: tests check the maps against their definition instead.
///
/// Each transform is drawn with the probability in `probability` (one float in device memory:
/// 1 for DiffAugment, adaptive augmentation's p otherwise, which the step moves on the device).
public final class DeviceDiffAugment {
    public let policy: DiffAugment.Policy
    public let seed: UInt64
    let counter: DeviceBuffer
    let probability: DeviceTensor
    private var parameters: DeviceTensor?
    private var output: DeviceTensor?, inputGradient: DeviceTensor?

    /// `counter`: the step's 64-bit step counter (shared by every draw of the step);
    /// `probability`: one float, each transform's chance.
    public init(policy: DiffAugment.Policy, seed: UInt64, counter: DeviceBuffer, probability: DeviceTensor) {
        precondition(probability.count == 1, "the probability is one float")
        self.policy = policy
        self.seed = seed
        self.counter = counter
        self.probability = probability
    }

    /// x (B, C, H, W) -> augmented images, with parameters drawn for this step.
    public func forward(_ x: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        let device = x.device, batch = x.shape[0]
        let p = try DeviceTensor.reuse(parameters, shape: [batch, 8], on: device)
        let y = try DeviceTensor.reuse(output, shape: x.shape, on: device)
        (parameters, output) = (p, y)
        try device.launch("augment_draw", grid: (batch + 31) / 32, block: 32,
                          [p.argument, .int32(Int32(batch)), .int32(Int32(x.shape[2])), .int32(Int32(x.shape[3])),
                           .int32(Int32(policy.rawValue)), .uint64(seed), .buffer(counter), probability.argument])
        try device.launch("augment_forward", grid: batch, block: AugmentKernels.block,
                          [x.argument, y.argument, p.argument] + geometry(x))
        return y
    }

    /// d loss / d augmented -> d loss / d images (the adjoint of the last forward map).
    public func backward(_ dy: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        guard let p = parameters else { preconditionFailure("DiffAugment.backward before forward") }
        let dx = try DeviceTensor.reuse(inputGradient, shape: dy.shape, on: dy.device)
        inputGradient = dx
        try dy.device.launch("augment_backward", grid: dy.shape[0], block: AugmentKernels.block,
                             [dy.argument, dx.argument, p.argument] + geometry(dy))
        return dx
    }

    /// The parameters of the last forward pass, 8 floats per image (brightness, saturation,
    /// contrast, shift x, shift y, cut x, cut y, cut size), or nil before one.
    public var drawnParameters: DeviceTensor? { parameters }

    private func geometry(_ x: DeviceTensor) -> [KernelArgument] {
        [.int32(Int32(x.shape[1])), .int32(Int32(x.shape[2])), .int32(Int32(x.shape[3]))]
    }
}
