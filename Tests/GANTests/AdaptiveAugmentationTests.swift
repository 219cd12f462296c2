import CUDA
import Engine
import GAN
import KernelEmulation
import Testing

/// Adaptive discriminator augmentation: the controller's rule (StyleGAN2-ADA's: r = E[sign D(x)]
/// against 0.6, a step of seen / ramp every `interval` steps, p within [0, 1]), the augmentation
/// drawing each transform with p, its state in checkpoints, and the device's controller
/// against the CPU's.
struct AdaptiveAugmentationTests {
    /// `count` logits of which `above` are positive.
    func logits(_ count: Int, above: Int) -> Tensor {
        Tensor(shape: [count], values: (0..<count).map { $0 < above ? 0.5 + Float($0) : -0.25 - Float($0) })
    }

    @Test func probabilityRisesWhileDCallsTooManyRealImagesReal() {
        var controller = AdaptiveAugmentation(interval: 4, rampImages: 1000)
        for step in 1...3 {
            controller.observe(realLogits: logits(50, above: 50))
            #expect(controller.probability == 0 && controller.steps == Float(step), "no change before the interval's end")
        }
        controller.observe(realLogits: logits(50, above: 50))
        #expect(controller.probability == 0.2, "4 steps of 50 images over a ramp of 1,000")
        #expect(controller.positive == 0 && controller.seen == 0 && controller.steps == 0, "counts start again")
        // r = 2 * 45 / 50 - 1 = 0.8 > 0.6: up again.
        for _ in 0..<4 { controller.observe(realLogits: logits(50, above: 45)) }
        #expect(controller.probability == 0.4)
    }

    @Test func probabilityFallsWhenDIsUnsureAndStaysWithinZeroAndOne() {
        var controller = AdaptiveAugmentation(probability: 0.3, interval: 2, rampImages: 400)
        // r = 2 * 20 / 100 - 1 = -0.6 < 0.6: down by 200 / 400.
        for _ in 0..<2 { controller.observe(realLogits: logits(100, above: 20)) }
        #expect(controller.probability == 0, "0.3 - 0.5 is clamped to 0")
        var saturated = AdaptiveAugmentation(probability: 0.9, interval: 1, rampImages: 100)
        saturated.observe(realLogits: logits(100, above: 100))
        #expect(saturated.probability == 1, "0.9 + 1 is clamped to 1")
        // r exactly at the target (80 of 100 positive: r = 0.6) leaves p alone.
        var balanced = AdaptiveAugmentation(probability: 0.5, interval: 1, rampImages: 100)
        balanced.observe(realLogits: logits(100, above: 80))
        #expect(balanced.probability == 0.5)
    }

    @Test func stateSurvivesItsCheckpointEncoding() throws {
        var controller = AdaptiveAugmentation(probability: 0.123, interval: 4)
        controller.observe(realLogits: logits(7, above: 5))
        var restored = AdaptiveAugmentation()
        try restored.restore(encoded: controller.encoded, path: "c.ckpt")
        #expect(restored == controller)
        #expect(throws: CheckpointError.self) { try restored.restore(encoded: "1 2 3", path: "c.ckpt") }
        #expect(throws: CheckpointError.self) {
            try restored.restore(encoded: [Float(1.5), 0, 0, 0].map { String($0.bitPattern) }.joined(separator: " "), path: "c.ckpt")
        }
    }

    /// The map itself: at p = 0 every image passes through untouched (forward and backward);
    /// at p = 0.5 some images are left alone and others changed, each transform decided apart.
    @Test func augmentationAppliesEachTransformWithTheProbability() {
        var data = RandomGenerator(seed: 4)
        let x = Tensor(zeros: [200, 1, 16, 16])
        data.fillUniform(x, -1, 1)
        let off = DiffAugment(seed: 1)
        off.adaptive = AdaptiveAugmentation(probability: 0)
        #expect(off.forward(x).values == x.values)
        #expect(off.backward(x).values == x.values)

        let half = DiffAugment(seed: 1)
        half.adaptive = AdaptiveAugmentation(probability: 0.5)
        let y = half.forward(x)
        let image = 16 * 16
        let untouched = (0..<200).filter { b in (0..<image).allSatisfy { y.data[b * image + $0] == x.data[b * image + $0] } }.count
        // None of three transforms drawn: 1/8 of the images (a drawn shift of 0 adds a little).
        #expect((10...45).contains(untouched), "\(untouched) of 200 images untouched at p = 0.5")
    }

    /// The device's controller (`ada_observe`) keeps the CPU's state bit for bit over a run of
    /// batches that push p up, hold it and pull it down.
    @Test(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the kernels are not emulated"))
    func deviceControllerMatchesTheCPU() throws {
        let device = EmulatedDevice()
        var cpu = AdaptiveAugmentation(probability: 0.25, interval: 3, rampImages: 700)
        let state = try device.upload(cpu.state)
        let shares = [64, 64, 60, 51, 51, 40, 10, 12, 64, 0, 3, 33, 64, 64, 64]
        for (index, above) in shares.enumerated() {
            let batch = logits(64, above: above)
            cpu.observe(realLogits: batch)
            let input = try device.upload(batch.values)
            try device.launch("ada_observe", grid: 1, block: AugmentKernels.observeBlock,
                              [.buffer(input), .int64(64), .buffer(state), .float(cpu.target), .float(cpu.rampImages),
                               .int32(Int32(cpu.interval))])
            #expect(try state.floats() == cpu.state, "after batch \(index)")
        }
        #expect(cpu.probability != 0.25, "p moved")
    }
}
