import CUDA
import Engine
@testable import GAN
import GPUEngine
import Imaging
import KernelEmulation
import Testing

/// The device step against the CPU step on the daemon's model shape (hinge loss, class-
/// conditional BatchNorm in G, colour images, DiffAugment in place), same weights and inputs:
/// losses, every gradient and the parameters after Adam. The reference step against PyTorch
/// is `ReferenceStepTests`.
struct DeviceStepComparison {
    let device: any KernelDevice

    /// A small model of the daemon's kind; the two steps start from the same weights.
    static func makeStep(loss: AdversarialLoss, augmentation: DiffAugment.Policy?, channels: Int = 3, classes: Int = 3,
                         leCam: Float? = nil, adaptive: AdaptiveAugmentation? = nil, spectral: Bool = false,
                         consistency: Float? = nil, modeSeeking: Float? = nil, resolution: Int = 32,
                         biasedConvolutions: Bool = false) -> TrainingStep {
        let configuration = ModelConfiguration(imageChannels: channels, classes: classes, resolution: resolution, latentSize: 16,
                                               embeddingSize: 8, baseChannels: 8, classConditionalNorm: true,
                                               discriminatorNormalization: spectral ? .spectral : .batch)
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: 5)
        initializeDCGAN(discriminator.parameters, seed: 6)
        // The class tables start at identity; make them class-dependent so their gradients matter.
        for (index, norm) in generator.classNorms.enumerated() {
            var rng = RandomGenerator(seed: 70 + UInt64(index))
            rng.fillUniform(norm.scale.value, 0.5, 1.5)
            rng.fillUniform(norm.shift.value, -0.2, 0.2)
        }
        // D's convolution biases start at 0; make them matter too (the device leaves them to the
        // layer after: the running mean and the fused LeakyReLU must still see them).
        if biasedConvolutions {
            var biases = RandomGenerator(seed: 80)
            for convolution in discriminator.convolutions { if let bias = convolution.bias { biases.fillUniform(bias.value, -0.3, 0.3) } }
        }
        let step = TrainingStep(generator: generator, discriminator: discriminator, loss: loss, seed: 0)
        if let augmentation { step.augmentation = DiffAugment(policy: augmentation, seed: 9) }
        step.augmentation?.adaptive = adaptive
        if let leCam { step.leCam = LeCamRegularization(weight: leCam) }
        if let consistency { step.consistency = ConsistencyRegularization(weight: consistency, seed: 13) }
        step.modeSeeking = modeSeeking.map { ModeSeekingRegularization(weight: $0) }
        return step
    }

    func compare(loss: AdversarialLoss, augmentation: DiffAugment.Policy?, leCam: Float? = nil,
                 adaptive: AdaptiveAugmentation? = nil, spectral: Bool = false, consistency: Float? = nil,
                 modeSeeking: Float? = nil, resolution: Int = 32) throws {
        let cpu = Self.makeStep(loss: loss, augmentation: augmentation, leCam: leCam, adaptive: adaptive, spectral: spectral,
                                consistency: consistency, modeSeeking: modeSeeking, resolution: resolution, biasedConvolutions: true)
        let mirrored = Self.makeStep(loss: loss, augmentation: augmentation, leCam: leCam, adaptive: adaptive, spectral: spectral,
                                     consistency: consistency, modeSeeking: modeSeeking, resolution: resolution,
                                     biasedConvolutions: true)
        let batch = 6
        var data = RandomGenerator(seed: 11)
        let real = Tensor(zeros: [batch, 3, resolution, resolution]), z = Tensor(zeros: [batch, 16])
        data.fillUniform(real, -1, 1)
        data.fillNormal(z)
        let realLabels: [Int32] = [0, 2, 1, 2, 0, 2]
        // The mode-seeking term compares pairs of one class (i, i + 3).
        let fakeLabels: [Int32] = modeSeeking == nil ? [1, 1, 0, 2, 0, 1] : [1, 2, 0, 1, 2, 0]

        let step = try DeviceTrainingStep(mirrored, on: device)
        let report = try step(real: DeviceTensor(real, on: device), realLabels: DeviceLabels(realLabels, on: device),
                              noise: DeviceTensor(z, on: device), fakeLabels: DeviceLabels(fakeLabels, on: device))
        try step.download()
        // The device draws consistency regularisation's translations itself: the CPU step
        // translates by the same ones.
        if let term = cpu.consistency {
            let shifts = try #require(try step.consistencyTranslations())
            #expect(stride(from: 0, to: shifts.count, by: 8).contains { shifts[$0 + 3] != 0 || shifts[$0 + 4] != 0 },
                    "some image moved: \(shifts)")
            term.transform.replay = shifts
        }
        let expected = cpu.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)

        for (ours, theirs, what) in [(report.discriminatorLoss, expected.discriminatorLoss, "D loss"),
                                     (report.realLogitMean, expected.realLogitMean, "mean real logit"),
                                     (report.fakeLogitMean, expected.fakeLogitMean, "mean fake logit")] {
            #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "\(what): \(ours) vs \(theirs)")
        }
        // G's loss goes through D after Adam's first step, which moves every weight by about
        // lr * sign(gradient): where a gradient is rounding noise the sign, and so the weight,
        // may differ by 2 lr between the engines. Measured: 6.5e-4 relative.
        #expect(abs(report.generatorLoss - expected.generatorLoss) <= 2e-3 * max(1, abs(expected.generatorLoss)),
                "G loss: \(report.generatorLoss) vs \(expected.generatorLoss)")
        // The mode-seeking term's pair spread: G's images before its update, the same on both.
        #expect((report.pairSpread == nil) == (modeSeeking == nil) && (expected.pairSpread == nil) == (modeSeeking == nil))
        if let ours = report.pairSpread, let theirs = expected.pairSpread {
            #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "pair spread: \(ours) vs \(theirs)")
        }
        // G's gradients go through D after D's Adam step (as G's loss does, above): a D weight
        // whose gradient is rounding noise may move by 2 lr more in one engine than in the
        // other, and G's gradients feel it. On a Zen 2 (AVX2: OpenBLAS's Haswell kernels) that
        // reached 3.2e-3 of a gradient's scale at 64 x 64 (G.up4.weight; D's own gradients
        // stayed within 2e-3); a wrong kernel differs by the whole scale.
        for (networkCPU, networkDevice, relative) in [(cpu.discriminator.parameters, mirrored.discriminator.parameters, Float(2e-3)),
                                                      (cpu.generator.parameters, mirrored.generator.parameters, Float(6e-3))] {
            let networkScale = networkCPU.map { $0.grad.values.map(abs).max() ?? 0 }.max() ?? 0
            for (a, b) in zip(networkCPU, networkDevice) {
                let scale = a.grad.values.map(abs).max() ?? 0
                // Biases before a BatchNorm have a true gradient of 0: rounding noise on both
                // sides, which grows with the network's gradients (LeCam's term: 1.8x their
                // scale at 1e-3 of the network's) and with the biases themselves (the device
                // leaves a convolution's bias to the BatchNorm, which cancels it; the CPU adds it
                // first): such a gradient must stay noise, under 1e-4 of the network's scale.
                let noise = scale < 1e-4 * networkScale
                let tolerance = Swift.max(relative * max(scale, 5e-3 * networkScale), noise ? 1e-4 * networkScale : 0) + 1e-8
                let gradientDifference = zip(a.grad.values, b.grad.values).map { abs($0 - $1) }.max() ?? 0
                #expect(gradientDifference <= tolerance, "grad \(a.name): max difference \(gradientDifference), scale \(scale)")
                var parameterDifference: Float = 0
                for i in 0..<a.value.count where abs(a.grad[i]) > 1e-2 * scale && scale > 1e-3 * networkScale {
                    parameterDifference = max(parameterDifference, abs(a.value[i] - b.value[i]))
                }
                #expect(parameterDifference < 2e-6, "\(a.name) after Adam: max difference \(parameterDifference)")
            }
        }
        for (a, b) in zip(cpu.generator.buffers + cpu.discriminator.buffers, mirrored.generator.buffers + mirrored.discriminator.buffers) {
            let difference = zip(a.tensor.values, b.tensor.values).map { abs($0 - $1) }.max() ?? 0
            #expect(difference < 6e-5, "\(a.name): max difference \(difference)")
        }
        if let expected = cpu.leCam, let got = mirrored.leCam {
            #expect(expected.realAnchor != 0 && expected.fakeAnchor != 0, "the anchors moved")
            #expect(abs(got.realAnchor - expected.realAnchor) <= 1e-6 && abs(got.fakeAnchor - expected.fakeAnchor) <= 1e-6,
                    "anchors \(got.realAnchor), \(got.fakeAnchor) vs \(expected.realAnchor), \(expected.fakeAnchor)")
        }
        if let expected = cpu.augmentation?.adaptive {
            #expect(expected.probability != adaptive?.probability, "p moved")
            #expect(mirrored.augmentation?.adaptive == expected, "the device's controller state after the step")
            #expect(report.augmentationProbability == expected.probability)
        }
    }

    /// Three steps with every augmentation on: the losses stay finite and differ from step to
    /// step (new draws each step), and the weights move.
    func augmentedStepsRun(resolution: Int = 32) throws {
        let step = Self.makeStep(loss: .hinge, augmentation: .all, resolution: resolution)
        let before = step.generator.parameters.map { $0.value.values }
        let deviceStep = try DeviceTrainingStep(step, on: device)
        var data = RandomGenerator(seed: 12)
        let real = Tensor(zeros: [4, 3, resolution, resolution]), z = Tensor(zeros: [4, 16])
        data.fillUniform(real, -1, 1)
        data.fillNormal(z)
        let realBatch = try DeviceTensor(real, on: device), noise = try DeviceTensor(z, on: device)
        let labels = try DeviceLabels([0, 1, 2, 1], on: device)
        var reports: [StepReport] = []
        for _ in 0..<3 { reports.append(try deviceStep(real: realBatch, realLabels: labels, noise: noise, fakeLabels: labels)) }
        #expect(reports.allSatisfy { $0.discriminatorLoss.isFinite && $0.generatorLoss.isFinite })
        #expect(Set(reports.map(\.realLogitMean)).count == 3)
        try deviceStep.download()
        #expect(step.generator.parameters.map { $0.value.values } != before)
    }
}

