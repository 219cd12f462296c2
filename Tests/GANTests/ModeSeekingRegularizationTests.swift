import Engine
@testable import GAN
import Foundation
import Testing

@Suite struct ModeSeekingRegularizationTests {
    /// The images and latent vectors of `scripts/make_mode_seeking_fixture.py` ([4, 2, 3, 3], [4, 5]).
    static func fixtureInputs() -> (fake: Tensor, noise: Tensor) {
        let fake = Tensor(shape: [4, 2, 3, 3], values: (0..<72).map { Float(0.9 * sin(1.3 * Double($0) + 0.2)) })
        let noise = Tensor(shape: [4, 5], values: (0..<20).map { Float(cos(0.7 * Double($0) + 0.5)) })
        return (fake, noise)
    }

    /// The term and its gradient against PyTorch's autograd on MSGAN's own formula (weight 0.7),
    /// added to a gradient that was already there.
    @Test func matchesPyTorch() {
        // scripts/with-torch python3 scripts/make_mode_seeking_fixture.py
        let loss: Float = 0.284985051
        let magnitude: Float = 0.00703762176
        let signs: [Float] = [-1, -1, -1, 1, 1, -1, -1, -1, 1, 1, -1, -1, -1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1,
                              -1, -1, -1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1, -1, -1, -1,
                              1, 1, -1, -1, -1, 1, 1, -1, -1, 1, 1, 1, -1, -1, 1, 1]
        let (fake, noise) = Self.fixtureInputs()
        let gradient = Tensor(shape: fake.shape, values: [Float](repeating: 0.25, count: fake.count))
        let value = ModeSeekingRegularization(weight: 0.7)(fake: fake, noise: noise, gradient: gradient)
        #expect(abs(value - loss) < 1e-6 * loss, "\(value) vs \(loss)")
        for i in 0..<fake.count {
            #expect(abs(gradient[i] - (0.25 + signs[i] * magnitude)) < 1e-8, "element \(i): \(gradient[i])")
        }
    }

    /// Images uniform in [-1, 1] of `shape` and normal latent vectors of `latent`, one per image.
    static func randomInputs(_ shape: [Int], latent: Int, seed: UInt64) -> (fake: Tensor, noise: Tensor) {
        var rng = RandomGenerator(seed: seed)
        let fake = Tensor(zeros: shape), noise = Tensor(zeros: [shape[0], latent])
        rng.fillUniform(fake, -1, 1)
        rng.fillNormal(noise)
        return (fake, noise)
    }

    /// The gradient against central differences of the term, on an odd batch (the last image
    /// has no partner: no gradient) of random images.
    @Test func gradientMatchesFiniteDifferences() {
        let (fake, noise) = Self.randomInputs([5, 3, 4, 4], latent: 8, seed: 4)
        let term = ModeSeekingRegularization(weight: 1.3)
        let gradient = Tensor(zeros: fake.shape)
        term(fake: fake, noise: noise, gradient: gradient)
        func loss(_ values: [Float]) -> Double {
            Double(term(fake: Tensor(shape: fake.shape, values: values), noise: noise, gradient: Tensor(zeros: fake.shape)))
        }
        let values = fake.values, per = 48
        for i in stride(from: 0, to: fake.count, by: 7) {
            var up = values, down = values
            up[i] += 1e-3; down[i] -= 1e-3  // |x_i - x_j| is linear away from 0 (no pair closer than 1e-3 here)
            let numeric = (loss(up) - loss(down)) / 2e-3
            #expect(abs(Double(gradient[i]) - numeric) < 1e-4 * max(1, abs(numeric)), "element \(i): \(gradient[i]) vs \(numeric)")
        }
        #expect((4 * per..<5 * per).allSatisfy { gradient[$0] == 0 }, "the unpaired last image")
        #expect((0..<4 * per).allSatisfy { gradient[$0] != 0 })
    }

    /// A step down the term's gradient spreads the pairs: the term falls, and a collapsed pair
    /// (two latent vectors, one image) costs far more than a spread one.
    @Test func descendingItSpreadsThePairs() {
        let (fake, noise) = Self.randomInputs([4, 1, 6, 6], latent: 10, seed: 8)
        let term = ModeSeekingRegularization(weight: 1)
        let gradient = Tensor(zeros: fake.shape)
        let before = term(fake: fake, noise: noise, gradient: gradient)
        let moved = Tensor(shape: fake.shape, values: (0..<fake.count).map { fake[$0] - 0.5 * gradient[$0] })
        #expect(term(fake: moved, noise: noise, gradient: Tensor(zeros: fake.shape)) < before)
        let collapsed = Tensor(shape: fake.shape, values: (0..<fake.count).map { fake[$0 % 72] * ($0 < 72 ? 1 : 1.001) })
        #expect(term(fake: collapsed, noise: noise, gradient: Tensor(zeros: fake.shape)) > 50 * before)
    }

