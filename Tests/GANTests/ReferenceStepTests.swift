import CUDA
import Engine
import GAN
import GPUEngine
import KernelEmulation
import Testing

/// One full reference training step (D step and G step, Adam updates included) against
/// PyTorch 2.13 on the same weights and inputs (scripts/make_reference_fixture.py).
///
/// Tolerances: Float32 sums in another order differ by ~1e-6 relative per product; through
/// three BatchNorm layers and two networks they grow to ~1e-4 of each tensor's scale, so
/// values must agree within 2e-3 of the tensor's largest sampled magnitude. Biases followed by
/// BatchNorm have a true gradient of 0 (the normalisation removes them): both sides hold only
/// rounding noise there, hence the absolute floor. Adam's first step moves each weight by
/// about lr * sign(gradient), so parameters after the step are compared only where the
/// reference gradient is clearly non-zero.
@Suite struct ReferenceStepTests {
    /// Biases of layers followed by BatchNorm, with the weight of the same layer.
    static let cancelledByBatchNorm = [
        "D.conv2.bias": "D.conv2.weight", "D.conv3.bias": "D.conv3.weight",
        "G.up1.bias": "G.up1.weight", "G.up2.bias": "G.up2.weight",
    ]

    let fixture: ReferenceFixture
    let generator: Generator
    let discriminator: Discriminator
    let step: TrainingStep
    let real: Tensor
    let z: Tensor
    let realLabels: [Int32]
    let fakeLabels: [Int32]

    init() throws {
        let fixture = try ReferenceFixture.load()
        self.fixture = fixture
        let configuration = ModelConfiguration(imageChannels: fixture.channels, classes: fixture.classes)
        generator = Generator(configuration)
        discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: fixture.generatorSeed)
        initializeDCGAN(discriminator.parameters, seed: fixture.discriminatorSeed)
        step = TrainingStep(generator: generator, discriminator: discriminator, seed: 0)