@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device step is not emulated"))
struct EmulatedTrainingStepTests {
    let comparison = DeviceStepComparison(device: EmulatedDevice())

    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStep(loss: AdversarialLoss) throws { try comparison.compare(loss: loss, augmentation: nil) }

    /// With an augmentation whose policy does nothing, the step goes through the augmentation
    /// layers (forward and G's backward) and must still equal the CPU step.
    @Test func matchesTheCPUStepThroughAnIdentityAugmentation() throws { try comparison.compare(loss: .hinge, augmentation: []) }

    /// LeCam's term and its anchors (without the term on the device, D's gradients differ by far more).
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithLeCam(loss: AdversarialLoss) throws { try comparison.compare(loss: loss, augmentation: nil, leCam: 0.5) }

    /// Adaptive augmentation's controller on the device (the policy empty, so that the maps
    /// stay the identity and the steps comparable): the same p after the step.
    @Test func matchesTheCPUStepWithAdaptiveAugmentation() throws {
        try comparison.compare(loss: .hinge, augmentation: [], adaptive: AdaptiveAugmentation(probability: 0.5, interval: 1, rampImages: 60))
    }

    /// Spectral normalisation in D: the power iteration, W / sigma and the gradient hand-over
    /// on the device; the u vectors are among the buffers compared.
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithSpectralNormalization(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: nil, spectral: true)
    }

    /// Consistency regularisation: the translated pass, its part of the real gradient and the
    /// second translated pass, with the CPU step moving the images by the device's draws.
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithConsistencyRegularization(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: nil, consistency: 10)
    }

    /// The mode-seeking term's gradient in G's output (two launches), through DiffAugment's
    /// identity; without the term on the device G's gradients differ by far more.
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithModeSeeking(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: [], modeSeeking: 1)
    }
    @Test func augmentedStepsRun() throws { try comparison.augmentedStepsRun() }
    /// A 64 x 64 colour model (one more stage in each network: other grid sizes for im2col,
    /// col2im and BatchNorm), the daemon's kind, against the CPU step.
    @Test func matchesTheCPUStepAt64x64() throws { try comparison.compare(loss: .hinge, augmentation: [], resolution: 64) }
    @Test func augmentedStepsRunAt64x64() throws { try comparison.augmentedStepsRun(resolution: 64) }
}