    /// The pair spread read back from the term's value is lz as its definition has it, by Double
    /// sums here; no value (no pair) has none.
    @Test func thePairSpreadIsLzFromTheTermsValue() throws {
        let (fake, noise) = Self.randomInputs([6, 2, 5, 5], latent: 7, seed: 9)
        for weight: Float in [1, 0.3] {
            let term = ModeSeekingRegularization(weight: weight)
            let value = term(fake: fake, noise: noise, gradient: Tensor(zeros: fake.shape))
            let per = fake.count / 6, latent = noise.count / 6
            let images = (0..<(3 * per)).map { Double(abs(fake[$0] - fake[$0 + 3 * per])) }.reduce(0, +) / Double(3 * per)
            let codes = (0..<(3 * latent)).map { Double(abs(noise[$0] - noise[$0 + 3 * latent])) }.reduce(0, +) / Double(3 * latent)
            let spread = try #require(term.pairSpread(fromLoss: value))
            #expect(abs(Double(spread) - images / codes) <= 1e-5 * images / codes, "\(spread) vs \(images / codes)")
        }
        #expect(ModeSeekingRegularization(weight: 1).pairSpread(fromLoss: 0) == nil)
    }

    /// "auto" gives the term to datasets under DiffAugment's line (where it was measured), a
    /// weight given to any; what is neither is refused.
    @Test func theWeightANewModelGets() {
        #expect(ModeSeekingPolicy.auto.weight(forImages: 500) == ModeSeekingPolicy.smallDatasetWeight)
        #expect(ModeSeekingPolicy.auto.weight(forImages: AugmentationPolicy.autoThreshold) == 0)
        #expect(ModeSeekingPolicy.weight(0.5).weight(forImages: 60_000) == 0.5)
        #expect(ModeSeekingPolicy("auto") == .auto && ModeSeekingPolicy("0") == .weight(0) && ModeSeekingPolicy("2.5") == .weight(2.5))
        for wrong in ["-1", "101", "nan", "inf", "on", ""] { #expect(ModeSeekingPolicy(wrong) == nil, "\(wrong)") }
    }

    @Test func pairsTheSecondHalfsLabelsWithTheFirsts() {
        var labels: [Int32] = [3, 1, 4, 1, 5, 9, 2]
        ModeSeekingRegularization.pairLabels(&labels)
        #expect(labels == [3, 1, 4, 3, 1, 4, 2])
    }

    /// In a training step the term changes G's gradients only (D's step is the same), and the
    /// step's own latent draw pairs the labels.
    @Test func changesOnlyGsGradientsInAStep() {
        func makeStep(_ weight: Float?) -> TrainingStep {
            let configuration = ModelConfiguration(imageChannels: 1, classes: 3, resolution: 32, latentSize: 8, embeddingSize: 4,
                                                   baseChannels: 8)
            let generator = Generator(configuration), discriminator = Discriminator(configuration)
            initializeDCGAN(generator.parameters, seed: 1)
            initializeDCGAN(discriminator.parameters, seed: 2)
            let step = TrainingStep(generator: generator, discriminator: discriminator, seed: 3)
            step.modeSeeking = weight.map { ModeSeekingRegularization(weight: $0) }
            return step
        }
        let plain = makeStep(nil), seeking = makeStep(1)
        let drawn = seeking.drawLatents(batch: 6).labels
        #expect(Array(drawn[3...]) == Array(drawn[..<3]))
        let unpaired = plain.drawLatents(batch: 64).labels
        #expect(Array(unpaired[32...]) != Array(unpaired[..<32]), "without the term the labels are not paired")
        var rng = RandomGenerator(seed: 5)
        let real = Tensor(zeros: [6, 1, 32, 32]), z = Tensor(zeros: [6, 8])
        rng.fillUniform(real, -1, 1)
        rng.fillNormal(z)
        let realLabels: [Int32] = [0, 1, 2, 0, 1, 2], fakeLabels: [Int32] = [2, 0, 1, 2, 0, 1]
        let a = plain.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        let b = seeking.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        #expect(a.discriminatorLoss == b.discriminatorLoss && a.generatorLoss == b.generatorLoss)
        for (x, y) in zip(plain.discriminator.parameters, seeking.discriminator.parameters) {
            #expect(x.value.values == y.value.values, "\(x.name)")
        }
        let changed = zip(plain.generator.parameters, seeking.generator.parameters).filter { $0.grad.values != $1.grad.values }
        #expect(changed.count > plain.generator.parameters.count / 2, "\(changed.map(\.0.name))")
    }
}
