import Engine

/// Which adversarial loss a training step uses.
public enum AdversarialLoss: String, Sendable, Codable, CaseIterable {
    /// Binary cross-entropy on logits, the generator maximising log D(G(z)) (Goodfellow 2014).
    case nonSaturating = "non-saturating"
    /// Hinge loss (Lim & Ye 2017).
    case hinge
}

/// Losses and logit means of one step, for progress reports.
public struct StepReport: Sendable, Equatable {
    public var discriminatorLoss: Float
    public var generatorLoss: Float
    public var realLogitMean: Float
    public var fakeLogitMean: Float
    /// Adaptive augmentation's probability after the step; nil without it.
    public var augmentationProbability: Float?
    /// The mode-seeking term's lz (`ModeSeekingRegularization.pairSpread`); nil without it.
    public var pairSpread: Float?

    public init(discriminatorLoss: Float = 0, generatorLoss: Float = 0, realLogitMean: Float = 0, fakeLogitMean: Float = 0,
                augmentationProbability: Float? = nil, pairSpread: Float? = nil) {
        self.discriminatorLoss = discriminatorLoss
        self.generatorLoss = generatorLoss
        self.realLogitMean = realLogitMean
        self.fakeLogitMean = fakeLogitMean
        self.augmentationProbability = augmentationProbability
        self.pairSpread = pairSpread
    }
}

/// One GAN training step exactly as `shared/REFERENCE-MODEL.md` defines it:
/// fake = G(z, y); D step on real and fake.detached; Adam on D; G step through the updated D
/// (D's gradients are not computed there: D's weights do not change); Adam on G.
/// BatchNorm stays in training mode throughout.
public final class TrainingStep {
    public let generator: Generator
    public let discriminator: Discriminator
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    public var loss: AdversarialLoss
    public var rng: RandomGenerator
    /// Applied to every batch D sees when set (not part of the reference step).
    public var augmentation: DiffAugment?
    /// An extra term in D's loss when set (not part of the reference step).
    public var consistency: ConsistencyRegularization?
    /// An extra term in D's loss when set (not part of the reference step).
    public var leCam: LeCamRegularization?
    /// An extra term in G's loss when set, and fake labels drawn in pairs for it (not part of
    /// the reference step). G's reported loss stays the adversarial part.
    public var modeSeeking: ModeSeekingRegularization?

    private let bce = BinaryCrossEntropyWithLogits()
    private var noise: Tensor?
    private var logitGrad: Tensor?
    private var fakeLabels: [Int32] = []

    public init(generator: Generator, discriminator: Discriminator,
                learningRate: Float = 2e-4, discriminatorLearningRate: Float? = nil, beta1: Float = 0.5, beta2: Float = 0.999,
                loss: AdversarialLoss = .nonSaturating, seed: UInt64) {
        self.generator = generator
        self.discriminator = discriminator
        generatorOptimizer = Adam(generator.parameters, learningRate: learningRate, beta1: beta1, beta2: beta2)
        discriminatorOptimizer = Adam(discriminator.parameters, learningRate: discriminatorLearningRate ?? learningRate,
                                      beta1: beta1, beta2: beta2)
        self.loss = loss
        self.rng = RandomGenerator(seed: seed)
    }

    /// A step on a real batch, with z ~ N(0, 1) and fake labels uniform over the classes.
    @discardableResult
    public func callAsFunction(real: Tensor, realLabels: [Int32]) -> StepReport {
        let (z, labels) = drawLatents(batch: real.shape[0])
        return step(real: real, realLabels: realLabels, noise: z, fakeLabels: labels)
    }

