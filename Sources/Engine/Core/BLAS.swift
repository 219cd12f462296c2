import CBLAS

/// Matrix products through OpenBLAS. Every matrix here is row-major.
public enum BLAS {
    /// C (M x N) = alpha * op(A) (M x K) * op(B) (K x N) + beta * C.
    ///
    /// `op(A)` is A, stored (M, K) with leading dimension `lda`, or with `transA` the
    /// transpose of A stored (K, M); likewise B. `beta = 1` accumulates into C, which is how
    /// backward passes add parameter gradients (`+=`, as in llm.c).
    @inlinable
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        flopCount &+= 2 &* m &* n &* k
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

    /// Floating-point operations issued through `gemm` so far (a multiply-add counts 2).
    /// Benchmarks read it to report GFLOP/s; only the training thread calls `gemm`.
    nonisolated(unsafe) public static var flopCount: Int = 0

    /// How many threads OpenBLAS uses for the next call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// OpenBLAS's build description (kernel family, threading model).
    public static var configuration: String { String(cString: openblas_get_config()) }
}
