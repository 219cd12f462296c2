import CUDA
import Engine
import GAN
import GPUEngine
import KernelEmulation
import Testing

/// What one captured training step asks of the GPU: at batch 64 the step is about 170 short
/// kernels and products, and a CUDA graph's nodes cost a few microseconds each whatever they
/// do, so their count is part of the step's time (docs/cuda.md). The reference model's step
/// (at a small width: the count does not depend on it), captured on the emulation, lists its
/// launches by kernel; the bound keeps a change that adds launches from passing unnoticed.
@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device step is not emulated"))
struct StepLaunchTests {
    @Test func theReferenceStepsLaunches() throws {
        let graph = try capturedReferenceStep(splittingNorms: true)
        // 2026-12-01, batch 64: 178, then 168 once the maps between two convolutions stayed
        // channel-major (layout passes 24 -> 8, in-place bias adds 4 -> 10), then 162 with D's
        // biases left to the layer after (the BatchNorm that cancels them, the LeakyReLU that
        // adds them in its pass). Five BatchNorms are split, three kernels each way. 2026-12-02:
        // 145, the projection head reading D's last maps channel-major, its Linear part and
        // class term in one kernel forward and two backward (layout passes 8 -> 2: G's first
        // upsampler's, whose input comes from a Linear).
        #expect(!graph.operationNames.contains("leaky_relu_forward"), "D's first LeakyReLU adds its convolution's bias")
        // Then 135: no gradient for the biases a BatchNorm cancels (D's convolutions but the
        // first, G's upsamplers but the last; their true gradient is 0).
        #expect(graph.operationNames.filter { $0 == "channel_bias_gradient" }.count <= 4)
        // Then 119: BatchNorm splits a channel from 8,192 values (`ChannelReduction.
        // batchNormSplitFrom`), so at batch 64 only G's 16 x 16 layer is split.
        #expect(graph.operationNames.filter { $0 == "batchnorm_partial_stats" }.count == 1)
        #expect(graph.operationCount <= 119, "the step launches \(graph.operationCount) kernels and products, more than before")
        #expect(graph.operationNames.filter { $0 == "swap_leading_axes" || $0 == "from_channel_major" }.count <= 2,
                "layout passes between layers that take channel-major maps")
        // What `synthd-bench train-step --one-block-norms` measures against: one kernel each way per BatchNorm.
        let oneBlock = try capturedReferenceStep(splittingNorms: false)
        #expect(!oneBlock.operationNames.contains { $0.hasPrefix("batchnorm_partial") })
        #expect(oneBlock.operationCount == graph.operationCount - 4 * graph.operationNames.filter { $0 == "batchnorm_partial_stats" }.count)
    }

    /// The daemon's generator (`conditioning = norm`) takes the class again at each of its three
    /// BatchNorms. Its per-class scale and shift run inside the BatchNorm's kernels, before
    /// the ReLU (as the CPU's `BatchNormActivation`): one more kernel a layer, for the class
    /// table's gradients. As three layers of their own (class affine forward, ReLU each way,
    /// the affine's two backward kernels) they were 15 launches and six more passes over G's maps.
    @Test func theClassConditionalGeneratorsNormsAreFused() throws {
        let reference = try capturedReferenceStep(splittingNorms: true)
        let daemon = try capturedReferenceStep(splittingNorms: true, classConditionalNorm: true)
        #expect(!daemon.operationNames.contains { $0.hasPrefix("relu") || $0.hasPrefix("class_affine") })
        #expect(daemon.operationNames.filter { $0 == "batchnorm_class_grad" }.count == 3)
        #expect(daemon.operationCount == reference.operationCount + 3)
    }

    func capturedReferenceStep(splittingNorms: Bool, classConditionalNorm: Bool = false) throws -> EmulatedDevice.Recording {
        let device = EmulatedDevice()
        let configuration = ModelConfiguration(imageChannels: 1, classes: 10, baseChannels: 8, classConditionalNorm: classConditionalNorm)
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: 1)
        initializeDCGAN(discriminator.parameters, seed: 2)
        let trainingStep = TrainingStep(generator: generator, discriminator: discriminator, seed: 0)
        let step = try DeviceTrainingStep(trainingStep, on: device)
        step.splitsBatchNormChannels = splittingNorms
        let batch = 64
        var rng = RandomGenerator(seed: 3)
        let real = Tensor(zeros: [batch, 1, 32, 32])
        rng.fillUniform(real, -1, 1)
        let (z, fakeLabels) = trainingStep.drawLatents(batch: batch)
        let realBatch = try DeviceTensor(real, on: device), noise = try DeviceTensor(z, on: device)
        let realLabels = try DeviceLabels((0..<batch).map { Int32($0 % 10) }, on: device), fake = try DeviceLabels(fakeLabels, on: device)
        let run = { () throws(CUDAError) in try step.run(real: realBatch, realLabels: realLabels, noise: noise, fakeLabels: fake) }
        try run()
        let graph = try #require(try device.capture(run) as? EmulatedDevice.Recording)
        var counts: [String: Int] = [:]
        for name in graph.operationNames { counts[name, default: 0] += 1 }
        print("reference step\(classConditionalNorm ? " with class-conditional norm" : "")"
            + "\(splittingNorms ? "" : ", one block per BatchNorm channel"): \(graph.operationCount) operations: "
            + counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        return graph
    }
}
