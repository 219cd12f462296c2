import Engine
@testable import GAN
import Testing

@Suite struct LeCamRegularizationTests {
    /// The term against values worked by hand: weight 0.5, both anchors 0 at first.
    /// Real logits [1, -2, 3]: relu(x - 0)^2 = [1, 0, 9], mean 10/3, loss 5/3; gradient
    /// 2 * 0.5 * x / 3 where positive. Real anchor 0.01 * mean(1, -2, 3) = 0.02/3.
    /// Fake logits [-1, 0.5]: relu(realAnchor - x)^2 with realAnchor = 0.00667: [1.0134, 0],
    /// loss 0.5 * 1.0134 / 2; gradient -2 * 0.5 * 1.00667 / 2 for the first.
    @Test func matchesHandWorkedValues() {
        let term = LeCamRegularization(weight: 0.5)
        let real = Tensor(shape: [3], values: [1, -2, 3]), realGradient = Tensor(shape: [3], values: [0.1, 0.1, 0.1])
        let realLoss = term.addRealPart(realLogits: real, to: realGradient)
        #expect(abs(realLoss - 5.0 / 3) < 1e-6)
        let expectedReal: [Float] = [0.1 + 1.0 / 3, 0.1, 0.1 + 1]
        for i in 0..<3 { #expect(abs(realGradient[i] - expectedReal[i]) < 1e-6, "real gradient \(realGradient.values)") }
        #expect(abs(term.realAnchor - 0.02 / 3) < 1e-7)
        #expect(term.fakeAnchor == 0, "the fake anchor moves with fake logits only")

        let fake = Tensor(shape: [2], values: [-1, 0.5]), fakeGradient = Tensor(zeros: [2])
        let fakeLoss = term.addFakePart(fakeLogits: fake, to: fakeGradient)
        let excess: Float = 0.02 / 3 + 1
        #expect(abs(fakeLoss - 0.5 * excess * excess / 2) < 1e-6)
        #expect(abs(fakeGradient[0] + excess / 2) < 1e-6 && fakeGradient[1] == 0, "fake gradient \(fakeGradient.values)")
        #expect(abs(term.fakeAnchor - 0.01 * -0.25) < 1e-7)
    }

    /// The gradient each half adds against central differences of its loss in the logits
    /// (D's own backward, which carries it on, is tested with the engine), with anchors away
    /// from zero and logits on both sides of them.
    @Test func gradientsMatchFiniteDifferences() {
        func warmed() -> LeCamRegularization {
            let term = LeCamRegularization(weight: 0.3)
            term.realAnchor = 1
            term.fakeAnchor = -0.5
            return term
        }
        let logits: [Float] = [-1.7, -0.4, 0.3, 1.1, 2.6, 3.4]
        for real in [true, false] {
            let gradient = Tensor(zeros: [logits.count])
            let term = warmed()
            _ = real ? term.addRealPart(realLogits: Tensor(shape: [logits.count], values: logits), to: gradient)
                : term.addFakePart(fakeLogits: Tensor(shape: [logits.count], values: logits), to: gradient)
            func loss(_ values: [Float]) -> Double {
                let fresh = warmed(), x = Tensor(shape: [values.count], values: values), g = Tensor(zeros: [values.count])
                return Double(real ? fresh.addRealPart(realLogits: x, to: g) : fresh.addFakePart(fakeLogits: x, to: g))
            }
            var nonZero = 0
            for i in logits.indices {
                var up = logits, down = logits
                up[i] += 1e-2; down[i] -= 1e-2  // exact for a quadratic, away from the kink
                let numeric = (loss(up) - loss(down)) / 2e-2
                #expect(abs(Double(gradient[i]) - numeric) < 1e-3, "\(real ? "real" : "fake") logit \(i): \(gradient[i]) vs \(numeric)")
                if gradient[i] != 0 { nonZero += 1 }
            }
            #expect(nonZero > 0 && nonZero < logits.count, "both sides of the anchor are exercised")
        }
    }

    /// What the term is for: on a handful of images D learns to tell them from samples and
    /// its logits for the two drift apart; with LeCam regularisation the gap stays smaller.
    @Test func keepsRealAndFakeLogitsCloser() {
        func gap(leCam: Bool) -> Float {
            let configuration = ModelConfiguration(imageChannels: 1, classes: 2, baseChannels: 8)
            let generator = Generator(configuration), discriminator = Discriminator(configuration)
            initializeDCGAN(generator.parameters, seed: 10)
            initializeDCGAN(discriminator.parameters, seed: 20)
            let step = TrainingStep(generator: generator, discriminator: discriminator, loss: .hinge, seed: 3)
            if leCam { step.leCam = LeCamRegularization(weight: 1) }
            var rng = RandomGenerator(seed: 5)
            let real = Tensor(zeros: [8, 1, 32, 32])
            rng.fillUniform(real, -1, 1)
            let labels: [Int32] = [0, 1, 0, 1, 0, 1, 0, 1]
            var gaps: [Float] = []
            for _ in 0..<80 {
                let report = step(real: real, realLabels: labels)
                gaps.append(report.realLogitMean - report.fakeLogitMean)
            }
            return gaps.suffix(20).reduce(0, +) / 20
        }
        let plain = gap(leCam: false), regularised = gap(leCam: true)
        // Measured: 2.5 without, 0.6 with.
        #expect(plain > 1, "D tells 8 memorised images from samples: gap \(plain)")
        #expect(regularised < 0.7 * plain, "gap with LeCam \(regularised), without \(plain)")
    }
}
