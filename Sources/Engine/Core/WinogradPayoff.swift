/// Whether training's Winograd convolutions beat the FP32 columns path on a CPU with AVX-512,
/// measured once.
///
/// Why measured: Winograd F(4x4, 2x2) does 39% of the columns path's multiplications and pays
/// for it in transforms, so it wins where multiplications are dear. A core that retires two
/// 512-bit FMAs a cycle (Intel's server cores: Emerald Rapids, Xeon Gold 6xxx and Platinum)
/// multiplies at twice its AVX2 rate, and there the columns path won (docs/performance.md,
/// "Intel cores with AVX512-BF16 but no AMX": 319 against 300 images/s). A core with one
/// (AMD's Zen 4, Intel's client cores and Xeon Silver or Gold 5xxx) runs AVX-512 at its AVX2
/// rate, and there Winograd won as on AVX2 CPUs (a Zen 4 in FP32, 2026-12-04: 1.17-1.26x the
/// columns path). CPUID says neither, so the first use times the AVX-512 and the AVX2 panel
/// kernels on one Winograd product of the reference step on the calling thread (a few ms).
public enum WinogradPayoff {
    /// AVX-512's speed over AVX2's from which the columns path is kept. A Zen 4 reads 1.0-1.42:
    /// in some processes its AVX2 kernel runs at 75-94 GFLOP/s against 117 in others, while the
    /// AVX-512 one holds 111-117 in the same process (partly the other core's work: an AVX-512
    /// GEMM beside it slows the AVX2 kernel to 100-112, docs/performance.md "AVX2's panel kernel
    /// inside the step"; not the inner loop, which keeps its sums in registers). A reading
    /// pushed over the line keeps the columns path, what such a CPU did before. An Intel
    /// server core should measure 1.5 or more (its AVX-512 panel kernel makes 150-165
    /// GFLOP/s on an Emerald Rapids, where AVX2's peak at its clock is about 100: estimated, not
    /// measured), and Winograd's lead fell from 1.2x to 0.94x between the two. A wrong reading
    /// near the line costs little either way.
    public static let threshold = 1.45

    /// The AVX-512 panel kernel's speed over the AVX2 one, one thread; nil on a CPU without both.
    public static let widthGain: Double? =
        PanelKernel.avx512.isAvailable && PanelKernel.avx2.isAvailable ? measure() : nil

    /// The rule, apart from the measurement: Winograd where AVX-512 multiplies little faster than AVX2.
    public static func paysOff(widthGain: Double) -> Bool { widthGain < threshold }

    /// The best of seven alternated timings each way of 256 x 128 . 128 x 256 with the right
    /// operand in panels (the tiles of D's second convolution by one of its 25 transformed
    /// weight matrices: the products Winograd makes).
    static func measure() -> Double {
        let (m, n, k) = (256, 128, 256)
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: PanelKernel.packedCount(k: k, n: n))
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); packed.deallocate(); c.deallocate() }
        for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.25 - 0.75 }
        for i in 0..<PanelKernel.packedCount(k: k, n: n) { packed[i] = Float(i % 5) * 0.5 - 1 }
        func seconds(_ kernel: PanelKernel) -> Double {
            secondsTaken { for _ in 0..<4 { kernel.multiply(m: m, n: n, k: k, a: a, lda: k, packed: packed, c: c, ldc: n) } }
        }
        var best = (wide: Double.infinity, narrow: Double.infinity)
        for _ in 0..<8 {  // the first of each warms the caches
            best = (min(best.wide, seconds(.avx512)), min(best.narrow, seconds(.avx2)))
        }
        return best.narrow / best.wide
    }
}
