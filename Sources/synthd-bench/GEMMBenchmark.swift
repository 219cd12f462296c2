import ArgumentParser
import Foundation
import Engine

/// Measures the SGEMM peak that step figures are compared with.
struct GEMMBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Measure OpenBLAS SGEMM throughput on square matrices, or on one thread at a given shape "
            + "(there beside the bfloat16 kernels of training and sampling).")

    @Option(help: "Matrix side.") var size = 2048
    @Option(help: "Timed repetitions.") var repetitions = 5
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: "A shape M,N,K (row-major, no transposes) timed on one thread, as the layers call it.")
    var shape: String?

    func run() throws {
        try ComputeContext(threads: threads ?? ComputeContext.processDefault.threads).run { () throws in try measure() }
    }

    func measure() throws {
        if let shape {
            let sides = shape.split(separator: ",").compactMap { Int($0) }
            guard sides.count == 3, sides.allSatisfy({ $0 > 0 }) else { throw ValidationError("--shape wants M,N,K") }
            return timeSerial(m: sides[0], n: sides[1], k: sides[2])
        }
        let n = size
        var rng = RandomGenerator(seed: 7)
        let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
        rng.fillUniform(a, -1, 1)
        rng.fillUniform(b, -1, 1)
        BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
        var best = Double.infinity
        for _ in 0..<repetitions {
            let start = monotonicSeconds()
            BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
            best = min(best, monotonicSeconds() - start)
        }
        let gflops = 2 * Double(n) * Double(n) * Double(n) / best / 1e9
        print("sgemm \(n)^3 with \(Parallel.maxThreads) threads: best \(String(format: "%.1f", best * 1e3)) ms")
        print(String(format: "sgemm_gflops=%.1f", gflops))
    }

    func timeSerial(m: Int, n: Int, k: Int) {
        var rng = RandomGenerator(seed: 7)
        let a = Tensor(zeros: [m, k]), b = Tensor(zeros: [k, n]), c = Tensor(zeros: [m, n])
        rng.fillUniform(a, -1, 1)
        rng.fillUniform(b, -1, 1)
        let calls = max(1, Int(1e9 / (2 * Double(m) * Double(n) * Double(k))))  // ~1 GFLOP per repetition
        /// The best time of one call over the repetitions.
        func bestTime(_ call: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0...repetitions {
                let start = monotonicSeconds()
                for _ in 0..<calls { call() }
                best = min(best, (monotonicSeconds() - start) / Double(calls))
            }
            return best
        }
        let best = bestTime { BLAS.gemmSerial(m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: c.data, ldc: n) }
        let flops = 2 * Double(m) * Double(n) * Double(k)
        print(String(format: "sgemm %dx%dx%d on one thread: %.1f us, %.1f GFLOP/s", m, n, k, best * 1e6, flops / best / 1e9))
        for kernel in BFloat16Kernel.allCases where kernel.isAvailable {
            let packing = PackedLeftOperand()
            let packed = ComputeContext(threads: 1, products: .bfloat16).run { packing.pack(transA: false, m: m, k: k, a: a.data, lda: k) }
            let both = bestTime {
                kernel.multiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.data, lda: k,
                                b: b.data, ldb: n, beta: 0, c: c.data, ldc: n)
            }
            print(String(format: "training kernel, %@, the same shape: %.1f us, %.1f GFLOP/s (%.2fx)", kernel.description,
                         both * 1e6, flops / both / 1e9, best / both))
            guard let packed else { continue }
            let right = bestTime {
                kernel.multiply(packedA: packed, transB: false, m: m, n: n, k: k, alpha: 1, b: b.data, ldb: n,
                                beta: 0, c: c.data, ldc: n)
            }
            print(String(format: "  with the left operand packed once: %.1f us, %.1f GFLOP/s (%.2fx)",
                         right * 1e6, flops / right / 1e9, best / right))
        }
        for kernel in PanelKernel.allCases where kernel.isAvailable {
            let panels = Tensor(zeros: [PanelKernel.packedCount(k: k, n: n)])
            let packedOnce = bestTime {
                kernel.multiply(m: m, n: n, k: k, a: a.data, lda: k, packed: panels.data, c: c.data, ldc: n)
            }
            let packedEach = bestTime {
                PanelKernel.pack(b.data, matrices: 1, k: k, n: n, into: panels.data)
                kernel.multiply(m: m, n: n, k: k, a: a.data, lda: k, packed: panels.data, c: c.data, ldc: n)
            }
            print(String(format: "panel kernel, %@, right operand packed once: %.1f us, %.1f GFLOP/s (%.2fx); "
                         + "packed at each call: %.1f GFLOP/s (%.2fx)", kernel.description, packedOnce * 1e6,
                         flops / packedOnce / 1e9, best / packedOnce, flops / packedEach / 1e9, best / packedEach))
        }
        guard BFloat16GEMM.isAvailable else { return print("bfloat16 kernel: this CPU has no AVX512-BF16") }
        var packed = [UInt16](repeating: 0, count: BFloat16GEMM.packedCount(k: k, n: n))
        var scratch = [UInt16](repeating: 0, count: BFloat16GEMM.scratchCount(m: m, k: k))
        BFloat16GEMM.pack(b.data, ldb: n, k: k, n: n, into: &packed)
        let bestReduced = bestTime {
            BFloat16GEMM.multiply(m: m, n: n, k: k, a: a.data, lda: k, packed: packed, c: c.data, ldc: n, scratch: &scratch)
        }
        print(String(format: "sampling's bfloat16 kernel, the same shape: %.1f us, %.1f GFLOP/s (%.2fx)", bestReduced * 1e6,
                     flops / bestReduced / 1e9, best / bestReduced))
    }
}
