import CBFloat16

/// Matrix products on AMX tiles (Intel Sapphire Rapids and later): bfloat16 operands, exact
/// products, Float sums, the same contract as `BLAS.gemmSerial` otherwise.
///
/// Why: one core's AMX unit does about 1,000 bfloat16 GFLOP/s where OpenBLAS's Float kernel
/// does ~113, and the training step is two-thirds products (docs/performance.md). Rounding
/// the operands to bfloat16 (8 significant bits) is what PyTorch's autocast does on the same
/// CPUs; `BLAS` takes this path only when the running `ComputeContext` asks for reduced
/// products, and a product's error is then ~2e-3 of its scale instead of ~1e-7.
public enum AMXGEMM {
    /// Whether this CPU has AMX with bfloat16 and Linux granted the process its tile state.
    public static let isAvailable: Bool = synthd_amx_available()

    /// Whether a product of this shape is worth the tiles: each operand is padded to 16 rows
    /// or columns and k to 32, and packing costs a pass over both operands, so thin products
    /// (D's first convolution, k = 16) stay with OpenBLAS.
    public static func suits(m: Int, n: Int, k: Int) -> Bool {
        k >= 32 && m >= 16 && n >= 16
    }

    /// c = alpha * op(a) . op(b) + beta * c, as `BLAS.gemmSerial`, on the calling thread.
    /// Only where `isAvailable`.
    public static func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(isAvailable, "AMXGEMM.multiply on a CPU without AMX")
        synthd_amx_gemm(transA, transB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                        beta, c, Int32(ldc))
    }

    /// `multiply` with the left operand packed already (`PackedLeftOperand`).
    public static func multiply(
        packedA: PackedMatrix, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(packedA.rows == m && packedA.depth == k,
                     "AMXGEMM: operand packed as \(packedA.rows) x \(packedA.depth), used as \(m) x \(k)")
        synthd_amx_gemm_packed(packedA.elements, transB, Int32(m), Int32(n), Int32(k), alpha, b, Int32(ldb),
                               beta, c, Int32(ldc))
    }
}

/// A left operand already in AMX tiles (`PackedLeftOperand.pack`), for `BLAS.gemmSerial`'s
/// `packedA`. Read-only while the products that use it run, on any thread.
public struct PackedMatrix: @unchecked Sendable {
    let elements: UnsafePointer<UInt16>
    let rows: Int, depth: Int
}

/// Room for a layer's weights packed once per pass: a convolution's pass runs a product per
/// chunk of a few images on each thread, and packing the same weights for each one took as
/// long as the products themselves (the reference step's D: 2,048 x 256 weights, 32 times).
public final class PackedLeftOperand {
    private var elements: UnsafeMutablePointer<UInt16>?
    private var capacity = 0

    public init() {}

    deinit { elements?.deallocate() }

    /// op(a) (m x k; a stored k x m when `transA`) in tiles, when the current context's products
    /// go to AMX tiles and the shape suits them; nil otherwise (products then read `a` itself).
    /// Valid until the next `pack`.
    public func pack(transA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int) -> PackedMatrix? {
        guard ComputeContext.current.usesAMX, AMXGEMM.suits(m: m, n: 16, k: k) else { return nil }
        let count = synthd_amx_packed_a_count(Int32(m), Int32(k))
        if count > capacity {
            elements?.deallocate()
            // Tile rows are 64 bytes: loads that stay within cache lines.
            elements = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
                .bindMemory(to: UInt16.self, capacity: count)
            capacity = count
        }
        synthd_amx_pack_a(transA, Int32(m), Int32(k), a, Int32(lda), elements!)
        return PackedMatrix(elements: elements!, rows: m, depth: k)
    }
}
