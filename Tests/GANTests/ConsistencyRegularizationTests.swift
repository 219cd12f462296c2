import Engine
import NumericTestSupport
import GAN
import Testing

@Suite struct ConsistencyRegularizationTests {
    /// D's parameter gradients from the consistency term against central differences of
    /// L = weight * mean((D(T(x)) - D(x))^2), both terms varying, with the same translations T
    /// each time (a fresh transform from the same seed). The spectrally normalised D, whose raw
    /// weights of order 1 make differences well conditioned (BatchNorm over a few images is
    /// not, in Float: see the reference-step test for that D's gradients).
    @Test func gradientsMatchFiniteDifferences() {
        let configuration = ModelConfiguration(classes: 3, baseChannels: 4, discriminatorNormalization: .spectral)
        let discriminator = Discriminator(configuration)
        initializeDCGAN(discriminator.parameters, seed: 31)
        for (index, normalization) in discriminator.spectralNorms.enumerated() {
            normalization.weight.value.copy(from: randomTensor(normalization.weight.shape, seed: 40 + UInt64(index)))
        }
        // Non-zero biases: the translation's zero fill would otherwise put pre-activations
        // exactly on LeakyReLU's kink, where differences average the two slopes.
        for (index, parameter) in discriminator.parameters.enumerated() where parameter.name.hasSuffix(".bias") {
            parameter.value.copy(from: randomTensor(parameter.shape, seed: 50 + UInt64(index), range: -0.2...0.2))
        }
        let x = randomTensor([4, 1, 32, 32], seed: 32)
        let labels: [Int32] = [0, 2, 1, 2]
        let weight: Float = 10

        // As in a D step, with a zero adversarial gradient.
        discriminator.zeroGradients()
        discriminator.prepareForward(iterate: true)
        let term = ConsistencyRegularization(weight: weight, seed: 34)
        term.translatedLogits(discriminator, real: x, labels: labels)
        let realLogits = discriminator.forward(x, labels: labels)
        let gradient = Tensor(zeros: [4])
        let reported = term.addRealPart(realLogits: realLogits, to: gradient)
        discriminator.backward(gradient, inputGradient: false)
        term.backwardTranslated(discriminator, labels: labels)
        discriminator.finishBackward()

        func loss() -> Double {
            discriminator.prepareForward(iterate: false)
            let moved = discriminator.forward(ConsistencyRegularization(weight: weight, seed: 34).transform.forward(x),
                                              labels: labels).values
            let plain = discriminator.forward(x, labels: labels).values
            let squares = (0..<4).map { i in Double(moved[i] - plain[i]) * Double(moved[i] - plain[i]) }
            return Double(weight) * squares.reduce(0, +) / 4
        }
        #expect(abs(Double(reported) - loss()) < 1e-4 * max(1, loss()), "reported \(reported), recomputed \(loss())")
        #expect(reported > 1e-3, "translated images give other logits than the untranslated ones")
        // The head's bias moves every logit together, which L_cr does not see: gradient 0.
        let headBias = discriminator.head.linear.bias!
        #expect(abs(headBias.grad[0]) < 1e-6, "head bias gradient \(headBias.grad[0])")
        // 5%: a step of 3e-4 in a last-stage bias still moves some of its 1,024 pre-activations
        // across LeakyReLU's kink (the error shrinks with the step down to 3e-4; below, Float
        // rounding takes over).
        for parameter in discriminator.parameters where parameter !== headBias {
            checkGradient(parameter.name, of: parameter.value, analytic: parameter.grad, eps: 3e-4, tolerance: 5e-2,
                          maxElements: 40, loss: loss)
        }
    }

    /// Moving every logit together leaves L_cr alone, so a D trained with it does not drift:
    /// 60 steps on real-looking data keep the mean logits within a few units (holding D(x)
    /// fixed drifted by ~1.3 a step).
    @Test func logitsDoNotDrift() {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 3, baseChannels: 8)
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: 10)
        initializeDCGAN(discriminator.parameters, seed: 20)
        let step = TrainingStep(generator: generator, discriminator: discriminator, loss: .hinge, seed: 3)
        step.consistency = ConsistencyRegularization(weight: 10, seed: 4)
        var rng = RandomGenerator(seed: 5)
        let real = Tensor(zeros: [16, 1, 32, 32])
        var worst: Float = 0
        for _ in 0..<60 {
            // Sparse bright strokes on black, like Fashion-MNIST's background.
            rng.fillUniform(real, -1, 1)
            for i in 0..<real.count where real[i] < 0.3 { real[i] = -1 }
            let report = step(real: real, realLabels: (0..<16).map { _ in Int32(rng.int(below: 3)) })
            worst = max(worst, abs(report.realLogitMean), abs(report.fakeLogitMean))
        }
        #expect(worst < 5, "mean logits reached \(worst)")
    }

    /// The translations are random per image and come from the term's own stream.
    @Test func translatesEachImageFromItsOwnStream() {
        let x = randomTensor([8, 1, 32, 32], seed: 35)
        let a = ConsistencyRegularization(weight: 1, seed: 36).transform.forward(x).values
        let b = ConsistencyRegularization(weight: 1, seed: 36).transform.forward(x).values
        let c = ConsistencyRegularization(weight: 1, seed: 37).transform.forward(x).values
        #expect(a == b && a != c && a != x.values)
    }
}