    /// The next step's noise and fake labels from the step's random stream (the CPU engine's
    /// and the benchmark's; the device draws its own from the step counter, `DeviceBatchSource`).
    public func drawLatents(batch: Int) -> (noise: Tensor, labels: [Int32]) {
        let z = Tensor.reuse(noise, shape: [batch, generator.configuration.latentSize]); noise = z
        rng.fillNormal(z)
        if fakeLabels.count != batch { fakeLabels = Array(repeating: 0, count: batch) }
        for i in 0..<batch { fakeLabels[i] = Int32(rng.int(below: generator.configuration.classes)) }
        if modeSeeking != nil { ModeSeekingRegularization.pairLabels(&fakeLabels) }
        return (z, fakeLabels)
    }

    /// A step with the caller's noise and fake labels (tests compare it with PyTorch). With
    /// `modeSeeking`, the labels' second half should repeat the first's (`drawLatents` does).
    @discardableResult
    public func step(real: Tensor, realLabels: [Int32], noise z: Tensor, fakeLabels: [Int32]) -> StepReport {
        let batch = real.shape[0]
        let dLogits = Tensor.reuse(logitGrad, shape: [batch]); logitGrad = dLogits
        let fake = generator.forward(z, labels: fakeLabels)

        // D step: the two halves' gradients add up, as for the sum of the two losses.
        discriminator.zeroGradients()
        discriminator.prepareForward(iterate: true)
        let realInput = augmented(real)
        consistency?.translatedLogits(discriminator, real: realInput, labels: realLabels)
        let realLogits = discriminator.forward(realInput, labels: realLabels)
        let realMean = mean(realLogits)
        // Adaptive augmentation's signal: the generated batches of this step already see its p.
        augmentation?.observe(realLogits: realLogits)
        var lossD = discriminatorLoss(realLogits, real: true, gradient: dLogits)
        if let consistency { lossD += consistency.addRealPart(realLogits: realLogits, to: dLogits) }
        if let leCam { lossD += leCam.addRealPart(realLogits: realLogits, to: dLogits) }
        discriminator.backward(dLogits, inputGradient: false)
        consistency?.backwardTranslated(discriminator, labels: realLabels)
        let fakeLogits = discriminator.forward(augmented(fake), labels: fakeLabels)
        let fakeMean = mean(fakeLogits)
        lossD += discriminatorLoss(fakeLogits, real: false, gradient: dLogits)
        if let leCam { lossD += leCam.addFakePart(fakeLogits: fakeLogits, to: dLogits) }
        discriminator.backward(dLogits, inputGradient: false)
        discriminator.finishBackward()
        discriminatorOptimizer.update()

        // G step through the updated D.
        generator.zeroGradients()
        discriminator.prepareForward(iterate: false)
        let logits = discriminator.forward(augmented(fake), labels: fakeLabels)
        let lossG: Float
        switch loss {
        case .nonSaturating: lossG = bce(logits, target: 1, gradient: dLogits)
        case .hinge: lossG = HingeLoss.generator(logits, gradient: dLogits)
        }
        var dFake = discriminator.backward(dLogits, inputGradient: true, parameterGradients: false)!
        if let augmentation { dFake = augmentation.backward(dFake) }
        let pairSpread = modeSeeking.flatMap { term in term.pairSpread(fromLoss: term(fake: fake, noise: z, gradient: dFake)) }
        generator.backward(dFake)
        generatorOptimizer.update()

        return StepReport(discriminatorLoss: lossD, generatorLoss: lossG, realLogitMean: realMean, fakeLogitMean: fakeMean,
                          augmentationProbability: augmentation?.adaptive?.probability, pairSpread: pairSpread)
    }

    private func discriminatorLoss(_ logits: Tensor, real: Bool, gradient: Tensor) -> Float {
        switch loss {
        case .nonSaturating: return bce(logits, target: real ? 1 : 0, gradient: gradient)
        case .hinge: return HingeLoss.discriminator(logits, real: real, gradient: gradient)
        }
    }

    private func augmented(_ x: Tensor) -> Tensor { augmentation?.forward(x) ?? x }

    private func mean(_ t: Tensor) -> Float { sum(t.data, t.count) / Float(t.count) }
}