/// The same on a GPU (the device machine); skipped elsewhere, saying so.
@Suite(.enabled(if: gpu != nil, "no NVIDIA GPU here (GPU tests run on the device machine)"))
struct GPUTrainingStepTests {
    var comparison: DeviceStepComparison { DeviceStepComparison(device: gpu!) }

    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStep(loss: AdversarialLoss) throws { try comparison.compare(loss: loss, augmentation: nil) }
    @Test func matchesTheCPUStepThroughAnIdentityAugmentation() throws { try comparison.compare(loss: .hinge, augmentation: []) }
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithLeCam(loss: AdversarialLoss) throws { try comparison.compare(loss: loss, augmentation: nil, leCam: 0.5) }
    @Test func matchesTheCPUStepWithAdaptiveAugmentation() throws {
        try comparison.compare(loss: .hinge, augmentation: [], adaptive: AdaptiveAugmentation(probability: 0.5, interval: 1, rampImages: 60))
    }
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithSpectralNormalization(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: nil, spectral: true)
    }
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithConsistencyRegularization(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: nil, consistency: 10)
    }
    /// The mode-seeking term's gradient in G's output (two launches), through DiffAugment's
    /// identity; without the term on the device G's gradients differ by far more.
    @Test(arguments: [AdversarialLoss.hinge, .nonSaturating])
    func matchesTheCPUStepWithModeSeeking(loss: AdversarialLoss) throws {
        try comparison.compare(loss: loss, augmentation: [], modeSeeking: 1)
    }
    @Test func augmentedStepsRun() throws { try comparison.augmentedStepsRun() }
    /// A 64 x 64 colour model (one more stage in each network: other grid sizes for im2col,
    /// col2im and BatchNorm), the daemon's kind, against the CPU step.
    @Test func matchesTheCPUStepAt64x64() throws { try comparison.compare(loss: .hinge, augmentation: [], resolution: 64) }
    @Test func augmentedStepsRunAt64x64() throws { try comparison.augmentedStepsRun(resolution: 64) }
    @Test func capturedStepsEqualEagerSteps() throws { try CapturedStepChecks(device: gpu!).capturedStepsEqualEagerSteps() }
    @Test func reportsReadInBatchesAreEachStepsLosses() throws { try CapturedStepChecks(device: gpu!).reportsReadInBatchesAreEachStepsLosses() }
    @Test(arguments: [false, true]) func samplingMatchesTheCPU(classConditionalNorm: Bool) throws {
        try DeviceSamplingChecks(device: gpu!).samplingMatchesTheCPU(classConditionalNorm: classConditionalNorm)
    }
    @Test func samplingMatchesTheCPUAt64x64() throws {
        try DeviceSamplingChecks(device: gpu!).samplingMatchesTheCPU(classConditionalNorm: true, resolution: 64)
    }
    @Test func samplerMatchesTheCPU() throws { try DeviceSamplingChecks(device: gpu!).samplerMatchesTheCPU() }
    /// The reference step against PyTorch's fixture, on the GPU.
    @Test func referenceStepMatchesPyTorch() throws { try ReferenceStepTests().runOnDevice(gpu!) }
    /// The same with TF32 products (the GPU's default; `--fp32` turns them off), against the same FP32 fixture: what TF32 keeps.
    @Test func referenceStepWithTF32StaysCloseToPyTorch() throws {
        try ReferenceStepTests().runOnDevice(try CUDADevice(products: .tensorFloat32), .tensorFloat32)
    }
    /// With bfloat16 tensor-core products (`--bf16`): the margins of the CPU's AMX tiles, which round alike.
    @Test func referenceStepWithBFloat16StaysCloseToPyTorch() throws {
        try ReferenceStepTests().runOnDevice(try CUDADevice(products: .bfloat16), .bfloat16)
    }
}

