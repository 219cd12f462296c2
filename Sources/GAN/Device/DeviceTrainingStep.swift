import CUDA
import Engine
import GPUEngine

/// `TrainingStep` on a `KernelDevice`: the reference step (D on real and on generated images,
/// Adam on D, G through the updated D, Adam on G), every tensor in device memory, the losses
/// included. Built from a CPU step, whose models and optimisers it mirrors and, after
/// `download`, brings up to date (checkpoints stay the CPU format).
///
/// Both losses (BCE on logits, hinge), DiffAugment (drawn on the device: see
/// `DeviceDiffAugment`), adaptive augmentation (its controller in device memory, moved by
/// `ada_observe` from D's real logits), LeCam regularisation (its anchors in device memory),
/// spectral normalisation (`DeviceSpectralNormalization`), consistency regularisation (its
/// translations drawn on the device, as DiffAugment's are) and the mode-seeking term in G's loss
/// (its labels paired by `DeviceBatchSource`, or the caller).
public final class DeviceTrainingStep {
    public let step: TrainingStep
    public let device: any KernelDevice
    public let generator: DeviceGenerator
    public let discriminator: DeviceDiscriminator
    let generatorOptimizer: DeviceAdam
    let discriminatorOptimizer: DeviceAdam
    /// Loss and mean logit of D on real images, on generated ones, and G's (2 floats each),
    /// then LeCam's real and generated parts, then the augmentation's state (`AdaptiveAugmentation
    /// .state`: p first; {1, 0, 0, 0} for DiffAugment's fixed p), then consistency
    /// regularisation's loss, then the mode-seeking term's, so one read brings them all.
    private let losses: DeviceTensor
    /// The floats of `losses`.
    static let lossValues = 14
    /// The last `reportSlots` steps' `losses`, step t in slot t % reportSlots (t: the step
    /// counter's value during the step), written by every step so that `reports(last:through:)`
    /// reads many steps' losses in one copy.
    private let recentLosses: DeviceTensor
    /// Steps `recentLosses` remembers: the most steps `reports(last:through:)` may be asked for.
    public static let reportSlots = 64
    private var augmentationState: DeviceTensor { Self.augmentationState(in: losses) }
    private static func augmentationState(in losses: DeviceTensor) -> DeviceTensor {
        DeviceTensor(storage: losses.storage, offset: losses.offset + 8, shape: [4])
    }
    /// LeCam's anchors {real, fake}, when the step has the term.
    private let leCamAnchors: DeviceTensor?
    /// The mode-seeking term's distances {image, code}, when the step has the term.
    private let modeSeekingSums: DeviceTensor?
    private var logitGradient: DeviceTensor?

    /// Whether BatchNorm may reduce a large channel over several blocks
    /// (`DeviceBatchNorm.splitsLargeChannels`; set before the first step).
    public var splitsBatchNormChannels: Bool {
        get { (generator.norms + discriminator.norms).allSatisfy(\.splitsLargeChannels) }
        set { for norm in generator.norms + discriminator.norms { norm.splitsLargeChannels = newValue } }
    }

    public init(_ step: TrainingStep, on device: any KernelDevice) throws(CUDAError) {
        self.step = step
        self.device = device
        generator = try DeviceGenerator(step.generator, on: device)
        discriminator = try DeviceDiscriminator(step.discriminator, on: device)
        generatorOptimizer = try DeviceAdam(step.generatorOptimizer, arena: generator.arena)
        discriminatorOptimizer = try DeviceAdam(step.discriminatorOptimizer, arena: discriminator.arena)
        losses = try DeviceTensor(on: device, shape: [Self.lossValues])
        try device.fill(losses, 0)
        recentLosses = try DeviceTensor(on: device, shape: [Self.reportSlots, Self.lossValues])
        let state = Self.augmentationState(in: losses)
        try state.upload(step.augmentation?.adaptive?.state ?? [1, 0, 0, 0])
        if let leCam = step.leCam {
            let anchors = try DeviceTensor(on: device, shape: [2])
            try anchors.upload([leCam.realAnchor, leCam.fakeAnchor])
            leCamAnchors = anchors
        } else {
            leCamAnchors = nil
        }
        modeSeekingSums = step.modeSeeking == nil ? nil : try DeviceTensor(on: device, shape: [2])
        // The counter starts at the steps already taken, so that a resumed run (each time slice
        // of the daemon is one) draws new batches and augmentations rather than the first ones again.
        let counter = try device.upload(count: step.generatorOptimizer.step)
        self.counter = counter
        if let augmentation = step.augmentation {
            // Three draws per step (real, generated for D, generated for G), each its own stream.
            let seed = augmentation.seed
            let probability = DeviceTensor(storage: state.storage, offset: state.offset, shape: [1])
            augmentations = (0..<3).map { DeviceDiffAugment(policy: augmentation.policy, seed: seed &+ UInt64($0) &* 0x5851_F42D_4C95_7F2D,
                                                            counter: counter, probability: probability) }
        } else {
            augmentations = []
        }
        if let term = step.consistency {
            // Every image translated, always (the CPU term's policy): a probability of 1.
            let always = try DeviceTensor(on: device, shape: [1])
            try always.upload([1])
            consistency = DeviceConsistency(
                weight: term.weight,
                translation: DeviceDiffAugment(policy: term.transform.policy, seed: term.transform.seed, counter: counter,
                                               probability: always),
                always: always)
        } else {
            consistency = nil
        }
    }

