import Engine
import NumericTestSupport
import GAN
import Testing

@Suite struct ConsistencyRegularizationTests {
    /// D's parameter gradients from the consistency term against central differences of
    /// L = weight * mean((D(T(x)) - c)^2), with the real logits c held fixed as the term holds
    /// them, and the same translations T each time (a fresh transform from the same seed).
    /// The spectrally normalised D, whose raw weights of order 1 make differences well
    /// conditioned (BatchNorm over a few images is not, in Float: see the reference-step test
    /// for that D's gradients).
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
        discriminator.prepareForward(iterate: true)
        // The target as in training: D's logits for the untranslated images.
        let target = Tensor(zeros: [4])
        target.copy(from: discriminator.forward(x, labels: labels))

        discriminator.zeroGradients()
        let term = ConsistencyRegularization(weight: weight, seed: 34)
        let reported = term.accumulate(discriminator, real: x, labels: labels, realLogits: target)
        discriminator.finishBackward()
        func loss() -> Double {
            discriminator.prepareForward(iterate: false)
            let logits = discriminator.forward(ConsistencyRegularization(weight: weight, seed: 34).transform.forward(x),
                                               labels: labels)
            let squares = (0..<4).map { i in Double(logits[i] - target[i]) * Double(logits[i] - target[i]) }
            return Double(weight) * squares.reduce(0, +) / 4
        }
        #expect(abs(Double(reported) - loss()) < 1e-4 * max(1, loss()), "reported \(reported), recomputed \(loss())")
        #expect(reported > 1e-3, "translated images give other logits than the untranslated ones")
        // 3%: a step of 3e-4 in a last-stage bias still moves one of its 1,024 pre-activations
        // across LeakyReLU's kink (the error halves from a step of 1e-3; at 1e-4 Float rounding
        // takes over).
        for parameter in discriminator.parameters {
            checkGradient(parameter.name, of: parameter.value, analytic: parameter.grad, eps: 3e-4, tolerance: 3e-2,
                          maxElements: 40, loss: loss)
        }
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
