import ArgumentParser
import Foundation
import Engine

/// Measures the SGEMM peak that step figures are compared with.
struct GEMMBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Measure OpenBLAS SGEMM throughput on square matrices.")

    @Option(help: "Matrix side.") var size = 2048
    @Option(help: "Timed repetitions.") var repetitions = 5
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func run() throws {
        if let threads { Parallel.maxThreads = threads }
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
}
