/// Whether AVX512-BF16's dot products are worth their rounding on this CPU, measured once.
///
/// Why measured: the instruction does twice the multiply-adds of a 512-bit Float FMA, which is
/// a 2x gain only where a core has one such FMA a cycle. AMD's Zen 4 does (the dot-product
/// kernels run at 1.9-2.2x OpenBLAS's Float GEMM there); Intel's server cores have two, so
/// the same kernels run at 0.63-0.76x OpenBLAS on an Emerald Rapids whose VM exposes no AMX
/// (2026-12-03, docs/performance.md), and bfloat16 would cost both speed and precision. The
/// CPUID bits say neither, so the first use times one product of the reference step's shape
/// both ways on the calling thread (about 10 ms). Against the OpenBLAS this process loaded:
/// one left with generic kernels (the test binary, which does not re-run itself with
/// `OPENBLAS_CORETYPE` as synthd does: `OpenBLASKernels`) is 3x slower, and there the dot
/// products do win.
public enum BFloat16Payoff {
    /// How much faster the dot-product kernel must be than Float to be taken: the two CPUs
    /// measured are at 2x and 0.7x, so a run's timing noise cannot move a CPU across it.
    public static let threshold = 1.25

    /// The dot-product kernel's speed over OpenBLAS's Float GEMM, one thread; nil on a CPU
    /// without AVX512-BF16.
    public static let speedup: Double? = BFloat16GEMM.isAvailable ? measure() : nil

    /// Whether the AVX512-BF16 kernels (training's dot products, sampling's) are used where
    /// bfloat16 products are asked for; where they are not, products stay Float.
    public static var dotProductsPayOff: Bool { speedup.map(paysOff) ?? false }

    /// The rule, apart from the measurement.
    public static func paysOff(speedup: Double) -> Bool { speedup >= threshold }

    /// The best of five alternated timings each way of 128 x 256 . 256 x 1024 (D's second
    /// convolution's forward product, per chunk of images).
    static func measure() -> Double {
        let (m, n, k) = (128, 256, 1024)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k), b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.25 - 0.75 }
        for i in 0..<(k * n) { b[i] = Float(i % 5) * 0.5 - 1 }
        let float = ComputeContext(threads: 1, products: .float32)
        var best = (float: Double.infinity, dots: Double.infinity)
        for _ in 0..<6 {  // the first of each warms caches and OpenBLAS's buffers
            let f = secondsTaken { float.run { BLAS.gemmSerial(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n) } }
            let d = secondsTaken {
                BFloat16Kernel.dotProducts.multiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k,
                                                    b: b, ldb: n, beta: 0, c: c, ldc: n)
            }
            best = (min(best.float, f), min(best.dots, d))
        }
        return best.float / best.dots
    }
}