/// The GPU the tests share, or nil where the driver, NVRTC or cuBLAS does not load.
let gpu: CUDADevice? = (try? CUDADriver()) != nil ? try? CUDADevice() : nil

/// Sampling on a device against `Generator.sample` with Float products (`.columns`): with each
/// batch's own BatchNorm statistics and with given (standing) ones, with and without class-
/// conditional norm; the statistics it used, and the running averages left as they were.
struct DeviceSamplingChecks {
    let device: any KernelDevice

    func samplingMatchesTheCPU(classConditionalNorm: Bool, resolution: Int = 32) throws {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 3, resolution: resolution, latentSize: 16, embeddingSize: 8,
                                               baseChannels: 8, classConditionalNorm: classConditionalNorm)
        let generator = Generator(configuration)
        initializeDCGAN(generator.parameters, seed: 21)
        let gpu = try DeviceGenerator(generator, on: device)
        var rng = RandomGenerator(seed: 22)
        let z = Tensor(zeros: [7, 16])
        rng.fillNormal(z)
        let labels: [Int32] = [0, 2, 1, 1, 0, 2, 2]
        let running = generator.norms.map { $0.runningMean.values + $0.runningVar.values }

        // (Outputs are read at once: both generators reuse their output buffers.)
        let own = generator.sample(z, labels: labels, upsampling: .columns).values
        let ownStatistics = generator.lastSamplingStatistics
        let zs = try DeviceTensor(z, on: device), deviceLabels = try DeviceLabels(labels, on: device)
        let deviceOwn = try gpu.sample(zs, labels: deviceLabels)
        #expect(DeviceStepComparison.maxDifference(try deviceOwn.values(), own) < 2e-4, "with each batch's statistics")
        for (ours, theirs) in zip(try gpu.lastSamplingStatistics(), ownStatistics) {
            #expect(DeviceStepComparison.maxDifference(ours.mean.map(Float.init), theirs.mean.map(Float.init)) < 1e-4)
            #expect(DeviceStepComparison.maxDifference(ours.variance.map(Float.init), theirs.variance.map(Float.init)) < 1e-3)
        }

