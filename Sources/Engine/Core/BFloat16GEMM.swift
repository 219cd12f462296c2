import CBFloat16

/// Matrix products with bfloat16 operands and Float sums, for sampling on CPUs with
/// AVX512-BF16 (this machine's EPYC has it).
///
/// Why a kernel of our own beside OpenBLAS: its dot-product instruction does twice the
/// multiply-adds of a Float FMA per cycle, and generation's Winograd GEMMs are most of its
/// time; OpenBLAS has such a GEMM (`cblas_sbgemm`), but Debian builds it without. At the
/// generator's shapes (20 x 256 . 256 x 128, 40 x 128 . 128 x 64) this kernel runs at ~210
/// GFLOP/s on one core, OpenBLAS's Float GEMM at 80-115 (`synthd-bench gemm --shape 20,128,256`).
///
/// Rounding the operands to bfloat16 (8 significant bits) costs accuracy, about 2e-3 of a
/// product's scale: nothing a training step could use, and under a grey level in most pixels
/// of an image (docs/training.md has what it changes). Training never takes this path.
public enum BFloat16GEMM {
    /// Whether this CPU runs the kernel; elsewhere callers use Float GEMMs.
    public static let isAvailable: Bool = synthd_bf16_available()

    /// UInt16s of a packed k x n right operand (`pack`).
    public static func packedCount(k: Int, n: Int) -> Int { synthd_bf16_packed_count(Int32(k), Int32(n)) }

    /// Packs b (k x n, row stride ldb) for `multiply`: rounded to bfloat16 once, laid out as
    /// the kernel reads it.
    public static func pack(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<UInt16>) {
        synthd_bf16_pack(b, Int32(ldb), Int32(k), Int32(n), packed)
    }

    /// UInt16s of scratch that `multiply` needs for an m x k left operand.
    public static func scratchCount(m: Int, k: Int) -> Int { synthd_bf16_scratch_count(Int32(m), Int32(k)) }

    /// c (m x n, row stride ldc) = a (m x k, row stride lda) . b, b packed by `pack`, on the
    /// calling thread. Both operands are rounded to bfloat16; the products are exact and summed
    /// in Float. Only where `isAvailable`.
    public static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                packed: UnsafePointer<UInt16>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                scratch: UnsafeMutablePointer<UInt16>) {
        precondition(isAvailable, "BFloat16GEMM.multiply on a CPU without AVX512-BF16")
        synthd_bf16_gemm(Int32(m), Int32(n), Int32(k), a, Int32(lda), packed, c, Int32(ldc), scratch)
    }

    /// `value` rounded to bfloat16 (to nearest, ties to even), as the kernel rounds its operands.
    public static func rounded(_ value: Float) -> Float { synthd_bf16_round(value) }
}