    /// Consistency regularisation's state on the device: its translation (drawn from the
    /// step counter, like DiffAugment's; its output buffer holds the translated batch) and
    /// `kept`, D's logits for that batch, then their differences from the real logits.
    struct DeviceConsistency {
        let weight: Float
        let translation: DeviceDiffAugment
        /// The translation's probability, 1 (kept alive with the translation that reads it).
        let always: DeviceTensor
        var kept: DeviceTensor?
    }
    private var consistency: DeviceConsistency?

    /// The translations consistency regularisation drew in the last step, 8 floats per image
    /// (the augmentation kernels' layout), or nil without the term (for tests).
    public func consistencyTranslations() throws(CUDAError) -> [Float]? { try consistency?.translation.drawnParameters?.values() }

    /// The step counter (64 bits, advanced at the end of every step) that the augmentations
    /// and a `DeviceBatchSource` draw from.
    public let counter: DeviceBuffer
    private let augmentations: [DeviceDiffAugment]

    private func augmented(_ x: DeviceTensor, _ use: Int) throws(CUDAError) -> DeviceTensor {
        augmentations.isEmpty ? x : try augmentations[use].forward(x)
    }

    /// One step on a real batch with the caller's noise and fake labels; the report is read
    /// back (a synchronisation: the daemon reads it every few steps only).
    @discardableResult
    public func callAsFunction(real: DeviceTensor, realLabels: DeviceLabels, noise z: DeviceTensor,
                               fakeLabels: DeviceLabels) throws(CUDAError) -> StepReport {
        try run(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        return try report()
    }

    /// One step on what `source` draws from the counter (nothing from the host: capturable).
    public func run(from source: DeviceBatchSource) throws(CUDAError) {
        try source.draw(counter: counter)
        try run(real: source.batch, realLabels: source.batchLabels, noise: source.noise, fakeLabels: source.noiseLabels)
    }

    /// The generator's update count in device memory (the moving average's warm-up reads it).
    public var generatorStepCount: DeviceBuffer { generatorOptimizer.stepCount }

    /// The step without reading anything back.
    public func run(real: DeviceTensor, realLabels: DeviceLabels, noise z: DeviceTensor, fakeLabels: DeviceLabels) throws(CUDAError) {
        let batch = real.shape[0]
        let dLogits = try DeviceTensor.reuse(logitGradient, shape: [batch], on: device)
        logitGradient = dLogits
        let fake = try generator.forward(z, labels: fakeLabels)

        // D step: the two halves' gradients add up, as for the sum of the two losses.
        try discriminator.arena.zeroGradients()
        try discriminator.prepareForward(iterate: true)
        let realInput = try augmented(real, 0)
        let translated = try translatedLogits(realInput, labels: realLabels)
        let realLogits = try discriminator.forward(realInput, labels: realLabels)
        try loss(realLogits, .real, gradient: dLogits, slot: 0)
        try observeForAdaptiveAugmentation(realLogits)
        try addConsistencyRealPart(realLogits, gradient: dLogits)
        try addLeCam(realLogits, gradient: dLogits, half: 0)
        try discriminator.backward(dLogits, inputGradient: false)
        try backwardTranslated(translated, labels: realLabels, gradient: dLogits)
        let fakeLogits = try discriminator.forward(augmented(fake, 1), labels: fakeLabels)
        try loss(fakeLogits, .generated, gradient: dLogits, slot: 1)
        try addLeCam(fakeLogits, gradient: dLogits, half: 1)
        try discriminator.backward(dLogits, inputGradient: false)
        try discriminator.finishBackward()
        try discriminatorOptimizer.update()

        // G step through the updated D.
        try generator.arena.zeroGradients()
        try discriminator.prepareForward(iterate: false)
        let logits = try discriminator.forward(augmented(fake, 2), labels: fakeLabels)
        try loss(logits, .generatorObjective, gradient: dLogits, slot: 2)
        var dFake = try discriminator.backward(dLogits, inputGradient: true, parameterGradients: false)!
        if !augmentations.isEmpty { dFake = try augmentations[2].backward(dFake) }
        try addModeSeeking(fake: fake, noise: z, gradient: dFake)
        try generator.backward(dFake)
        try generatorOptimizer.update()
        try device.launch("record_losses", grid: 1, block: 32,
                          [losses.argument, recentLosses.argument, .buffer(counter), .int32(Int32(Self.reportSlots)), .int32(Int32(Self.lossValues))])
        try device.launch("advance_step", grid: 1, block: 1, [.buffer(counter)])
    }

    private enum Term { case real, generated, generatorObjective }

    /// The loss of `logits` and its gradient, with the logits' mean, into `slot` of `losses`.
    private func loss(_ logits: DeviceTensor, _ term: Term, gradient: DeviceTensor, slot: Int) throws(CUDAError) {
        let out = DeviceTensor(storage: losses.storage, offset: losses.offset + 2 * slot, shape: [2])
        let common: [KernelArgument] = [logits.argument, gradient.argument, out.argument, .int64(logits.count)]
        switch (step.loss, term) {
        case (.nonSaturating, .real), (.nonSaturating, .generatorObjective):
            try device.launch("bce_logits", grid: 1, block: LossKernels.block, common + [.float(1)])
        case (.nonSaturating, .generated):
            try device.launch("bce_logits", grid: 1, block: LossKernels.block, common + [.float(0)])
        case (.hinge, .real):
            try device.launch("hinge_discriminator", grid: 1, block: LossKernels.block, common + [.float(1)])
        case (.hinge, .generated):
            try device.launch("hinge_discriminator", grid: 1, block: LossKernels.block, common + [.float(-1)])
        case (.hinge, .generatorObjective):
            try device.launch("hinge_generator", grid: 1, block: LossKernels.block, common)
        }
    }

    /// The mode-seeking term's gradient in G's output, added to `gradient` (dL/dx).
    private func addModeSeeking(fake: DeviceTensor, noise z: DeviceTensor, gradient: DeviceTensor) throws(CUDAError) {
        guard let term = step.modeSeeking, let sums = modeSeekingSums else { return }
        let batch = fake.shape[0], half = batch / 2
        guard half > 0 else { return }
        let per = fake.count / batch, latent = z.count / batch
        let value = DeviceTensor(storage: losses.storage, offset: losses.offset + 13, shape: [1])
        try device.launch("mode_seeking_sums", grid: 1, block: LossKernels.block,
                          [fake.argument, z.argument, sums.argument, .int64(per), .int64(latent), .int32(Int32(half))])
        try device.launchElementwise("mode_seeking_gradient", count: half * per,
                                     [fake.argument, sums.argument, gradient.argument, value.argument, .int64(per),
                                      .int32(Int32(half)), .float(term.weight), .float(Float(ModeSeekingRegularization.epsilon))])
    }

    /// LeCam's part for D's real (`half` 0) or generated (1) batch, added to its logit
    /// gradient; its loss into `losses` after the others.
    private func addLeCam(_ logits: DeviceTensor, gradient: DeviceTensor, half: Int32) throws(CUDAError) {
        guard let leCam = step.leCam, let anchors = leCamAnchors else { return }
        let out = DeviceTensor(storage: losses.storage, offset: losses.offset + 6 + Int(half), shape: [1])
        try device.launch("lecam_part", grid: 1, block: LossKernels.block,
                          [logits.argument, gradient.argument, anchors.argument, out.argument, .int64(logits.count),
                           .float(leCam.weight), .float(leCam.decay), .float(half == 0 ? 1 : -1), .int32(half)])
    }

    /// Consistency regularisation, first part (the CPU step's order): D's logits for the
    /// translated real batch, kept; returns the translated batch (nil without the term).
    private func translatedLogits(_ realInput: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor? {
        guard var term = consistency else { return nil }
        let translated = try term.translation.forward(realInput)
        let logits = try discriminator.forward(translated, labels: labels)
        let kept = try DeviceTensor.reuse(term.kept, shape: logits.shape, on: device)
        term.kept = kept
        consistency = term
        try device.launch("consistency_keep", grid: 1, block: LossKernels.block, [logits.argument, kept.argument, .int64(logits.count)])
        return translated
    }

    /// With D's real logits: the differences, their part of the real gradient and L_cr.
    private func addConsistencyRealPart(_ realLogits: DeviceTensor, gradient: DeviceTensor) throws(CUDAError) {
        guard let term = consistency, let kept = term.kept else { return }
        let out = DeviceTensor(storage: losses.storage, offset: losses.offset + 12, shape: [1])
        try device.launch("consistency_real_part", grid: 1, block: LossKernels.block,
                          [realLogits.argument, kept.argument, gradient.argument, out.argument, .int64(realLogits.count),
                           .float(term.weight)])
    }

    /// After the real backward: D again on the translated batch, backward with dL_cr/dD(T(x)).
    private func backwardTranslated(_ translated: DeviceTensor?, labels: DeviceLabels, gradient: DeviceTensor) throws(CUDAError) {
        guard let translated, let term = consistency, let kept = term.kept else { return }
        _ = try discriminator.forward(translated, labels: labels)
        try device.launch("consistency_translated_gradient", grid: 1, block: LossKernels.block,
                          [kept.argument, gradient.argument, .int64(gradient.count), .float(term.weight)])
        try discriminator.backward(gradient, inputGradient: false)
    }

    /// Adaptive augmentation's controller counts D's real logits (the CPU step's order: after
    /// the real batch, so the generated batches of the step see the new p).
    private func observeForAdaptiveAugmentation(_ realLogits: DeviceTensor) throws(CUDAError) {
        guard let adaptive = step.augmentation?.adaptive else { return }
        try device.launch("ada_observe", grid: 1, block: AugmentKernels.observeBlock,
                          [realLogits.argument, .int64(realLogits.count), augmentationState.argument, .float(adaptive.target),
                           .float(adaptive.rampImages), .int32(Int32(adaptive.interval))])
    }

    /// The last step's losses and mean logits (and adaptive augmentation's probability).
    public func report() throws(CUDAError) -> StepReport { report(try losses.values()[...]) }

    /// The reports of the `count` steps (at most `reportSlots`) up to the one that ran with the
    /// step counter at `newest`, oldest first, in one read (it waits for them).
    public func reports(last count: Int, through newest: Int) throws(CUDAError) -> [StepReport] {
        precondition(count <= Self.reportSlots && count <= newest + 1, "\(count) steps' reports asked for, \(Self.reportSlots) kept")
        let ring = try recentLosses.values()
        return ((newest - count + 1)...newest).map { t in
            let slot = t % Self.reportSlots
            return report(ring[(slot * Self.lossValues)..<((slot + 1) * Self.lossValues)])
        }
    }

    private func report(_ v: ArraySlice<Float>) -> StepReport {
        let v = Array(v)
        return StepReport(discriminatorLoss: v[0] + v[2] + v[6] + v[7] + v[12], generatorLoss: v[4], realLogitMean: v[1], fakeLogitMean: v[3],
                          augmentationProbability: step.augmentation?.adaptive == nil ? nil : v[8],
                          pairSpread: step.modeSeeking?.pairSpread(fromLoss: v[13]))
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
        if let leCam = step.leCam, let anchors = leCamAnchors {
            let values = try anchors.values()
            (leCam.realAnchor, leCam.fakeAnchor) = (values[0], values[1])
        }
        if let augmentation = step.augmentation, augmentation.adaptive != nil {
            augmentation.adaptive?.restore(state: try augmentationState.values())
        }
    }
}