        var data = RandomGenerator(seed: fixture.dataSeed)
        real = Tensor(zeros: [fixture.batch, fixture.channels, 32, 32])
        data.fillUniform(real, -1, 1)
        realLabels = (0..<fixture.batch).map { _ in Int32(data.int(below: fixture.classes)) }
        z = Tensor(zeros: [fixture.batch, configuration.latentSize])
        var noise = RandomGenerator(seed: fixture.dataSeed + 1)
        noise.fillNormal(z)
        var labels = RandomGenerator(seed: fixture.dataSeed + 2)
        fakeLabels = (0..<fixture.batch).map { _ in Int32(labels.int(below: fixture.classes)) }
    }

    @Test func parameterNamesAndInputsMatchTheFixture() {
        #expect(generator.parameters.map(\.name) == fixture.generatorParameters)
        #expect(discriminator.parameters.map(\.name) == fixture.discriminatorParameters)
        #expect(realLabels == fixture.realLabels)
        #expect(fakeLabels == fixture.fakeLabels)
        let realInput = Comparison("real", real, fixture.inputs["real"]!)
        let noise = Comparison("z", z, fixture.inputs["z"]!)
        #expect(realInput.maxDiff < 1e-6 && noise.maxDiff < 1e-6, "\(realInput); \(noise)")
    }

    @Test func oneTrainingStepMatchesPyTorch() {
        let report = step.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        expectMatchesFixture(report, fake: generator.forwardOutputForTesting)
    }

    /// The same step on the device engine (`DeviceTrainingStep`), here on the CPU emulation
    /// of CUDA; `GPUStepTests` runs it on a GPU. Same tolerances as the CPU engine's.
    @Test(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device step is not emulated"))
    func oneDeviceTrainingStepOnTheEmulationMatchesPyTorch() throws {
        try runOnDevice(EmulatedDevice())
    }

    /// `toleranceScale`: every tolerance times this (products on TF32 tensor cores: 10).
    func runOnDevice(_ device: any KernelDevice, toleranceScale: Double = 1) throws {
        let cancelled = (discriminator.parameters + generator.parameters).filter { Self.cancelledByBatchNorm[$0.name] != nil }
        let before = cancelled.map(\.value.values)
        let deviceStep = try DeviceTrainingStep(step, on: device)
        let report = try deviceStep(real: DeviceTensor(real, on: device), realLabels: DeviceLabels(realLabels, on: device),
                                    noise: DeviceTensor(z, on: device), fakeLabels: DeviceLabels(fakeLabels, on: device))
        try deviceStep.download()
        expectMatchesFixture(report, fake: try #require(try deviceStep.lastImages()), scale: toleranceScale)
        // The device sums no gradient for them (`DeviceConv2d.BiasUse.cancelledByBatchNorm`,
        // `DeviceConvTranspose2d.biasCancelledByBatchNorm`): exactly 0, so Adam left them as they were.
        #expect(cancelled.count == 4)
        for (parameter, initial) in zip(cancelled, before) {
            #expect(parameter.grad.values.allSatisfy { $0 == 0 }, "\(parameter.name): no gradient on the device")
            #expect(parameter.value.values == initial, "\(parameter.name) unchanged by Adam")
        }
    }

    /// How far a step whose products round their operands may stray from the FP32 fixture.
    /// Every gradient is compared in norm; the output layer's bias (`G.up3.bias`) sums 65,536
    /// pixel gradients that nearly cancel, each carrying the rounding, so it has a bound of its
    /// own (nil: not compared). Elements near zero differ more, so Adam's first step (lr * sign)
    /// flips on a few: parameters after the step are not compared.
    struct ReducedPrecision {
        let loss: Double, images: Double, gradientNorm: Double, outputBias: Double?

        /// TF32 (10-bit mantissas in). On an H200 every gradient stayed within 1% of the
        /// fixture in norm, the output bias's differed by 34%.
        static let tensorFloat32 = ReducedPrecision(loss: 1e-3, images: 1e-3, gradientNorm: 2e-2, outputBias: nil)
        /// bfloat16 (8-bit mantissas in; AMX tiles on the CPU, `--bf16` on a GPU). Measured on
        /// a Sapphire Rapids: losses within 2e-3 of PyTorch's (relative 1.3e-3), images within
        /// 1.2e-3, every gradient within 1.1% in norm but the output bias (12%); bounded by
        /// about twice those: a product on the wrong operands or a dropped tile is off by far more.
        static let bfloat16 = ReducedPrecision(loss: 4e-3, images: 3e-3, gradientNorm: 2.5e-2, outputBias: 0.25)
        /// Half-precision products with Float sums (`PanelKernel.avx512Half`: 11-bit mantissas in,
        /// sums of 64 products in half). Measured on an Emerald Rapids: losses within 1.5e-4,
        /// images within 4e-4, D's gradients within 0.35% in norm, G's within 1.9% (G.bn2.weight),
        /// bounded by about twice those. The output bias differed by 48% and is not compared:
        /// half sums add their rounding to each of its 65,536 nearly cancelling terms, where
        /// bfloat16's rounded weights perturb them alike (12%).
        static let half = ReducedPrecision(loss: 5e-4, images: 1e-3, gradientNorm: 4e-2, outputBias: nil)
        /// FP32 with the 4/2/1 convolutions by Winograd F(4x4, 2x2) (`ComputeContext.winogradConvolutions`).
        /// Measured on a Zen 4: the images within 4e-7, G's loss 3.8e-4 off (the G step reads D's
        /// Winograd passes), every gradient within 0.6% in norm (G.bn2.bias; D's within 0.05%),
        /// the output bias 1.9%; bounded by about 2.5 times those. bfloat16's were 2-20 times larger.
        static let winograd = ReducedPrecision(loss: 1e-3, images: 1e-5, gradientNorm: 1.5e-2, outputBias: 0.05)
    }

    /// The step's losses, mean real logit, images and gradients against the fixture, within `precision`.
    func expectNearFixture(_ report: StepReport, fake: Tensor, _ precision: ReducedPrecision) {
        let expected = fixture.expected
        let lossD = expected["loss_d"]!.values[0], lossG = expected["loss_g"]!.values[0]
        #expect(abs(Double(report.discriminatorLoss) - lossD) < precision.loss * max(1, abs(lossD)), "loss_D \(report.discriminatorLoss) vs \(lossD)")
        #expect(abs(Double(report.generatorLoss) - lossG) < precision.loss * max(1, abs(lossG)), "loss_G \(report.generatorLoss) vs \(lossG)")
        let realMean = expected["real_logits"]!.values.reduce(0, +) / Double(fixture.batch)
        #expect(abs(Double(report.realLogitMean) - realMean) < precision.loss, "mean real logit")
        let images = Comparison("fake", fake, expected["fake"]!)
        #expect(images.within(atol: precision.images, rtol: precision.images), "\(images)")
        for parameter in discriminator.parameters + generator.parameters where Self.cancelledByBatchNorm[parameter.name] == nil {
            let comparison = Comparison(parameter.name, parameter.grad, expected["grad:\(parameter.name)"]!)
            let bound = parameter.name == "G.up3.bias" ? precision.outputBias : precision.gradientNorm
            if let bound { #expect(comparison.normRelativeDiff < bound, "grad norm \(comparison)") }
        }
    }

    /// The step on a GPU whose products round their operands (TF32, the GPU's default; bfloat16
    /// with `--bf16`) against the same FP32 fixture: what the rounding keeps.
    func runOnDevice(_ device: any KernelDevice, _ precision: ReducedPrecision) throws {
        let deviceStep = try DeviceTrainingStep(step, on: device)
        let report = try deviceStep(real: DeviceTensor(real, on: device), realLabels: DeviceLabels(realLabels, on: device),
                                    noise: DeviceTensor(z, on: device), fakeLabels: DeviceLabels(fakeLabels, on: device))
        try deviceStep.download()
        expectNearFixture(report, fake: try #require(try deviceStep.lastImages()), precision)
    }

    /// The CPU step with bfloat16 products (a context that asks for them, on a CPU with a
    /// kernel for them: AMX tiles or AVX512-BF16 dot products) against the FP32 fixture.
    @Test(.enabled(if: BFloat16Kernel.fastest != nil, "this CPU has no bfloat16 kernel: bfloat16 products are not used here"))
    func oneTrainingStepWithBFloat16ProductsStaysNearPyTorch() {
        let report = ComputeContext(threads: 2, products: .bfloat16).run {
            step.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        }
        expectNearFixture(report, fake: generator.forwardOutputForTesting, .bfloat16)
    }

    /// The CPU step with half-precision products (what a context asking for bfloat16 gets on a
    /// CPU with AVX512-FP16 but no bfloat16 kernel faster than Float) against the FP32 fixture.
    @Test(.enabled(if: ComputeContext(threads: 2, products: .bfloat16).halfColumns,
                   "reduced products here are not half precision (a bfloat16 kernel, or no AVX512-FP16)"))
    func oneTrainingStepWithHalfProductsStaysNearPyTorch() {
        let report = ComputeContext(threads: 2, products: .bfloat16).run {
            step.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        }
        expectNearFixture(report, fake: generator.forwardOutputForTesting, .half)
    }

    /// The CPU step with Winograd convolutions in FP32 (what a context asking for bfloat16 gets
    /// on a CPU without a bfloat16 kernel) against the FP32 fixture.
    @Test func oneTrainingStepWithWinogradConvolutionsStaysNearPyTorch() {
        let report = ComputeContext(threads: 2, products: .float32, winogradConvolutions: true).run {
            step.step(real: real, realLabels: realLabels, noise: z, fakeLabels: fakeLabels)
        }
        expectNearFixture(report, fake: generator.forwardOutputForTesting, .winograd)
    }

    /// The step's report, images, gradients, updated parameters and running statistics (in
    /// `generator` and `discriminator`) against PyTorch's.
    func expectMatchesFixture(_ report: StepReport, fake: Tensor, scale: Double = 1) {
        let expected = fixture.expected

        // Losses and logits.
        let lossD = expected["loss_d"]!.values[0], lossG = expected["loss_g"]!.values[0]
        #expect(abs(Double(report.discriminatorLoss) - lossD) < 1e-4 * scale * max(1, abs(lossD)), "loss_D \(report.discriminatorLoss) vs \(lossD)")
        #expect(abs(Double(report.generatorLoss) - lossG) < 1e-4 * scale * max(1, abs(lossG)), "loss_G \(report.generatorLoss) vs \(lossG)")
        let realMean = expected["real_logits"]!.values.reduce(0, +) / Double(fixture.batch)
        let fakeMean = expected["fake_logits"]!.values.reduce(0, +) / Double(fixture.batch)
        #expect(abs(Double(report.realLogitMean) - realMean) < 1e-4 * scale, "mean real logit")
        #expect(abs(Double(report.fakeLogitMean) - fakeMean) < 1e-4 * scale, "mean fake logit")

        // The generated images.
        let images = Comparison("fake", fake, expected["fake"]!)
        #expect(images.within(atol: 1e-5 * scale, rtol: 1e-4 * scale), "\(images)")

        // Gradients: D's from the D step, G's from the G step (the G step leaves D's alone).
        var reportLines: [String] = []
        for parameter in discriminator.parameters + generator.parameters {
            let comparison = Comparison(parameter.name, parameter.grad, expected["grad:\(parameter.name)"]!)
            reportLines.append("grad " + comparison.description)
            if let weight = Self.cancelledByBatchNorm[parameter.name] {
                // True gradient 0: both sides must be rounding noise, tiny next to the weight's.
                let weightScale = expected["grad:\(weight)"]!.values.map(abs).max()!
                let ours = parameter.grad.values.map { abs(Double($0)) }.max()!
                #expect(ours < 1e-3 * scale * weightScale && comparison.scale < 1e-3 * scale * weightScale, "grad \(comparison)")
                continue
            }
            #expect(comparison.within(atol: 1e-7 * scale, rtol: 2e-3 * scale), "grad \(comparison)")
            #expect(comparison.normRelativeDiff < 2e-3 * scale, "grad norm \(comparison)")
        }

        // Parameters after Adam, where the reference gradient is clearly non-zero.
        for parameter in discriminator.parameters + generator.parameters {
            let after = expected["after:\(parameter.name)"]!
            let grad = expected["grad:\(parameter.name)"]!
            let gradScale = grad.values.map(abs).max() ?? 0
            var maxDiff = 0.0, compared = 0
            if Self.cancelledByBatchNorm[parameter.name] != nil { continue }
            for (k, index) in after.indices.enumerated() where abs(grad.values[k]) > 1e-2 * gradScale {
                maxDiff = max(maxDiff, abs(Double(parameter.value[index]) - after.values[k]))
                compared += 1
            }
            // lr = 2e-4: 2e-6 is 1% of one update.
            #expect(maxDiff < 2e-6 * scale, "\(parameter.name) after Adam: maxdiff \(maxDiff) over \(compared) elements")
        }

        // BatchNorm running statistics: G's updated once, D's three times (real, fake, G step).
        // The third D update sees conv biases that Adam moved by +-lr on the sign of pure
        // rounding noise, so a running mean may differ by momentum * 2 * lr = 4e-5.
        for named in generator.buffers + discriminator.buffers {
            let comparison = Comparison(named.name, named.tensor, expected["after:\(named.name)"]!)
            #expect(comparison.within(atol: 6e-5 * scale, rtol: 1e-3 * scale), "\(comparison)")
        }
        print(reportLines.joined(separator: "\n"))
    }
}