        // Given statistics: a standing set, here made up so that it differs from the batch's.
        let given = ownStatistics.map { ChannelStatistics(mean: $0.mean.map { $0 + 0.1 }, variance: $0.variance.map { $0 * 1.5 + 0.01 }) }
        let fixed = generator.sample(z, labels: labels, upsampling: .columns, statistics: given).values
        var deviceGiven: [DeviceStatistics] = []
        for (statistics, norm) in zip(given, generator.norms) { deviceGiven.append(try DeviceStatistics(statistics, eps: norm.eps, on: device)) }
        let deviceFixed = try gpu.sample(zs, labels: deviceLabels, statistics: deviceGiven)
        #expect(DeviceStepComparison.maxDifference(try deviceFixed.values(), fixed) < 2e-4, "with given statistics")
        #expect(DeviceStepComparison.maxDifference(try deviceFixed.values(), own) > 1e-2, "the given statistics were used")

        try gpu.download()
        #expect(generator.norms.map { $0.runningMean.values + $0.runningVar.values } == running, "running averages untouched")
    }
}

extension DeviceStepComparison {
    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) against \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}

@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: device sampling is not emulated"))
struct EmulatedSamplingTests {
    @Test(arguments: [false, true]) func samplingMatchesTheCPU(classConditionalNorm: Bool) throws {
        try DeviceSamplingChecks(device: EmulatedDevice()).samplingMatchesTheCPU(classConditionalNorm: classConditionalNorm)
    }
    @Test func samplingMatchesTheCPUAt64x64() throws {
        try DeviceSamplingChecks(device: EmulatedDevice()).samplingMatchesTheCPU(classConditionalNorm: true, resolution: 64)
    }
}

extension DeviceSamplingChecks {
    /// `Sampler` with the generator on the device makes the CPU's images (Float products on
    /// both sides) within a grey level, standing statistics included: the CPU in batches of
    /// 16, the device with standing statistics in one of 40 (`deviceBatchSize`), and in
    /// batches of 16 too, the same images.
    func samplerMatchesTheCPU() throws {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 3, latentSize: 16, embeddingSize: 8, baseChannels: 8)
        let generator = Generator(configuration)
        initializeDCGAN(generator.parameters, seed: 23)
        let record = ModelRecord(configuration: configuration, classes: ["a", "b", "c"], mode: .grey, imageWidth: 28, imageHeight: 28,
                                 steps: 0, imagesAtLastRun: 0, options: TrainingOptions(), checkpointID: "test")
        var cpu = Sampler(generator: generator, record: record)
        cpu.upsampling = .columns
        cpu.batchSize = 16
        var onDevice = cpu
        onDevice.device = device
        let standing = try cpu.standingStatistics(seed: 4, batches: 2), deviceStanding = try onDevice.standingStatistics(seed: 4, batches: 2)
        for (ours, theirs) in zip(deviceStanding, standing) {
            #expect(DeviceStepComparison.maxDifference(ours.mean.map(Float.init), theirs.mean.map(Float.init)) < 1e-4)
            #expect(DeviceStepComparison.maxDifference(ours.variance.map(Float.init), theirs.variance.map(Float.init)) < 1e-3)
        }
        cpu.statistics = standing
        onDevice.statistics = standing
        let labels: [Int32] = (0..<40).map { Int32($0 % 3) }
        let expected = try cpu.sample(labels: labels, seed: 9), made = try onDevice.sample(labels: labels, seed: 9)
        #expect(made.count == expected.count && made.allSatisfy { $0.width == 28 && $0.height == 28 })
        var worst = 0
        for (a, b) in zip(made, expected) { for (p, q) in zip(a.pixels, b.pixels) { worst = max(worst, abs(Int(p) - Int(q))) } }
        #expect(worst <= 1, "images differ by up to \(worst) grey levels")
        var small = onDevice
        small.deviceBatchSize = 16
        let madeInSixteens = try small.sample(labels: labels, seed: 9)
        #expect(zip(madeInSixteens, made).allSatisfy { $0.pixels == $1.pixels }, "a device batch's size changed its images")
    }
}

@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: device sampling is not emulated"))
struct EmulatedSamplerTests {
    @Test func samplerMatchesTheCPU() throws { try DeviceSamplingChecks(device: EmulatedDevice()).samplerMatchesTheCPU() }
}
