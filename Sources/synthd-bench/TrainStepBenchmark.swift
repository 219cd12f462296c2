import ArgumentParser
import CommandLineSupport
import Foundation
import CUDA
import Engine
import GAN
import GPUEngine
#if canImport(Glibc)
import Glibc
#endif

/// Times the reference cDCGAN-32 training step (shared/REFERENCE-MODEL.md) on random data.
struct TrainStepBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Time the reference cDCGAN-32 training step (C=1, K=10) on random data.")

    @Option(help: "Images per batch.") var batch = 64
    @Option(help: "Timed steps.") var steps = 20
    @Option(help: "Untimed steps first (allocation, caches, BLAS threads).") var warmup = 3
    @Option(help: "Image channels (1 grey, 3 colour).") var channels = 1
    @Option(help: "Classes.") var classes = 10
    @Option(help: "Threads for BLAS and element-wise work (default: all cores).") var threads: Int?
    @Option(help: "Seed of weights and data.") var seed: UInt64 = 1

    @Option(name: [.customLong("float-products"), .customLong("winograd-products")],
            help: "On a CPU, the kernel of the Float products the engine packs itself (the Winograd passes'; the columns path's, which take only avx512): openblas, avx2 or avx512 (default: the widest this CPU runs; to compare).")
    var floatProducts: String?

    @Option(help: "Also time each step with these Float products (openblas, avx2 or avx512), alternating step by step so that a VM's drift falls on both alike; prints both medians and the median of the paired ratios.")
    var alternateWith: String?

    func validate() throws {
        guard batch > 0, steps > 0, warmup >= 0 else {
            throw ValidationError("--batch and --steps must be positive, --warmup not negative")
        }
        _ = try Self.panelKernel(floatProducts, option: "--float-products")
        _ = try Self.panelKernel(alternateWith, option: "--alternate-with")
    }

    /// An option's kernel name as a context's `panelKernel` (nil: OpenBLAS); no name, the fastest.
    static func panelKernel(_ name: String?, option: String) throws -> PanelKernel? {
        guard let name else { return PanelKernel.fastest }
        let kernels: [String: PanelKernel?] = ["openblas": nil, "avx2": .avx2, "avx512": .avx512]
        guard let kernel = kernels[name] else {
            throw ValidationError("\(option) must be openblas, avx2 or avx512, not '\(name)'")
        }
        if let kernel, !kernel.isAvailable { throw ValidationError("this CPU cannot run the \(kernel) kernel") }
        return kernel
    }

    @Flag(help: "The generator's class as a per-class scale and shift after every BatchNorm too (the daemon's default, `conditioning = norm`); the reference model takes it at G's input only.")
    var classConditionalNorm = false

    @Flag(help: "On a GPU: every BatchNorm channel reduced by one block, never split over several (to measure what the split's two extra kernels each way are worth at this batch).")
    var oneBlockNorms = false

    @OptionGroup var compute: DeviceOption

    func run() throws {
        let device = try compute.open(for: .training)
        let context = compute.cpuContext(threads: threads)
        let primary = context.with(panelKernel: try Self.panelKernel(floatProducts, option: "--float-products"))
        let alternate = try alternateWith.map { context.with(panelKernel: try Self.panelKernel($0, option: "--alternate-with")) }
        try primary.run { () throws in try measure(on: device, alternate: alternate) }
    }

    /// The products' kernel as a figure's label.
    static func label(_ context: ComputeContext) -> String { context.panelKernel.map { "\($0) panels" } ?? "OpenBLAS" }

    func measure(on device: (any KernelDevice)?, alternate: ComputeContext?) throws {
        let configuration = ModelConfiguration(imageChannels: channels, classes: classes, classConditionalNorm: classConditionalNorm)
        let generator = Generator(configuration)
        let discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: seed)
        initializeDCGAN(discriminator.parameters, seed: seed &+ 1000)
        let trainingStep = TrainingStep(generator: generator, discriminator: discriminator, seed: seed)

        var rng = RandomGenerator(seed: seed &+ 2000)
        let real = Tensor(zeros: [batch, channels, 32, 32])
        rng.fillUniform(real, -1, 1)
        let labels = (0..<batch).map { _ in Int32(rng.int(below: classes)) }

        print("cDCGAN-32 training step: batch \(batch), C=\(channels), K=\(classes), "
            + (classConditionalNorm ? "class-conditional BatchNorm in G, " : "")
            + (device.map { "on \($0.name)" } ?? "\(Parallel.maxThreads) threads, \(ComputeContext.current.productsDescription)"))
        print("G parameters: \(generator.parameterCount), D parameters: \(discriminator.parameterCount)")
        if let device { return try measureDevice(trainingStep, real: real, labels: labels, on: device) }
        for _ in 0..<warmup { trainingStep(real: real, realLabels: labels) }

        if let alternate { alternate.run { _ = trainingStep(real: real, realLabels: labels) } }

        let flopsBefore = BLAS.flopCount
        var times: [Double] = [], alternateTimes: [Double] = []
        var report = StepReport()
        for _ in 0..<steps {
            let start = monotonicSeconds()
            report = trainingStep(real: real, realLabels: labels)
            times.append(monotonicSeconds() - start)
            guard let alternate else { continue }
            let alternateStart = monotonicSeconds()
            alternate.run { _ = trainingStep(real: real, realLabels: labels) }
            alternateTimes.append(monotonicSeconds() - alternateStart)
        }
        if let alternate {
            let primary = ComputeContext.current
            let ratios = zip(alternateTimes, times).map { $0 / $1 }.sorted()
            print(String(format: "alternated: %@ median %.2f ms, %@ median %.2f ms; paired steps, %@ / %@ speed: median %.3fx (middle half %.3f-%.3f)",
                         Self.label(primary), times.sorted()[steps / 2] * 1e3, Self.label(alternate),
                         alternateTimes.sorted()[steps / 2] * 1e3, Self.label(primary), Self.label(alternate),
                         ratios[steps / 2], ratios[steps / 4], ratios[(3 * steps) / 4]))
        }
        let flopsPerStep = Double(BLAS.flopCount - flopsBefore) / Double(steps)
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        let meanTime: Double = times.reduce(0, +) / Double(times.count)
        let (fastest, slowest): (Double, Double) = (sorted[0], sorted[sorted.count - 1])
        print(String(format: "step: median %.2f ms, mean %.2f ms, min %.2f ms, max %.2f ms",
                     median * 1e3, meanTime * 1e3, fastest * 1e3, slowest * 1e3))
        let gflopPerStep: Double = flopsPerStep / 1e9
        print(String(format: "GEMM work: %.2f GFLOP per step, %.1f GFLOP/s at the median step",
                     gflopPerStep, gflopPerStep / median))
        print(String(format: "last losses: D %.4f, G %.4f", report.discriminatorLoss, report.generatorLoss))
        print("peak_resident_mb=\(peakResidentMegabytes())")
        print(String(format: "images_per_second=%.1f", Double(batch) / median))
    }
}

