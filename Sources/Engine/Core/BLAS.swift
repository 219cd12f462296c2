import CBLAS

/// Matrix products through OpenBLAS. Every matrix here is row-major.
public enum BLAS {
    /// OpenBLAS runs on one thread: `gemm` splits its products over `Parallel`'s threads
    /// itself. OpenBLAS's own threads spin (sched_yield) between calls and took a core from
    /// the element-wise work in between: 250 -> 315 images/s on the reference step.
    private static let singleThreadedOpenBLAS: Void = openblas_set_num_threads(1)

    /// C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C.
    ///
    /// `op(A)` is A, stored (M, K) with leading dimension `lda`, or with `transA` the
    /// transpose of A stored (K, M); likewise B. `beta = 1` accumulates into C, which is how
    /// backward passes add parameter gradients (`+=`, as in llm.c).
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        ComputeContext.current.addFLOPs(2 &* m &* n &* k)
        // Split the larger of M and N in two; each part is an ordinary single-threaded GEMM
        // on its rows of A and C (split M) or its columns of B and C (split N).
        let splitN = n >= m
        let total = splitN ? n : m
        guard Parallel.maxThreads > 1 && m * n * k >= 1 << 20 && total >= 64 else {
            gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                       a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        Parallel.forRanges(total, minimumPerChunk: 32) { r in
            if splitN {
                gemmSerial(transA: transA, transB: transB, m: m, n: r.count, k: k, alpha: alpha,
                           a: a, lda: lda, b: transB ? b + r.lowerBound * ldb : b + r.lowerBound, ldb: ldb,
                           beta: beta, c: c + r.lowerBound, ldc: ldc)
            } else {
                gemmSerial(transA: transA, transB: transB, m: r.count, n: n, k: k, alpha: alpha,
                           a: transA ? a + r.lowerBound : a + r.lowerBound * lda, lda: lda, b: b, ldb: ldb,
                           beta: beta, c: c + r.lowerBound * ldc, ldc: ldc)
            }
        }
    }

    /// `gemm` on the calling thread only, for use inside work already split over threads.
    /// In a context that asks for bfloat16 products, by the fastest `BFloat16Kernel` here;
    /// `packedA`, when given, is op(a) packed for them once for many calls (`PackedLeftOperand`).
    public static func gemmSerial(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, packedA: PackedMatrix? = nil,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if let kernel = ComputeContext.current.bfloat16Kernel, BFloat16Kernel.suits(m: m, n: n, k: k) {
            if let packedA {
                kernel.multiply(packedA: packedA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            } else {
                kernel.multiply(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            }
            return
        }
        _ = singleThreadedOpenBLAS
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// The naive triple loop, kept as the reference that tests compare `gemm` with.
    public static func gemmNaive(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var sum: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(av) * Double(bv)
                }
                let old = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * Float(sum) + old
            }
        }
    }

    /// Floating-point operations issued through `gemm` so far in the calling thread's
    /// `ComputeContext` (a multiply-add counts 2). Benchmarks read it to report GFLOP/s.
    public static var flopCount: Int { ComputeContext.current.flops }

    /// Adds work done through `gemmSerial` to the current context's count.
    public static func recordFLOPs(m: Int, n: Int, k: Int) { ComputeContext.current.addFLOPs(2 &* m &* n &* k) }

    /// How many threads OpenBLAS itself uses (1: `gemm` parallelises on its own).
    public static var threads: Int {
        _ = singleThreadedOpenBLAS
        return Int(openblas_get_num_threads())
    }

    /// OpenBLAS's build description (kernel family, threading model).
    public static var configuration: String { String(cString: openblas_get_config()) }
}
