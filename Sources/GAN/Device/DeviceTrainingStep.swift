import CUDA
import Engine
import GPUEngine

/// `TrainingStep` on a `KernelDevice`: the reference step (D on real and on generated images,
/// Adam on D, G through the updated D, Adam on G), every tensor in device memory, the losses
/// included. Built from a CPU step, whose models and optimisers it mirrors and, after
/// `download`, brings up to date (checkpoints stay the CPU format).
///
/// This form runs the reference model's step: BatchNorm discriminator, BCE on logits, no
/// DiffAugment or regularisers (the daemon's default adds those; they come next).
public final class DeviceTrainingStep {
    public let step: TrainingStep
    public let device: any KernelDevice
    public let generator: DeviceGenerator
    public let discriminator: DeviceDiscriminator
    let generatorOptimizer: DeviceAdam
    let discriminatorOptimizer: DeviceAdam
    /// Loss and mean logit of D on real images, on generated ones, and G's (2 floats each).
    private let losses: DeviceTensor
    private var logitGradient: DeviceTensor?

    public init(_ step: TrainingStep, on device: any KernelDevice) throws(CUDAError) {
        precondition(step.loss == .nonSaturating && step.augmentation == nil && step.consistency == nil && step.leCam == nil,
                     "the device step runs the reference step (BCE, no augmentation or regularisers) so far")
        self.step = step
        self.device = device
        generator = try DeviceGenerator(step.generator, on: device)
        discriminator = try DeviceDiscriminator(step.discriminator, on: device)
        generatorOptimizer = try DeviceAdam(step.generatorOptimizer, arena: generator.arena)
        discriminatorOptimizer = try DeviceAdam(step.discriminatorOptimizer, arena: discriminator.arena)
        losses = try DeviceTensor(on: device, shape: [6])
    }

    /// One step on a real batch with the caller's noise and fake labels; the report is read
    /// back (a synchronisation: the daemon reads it every few steps only).
    @discardableResult
    public func callAsFunction(real: DeviceTensor, realLabels: DeviceLabels, noise z: DeviceTensor,
                               fakeLabels: DeviceLabels) throws(CUDAError) -> StepReport {
        try run(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        return try report()
    }

    /// The step without reading anything back.
    public func run(real: DeviceTensor, realLabels: DeviceLabels, noise z: DeviceTensor, fakeLabels: DeviceLabels) throws(CUDAError) {
        let batch = real.shape[0]
        let dLogits = try DeviceTensor.reuse(logitGradient, shape: [batch], on: device)
        logitGradient = dLogits
        let fake = try generator.forward(z, labels: fakeLabels)

        // D step: the two halves' gradients add up, as for the sum of the two losses.
        try discriminator.arena.zeroGradients()
        let realLogits = try discriminator.forward(real, labels: realLabels)
        try bce(realLogits, target: 1, gradient: dLogits, slot: 0)
        try discriminator.backward(dLogits, inputGradient: false)
        let fakeLogits = try discriminator.forward(fake, labels: fakeLabels)
        try bce(fakeLogits, target: 0, gradient: dLogits, slot: 1)
        try discriminator.backward(dLogits, inputGradient: false)
        try discriminatorOptimizer.update()

        // G step through the updated D.
        try generator.arena.zeroGradients()
        let logits = try discriminator.forward(fake, labels: fakeLabels)
        try bce(logits, target: 1, gradient: dLogits, slot: 2)
        let dFake = try discriminator.backward(dLogits, inputGradient: true, parameterGradients: false)!
        try generator.backward(dFake)
        try generatorOptimizer.update()
    }

    private func bce(_ logits: DeviceTensor, target: Float, gradient: DeviceTensor, slot: Int) throws(CUDAError) {
        let out = DeviceTensor(storage: losses.storage, offset: losses.offset + 2 * slot, shape: [2])
        try device.launch("bce_logits", grid: 1, block: LossKernels.block,
                          [logits.argument, gradient.argument, out.argument, .int64(logits.count), .float(target)])
    }

    /// The last step's losses and mean logits.
    public func report() throws(CUDAError) -> StepReport {
        let v = try losses.values()
        return StepReport(discriminatorLoss: v[0] + v[2], generatorLoss: v[4], realLogitMean: v[1], fakeLogitMean: v[3])
    }

    /// The images of the last generator forward pass.
    public func lastImages() throws(CUDAError) -> Tensor? { try generator.tanh.lastOutput?.tensor() }

    /// Everything into the CPU step's models and optimisers: parameters, running statistics,
    /// Adam's moments and step counts, and the last gradients (so that a checkpoint, or a
    /// test, sees what the CPU step would hold).
    public func download() throws(CUDAError) {
        try generator.download()
        try discriminator.download()
        try generator.arena.downloadGradients()
        try discriminator.arena.downloadGradients()
        try generatorOptimizer.download()
        try discriminatorOptimizer.download()
    }
}
