import ArgumentParser
import CUDA
import CommandLineSupport
import Engine
import Foundation
import GAN
import Imaging

/// Times `synthd generate`'s three parts on a freshly initialised default generator (the
/// arithmetic does not depend on what the weights learnt): sampling (G forward and the
/// conversion to 28x28 bytes), PNG encoding, and writing the files atomically. Each round also
/// samples with the upsamplers' columns path (what training uses), so the two are compared
/// under the same machine load.
struct GenerationBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Time generation at 28x28 grey, K = 10: sampling, PNG encoding, and the whole write.")

    @Option(help: "Images per timed round.") var images = 20_000
    @Option(help: "Timed rounds (the median is printed).") var rounds = 3
    @Option(help: "Folder to write in (a subfolder of it, removed afterwards; default: the temporary folder).")
    var scratch: String?
    @Flag(help: "Time sampling only (for profiling the generator).") var samplingOnly = false
    @Option(help: "Threads for BLAS and element-wise work (default: all cores).") var threads: Int?

    @OptionGroup var compute: DeviceOption

    func run() throws {
        let device = try compute.open(for: .generation)
        try compute.cpuContext(threads: threads).run { () throws in try measure(on: device) }
    }

    func measure(on device: (any KernelDevice)?) throws {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 10)
        let generator = Generator(configuration)
        initializeDCGAN(generator.parameters, seed: 1)
        let classes = (0..<10).map { "class\($0)" }
        let record = ModelRecord(configuration: configuration, classes: classes, mode: .grey, imageWidth: 28,
                                 imageHeight: 28, steps: 0, imagesAtLastRun: 0, options: TrainingOptions(),
                                 checkpointID: "bench")
        let labels = (0..<images).map { Int32($0 % 10) }
        var sampler = Sampler(generator: generator, record: record)
        sampler.device = device
        sampler.batchSize = 256
        // On a device, sampling as `SyntheticWriter` samples: standing statistics, which let a
        // device batch be a whole group (`Sampler.deviceBatchSize`). The CPU's line keeps each
        // batch's own statistics, the figures of docs/performance.md.
        if device != nil { sampler.statistics = try sampler.standingStatistics(seed: 0) }
        _ = try sampler.sample(labels: Array(labels.prefix(512)), seed: 0)  // warm-up: allocation, BLAS threads

        let root = (scratch ?? NSTemporaryDirectory()) + "/synthd-bench-generate-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let counts = [Int](repeating: images / 10, count: 10)

        print("generation at 28x28 grey, K = 10, \(images) images per round, \(Parallel.maxThreads) threads"
              + (device.map { ", the generator on \($0.name)" } ?? ""))
        var sampling: [Double] = [], byColumns: [Double] = [], inFloat: [Double] = [], encoding: [Double] = []
        var whole: [Double] = []
        for round in 0..<rounds {
            var start = monotonicSeconds()
            if device == nil {   // the CPU's algorithms side by side (a device has one)
                sampler.upsampling = .columns
                _ = try sampler.sample(labels: labels, seed: UInt64(round))
                byColumns.append(monotonicSeconds() - start)
                sampler.upsampling = .winograd
                start = monotonicSeconds()
                _ = try sampler.sample(labels: labels, seed: UInt64(round))
                inFloat.append(monotonicSeconds() - start)
                sampler.upsampling = .winogradBFloat16
            }
            start = monotonicSeconds()
            let generated = try sampler.sample(labels: labels, seed: UInt64(round))
            sampling.append(monotonicSeconds() - start)
            if samplingOnly { continue }

            start = monotonicSeconds()
            Parallel.forRanges(generated.count, minimumPerChunk: 64) { range in
                for i in range { _ = try? PNG.encode(generated[i]) }
            }
            encoding.append(monotonicSeconds() - start)

            // A fresh folder per round: ext4 allocates inodes more slowly right after a deletion.
            var writer = SyntheticWriter(generator: generator, record: record, root: root + "/round\(round)")
            writer.device = device
            start = monotonicSeconds()
            try writer.write(counts: counts, seed: UInt64(round))
            whole.append(monotonicSeconds() - start)
        }
        func rate(_ times: [Double]) -> Double { Double(images) / times.sorted()[times.count / 2] }
        if device != nil {
            print(String(format: "sampling (G forward on the device, to bytes): %.0f images/s", rate(sampling)))
        } else {
            // The default path and the Winograd and columns paths, each with this context's
            // products (on AMX tiles the columns path is the default, and Winograd's are tiles too).
            let kernel = ComputeContext.current.bfloat16Kernel
            let products = ComputeContext.current.usesAMX ? "bfloat16 on AMX tiles, by columns"
                : BFloat16Payoff.dotProductsPayOff ? "bfloat16 by AVX512-BF16, Winograd"
                : BFloat16GEMM.isAvailable ? "Float, Winograd: AVX512-BF16 does not beat Float here" : "no bfloat16 here: Float, Winograd"
            let others = kernel.map { "by \($0.description)" } ?? "in Float"
            // Winograd's products are Float where no bfloat16 kernel takes them; the columns
            // path's are half precision where the context takes AVX512-FP16 (`halfColumns`).
            let columns = kernel == nil && ComputeContext.current.halfColumns ? "in half precision (AVX512-FP16)" : others
            print(String(format: "sampling (G forward, to bytes): %.0f images/s (%@); Winograd %@: %.0f (%.2fx); "
                     + "the columns path %@: %.0f (%.2fx)", rate(sampling), products, others,
                     rate(inFloat), rate(sampling) / rate(inFloat), columns, rate(byColumns), rate(sampling) / rate(byColumns)))
        }
        if samplingOnly { return }
        print(String(format: "PNG encoding:                   %.0f images/s", rate(encoding)))
        print(String(format: "whole write (sample, encode, files, manifest): %.0f images/s", rate(whole)))
        print(String(format: "generate sampling=%.0f encoding=%.0f whole=%.0f", rate(sampling), rate(encoding), rate(whole)))
    }
}
