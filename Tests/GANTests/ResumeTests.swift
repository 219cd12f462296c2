import Engine
import Foundation
import GAN
import Testing

/// A run interrupted by a checkpoint and resumed in fresh objects reaches exactly the same
/// parameters as an uninterrupted run of the same steps.
@Suite struct ResumeTests {
    func makeStep(seed: UInt64, discriminator normalization: DiscriminatorNormalization = .batch,
                  consistency: Bool = false, leCam: Bool = false) -> TrainingStep {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 3, discriminatorNormalization: normalization)
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: 10)
        initializeDCGAN(discriminator.parameters, seed: 20)
        let step = TrainingStep(generator: generator, discriminator: discriminator, seed: seed)
        if consistency { step.consistency = ConsistencyRegularization(weight: 10, seed: seed &+ 1) }
        if leCam { step.leCam = LeCamRegularization(weight: 0.3) }
        return step
    }

    func batch(_ index: Int) -> (Tensor, [Int32]) {
        var rng = RandomGenerator(seed: 500 + UInt64(index))
        let real = Tensor(zeros: [4, 1, 32, 32])
        rng.fillUniform(real, -1, 1)
        return (real, (0..<4).map { _ in Int32(rng.int(below: 3)) })
    }

    /// With spectral normalisation the power iteration's vectors are part of the state too, and
    /// with consistency regularisation its translations' stream, with LeCam regularisation its
    /// anchors.
    @Test(arguments: [(DiscriminatorNormalization.batch, false, false), (.spectral, false, false), (.batch, true, false),
                      (.batch, false, true)])
    func resumedRunMatchesUninterruptedRun(discriminator normalization: DiscriminatorNormalization, consistency: Bool,
                                           leCam: Bool) throws {
        let uninterrupted = makeStep(seed: 7, discriminator: normalization, consistency: consistency, leCam: leCam)
        for i in 0..<4 { let (x, y) = batch(i); uninterrupted(real: x, realLabels: y) }

        let first = makeStep(seed: 7, discriminator: normalization, consistency: consistency, leCam: leCam)
        for i in 0..<2 { let (x, y) = batch(i); first(real: x, realLabels: y) }
        let path = NSTemporaryDirectory() + "synthd-resume-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try first.checkpoint(steps: 2).write(to: path)

        // The checkpoint's streams and anchors must win.
        let resumed = makeStep(seed: 99, discriminator: normalization, consistency: consistency, leCam: leCam)
        initializeDCGAN(resumed.generator.parameters, seed: 12345)
        resumed.discriminator.spectralNorms.forEach { $0.u.fill(0.5) }
        let steps = try resumed.restore(from: Checkpoint.read(from: path), path: path)
        #expect(steps == 2)
        for i in 2..<4 { let (x, y) = batch(i); resumed(real: x, realLabels: y) }

        let expected = uninterrupted.generator.stateTensors + uninterrupted.discriminator.stateTensors
        let actual = resumed.generator.stateTensors + resumed.discriminator.stateTensors
        for (a, e) in zip(actual, expected) {
            #expect(a.tensor.values == e.tensor.values, "\(a.name) differs after resuming")
        }
        #expect(resumed.rng == uninterrupted.rng)
        #expect(resumed.consistency?.transform.rng == uninterrupted.consistency?.transform.rng)
        #expect(resumed.leCam?.realAnchor == uninterrupted.leCam?.realAnchor)
        #expect(resumed.leCam?.fakeAnchor == uninterrupted.leCam?.fakeAnchor)
        if leCam { #expect(uninterrupted.leCam!.realAnchor != 0 && uninterrupted.leCam!.fakeAnchor != 0) }
    }

    @Test func checkpointOfAnotherModelIsRefused() throws {
        let path = NSTemporaryDirectory() + "synthd-other-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try makeStep(seed: 1).checkpoint(steps: 0).write(to: path)
        let generator = Generator(ModelConfiguration(imageChannels: 3, classes: 3))
        let discriminator = Discriminator(ModelConfiguration(imageChannels: 3, classes: 3))
        let colour = TrainingStep(generator: generator, discriminator: discriminator, seed: 1)
        let before = generator.parameters[0].value.values
        do {
            _ = try colour.restore(from: Checkpoint.read(from: path), path: path)
            Issue.record("a grey model's checkpoint loaded into a colour model")
        } catch {
            #expect(error.description.contains("C=1"))
            #expect(generator.parameters[0].value.values == before)
        }
    }

    /// Damaged LeCam anchors are refused with the file's name, before anything changes.
    @Test func damagedLeCamAnchorsAreRefused() throws {
        let step = makeStep(seed: 1, leCam: true)
        let (x, y) = batch(0)
        step(real: x, realLabels: y)
        var checkpoint = step.checkpoint(steps: 1)
        checkpoint.metadata["lecam.anchors"] = "12"
        let fresh = makeStep(seed: 1, leCam: true)
        let before = fresh.generator.parameters[0].value.values
        do {
            _ = try fresh.restore(from: checkpoint, path: "state/checkpoint.ckpt")
            Issue.record("damaged anchors were accepted")
        } catch {
            #expect(error.description.contains("state/checkpoint.ckpt") && error.description.contains("LeCam anchors"), "\(error)")
        }
        #expect(fresh.generator.parameters[0].value.values == before && fresh.leCam?.realAnchor == 0)
    }

    /// The free-space check before a training sizes its checkpoint without building one; the
    /// bound must hold the file written (a smaller one let a training start that could not save).
    @Test(arguments: [false, true])
    func theCheckpointsSizeBoundHoldsTheFileWritten(leCam: Bool) throws {
        let step = makeStep(seed: 3, consistency: leCam, leCam: leCam)
        let (x, y) = batch(0)
        step(real: x, realLabels: y)
        let path = NSTemporaryDirectory() + "synthd-size-\(UUID().uuidString).ckpt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata = ["data.order": String(repeating: "7", count: 300)]
        let checkpoint = step.checkpoint(steps: 1, metadata: metadata)
        try checkpoint.write(to: path)
        let written = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let bound = step.checkpointBytesAtMost(steps: 1, metadata: metadata)
        #expect(bound == checkpoint.bytesAtMost, "the same bound with or without the copy")
        #expect(bound >= written && bound <= written + written / 50 + 64 << 10, "bound \(bound) for a file of \(written) bytes")
    }
}