extension TrainStepBenchmark {
    /// The step on a device: inputs uploaded once, then timed eagerly (one launch per kernel
    /// and product) and captured into one graph replayed per step. The device is synchronised
    /// around each timed run only (per-step times would each add a synchronisation).
    func measureDevice(_ trainingStep: TrainingStep, real: Tensor, labels: [Int32], on device: any KernelDevice) throws {
        let step = try DeviceTrainingStep(trainingStep, on: device)
        step.splitsBatchNormChannels = !oneBlockNorms
        let (z, fakeLabels) = trainingStep.drawLatents(batch: batch)
        let realBatch = try DeviceTensor(real, on: device), noise = try DeviceTensor(z, on: device)
        let realLabels = try DeviceLabels(labels, on: device), fake = try DeviceLabels(fakeLabels, on: device)
        let run = { () throws(CUDAError) in try step.run(real: realBatch, realLabels: realLabels, noise: noise, fakeLabels: fake) }
        for _ in 0..<max(warmup, 2) { try run() }
        func timed(_ body: () throws -> Void) throws -> Double {
            try device.synchronize()
            let start = monotonicSeconds()
            for _ in 0..<steps { try body() }
            try device.synchronize()
            return (monotonicSeconds() - start) / Double(steps)
        }
        let eager = try timed { try run() }
        let graph = try device.capture(run)
        let captured = try timed { try device.replay(graph) }
        let report = try step.report()
        print(String(format: "eager step: %.3f ms (%.1f images/s)", eager * 1e3, Double(batch) / eager))
        print(String(format: "captured step: %.3f ms (%.1f images/s), %d kernels and products in one graph", captured * 1e3,
                     Double(batch) / captured, graph.operationCount))
        print(String(format: "last losses: D %.4f, G %.4f", report.discriminatorLoss, report.generatorLoss))
        print(String(format: "images_per_second=%.1f", Double(batch) / min(eager, captured)))
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Peak resident set size of this process (ru_maxrss is in KiB on Linux).
func peakResidentMegabytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss / 1024
}
