import CBFloat16

/// The kernels that do training's matrix products with bfloat16 operands, exact products and
/// Float sums (the contract of `BLAS.gemmSerial` otherwise), and which one this CPU has.
///
/// Why: the training step is two-thirds products (docs/performance.md), and OpenBLAS (Debian's
/// 0.3.21) multiplies in Float only. Rounding the operands to bfloat16 (8 significant bits) is
/// what PyTorch's autocast does on the same CPUs; `BLAS` takes these kernels only when the
/// running `ComputeContext` asks for bfloat16 products, and a product's error is then ~2e-3
/// of its scale instead of ~1e-7. Both read the same packed operands (Sources/CBFloat16/
/// BFloat16Tiles.c), so a layer's weights are packed once whichever runs.
public enum BFloat16Kernel: Sendable, CaseIterable {
    /// AMX tiles (Intel Sapphire Rapids and later): about 1,000 GFLOP/s on one core, where
    /// OpenBLAS's Float kernel does ~113 (Sources/CBFloat16/AMXGEMM.c).
    case amxTiles
    /// AVX512-BF16's dot-product instruction (AMD Zen 4, Intel Cooper Lake and later): twice
    /// the multiply-adds of one Float FMA per cycle (Sources/CBFloat16/DotProductGEMM.c).
    case dotProducts

    /// Whether this CPU runs the kernel (AMX: and Linux granted the process its tile state).
    public var isAvailable: Bool {
        switch self {
        case .amxTiles: Self.amxAvailable
        case .dotProducts: BFloat16GEMM.isAvailable
        }
    }

    private static let amxAvailable: Bool = synthd_amx_available()

    /// Whether it beats OpenBLAS's Float products here: AMX always (~9x); the dot products
    /// only where measured so (`BFloat16Payoff`: 2x on a Zen 4, 0.7x on an Intel core with two
    /// Float FMAs a cycle).
    public var paysOff: Bool {
        switch self {
        case .amxTiles: true
        case .dotProducts: BFloat16Payoff.dotProductsPayOff
        }
    }

    /// The kernel bfloat16 products go to here: the fastest this CPU has, where it beats
    /// Float; nil otherwise (products stay Float).
    public static let fastest: BFloat16Kernel? = allCases.first { $0.isAvailable && $0.paysOff }

    /// How the CLI's device line and the daemon's log name it.
    public var description: String {
        switch self {
        case .amxTiles: "AMX tiles"
        case .dotProducts: "AVX512-BF16 dot products"
        }
    }

    /// Whether a product of this shape is worth the packing: each operand is padded to 16 rows
    /// or columns and k to 32, and packing costs a pass over both operands, so thin products
    /// (D's first convolution, k = 16) stay with OpenBLAS.
    public static func suits(m: Int, n: Int, k: Int) -> Bool {
        k >= 32 && m >= 16 && n >= 16
    }

    /// c = alpha * op(a) . op(b) + beta * c, as `BLAS.gemmSerial`, on the calling thread.
    /// Only where `isAvailable`.
    public func multiply(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard isAvailable else { fatalError("BFloat16Kernel.\(self) on a CPU without it") }
        switch self {
        case .amxTiles:
            synthd_amx_gemm(transA, transB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                            beta, c, Int32(ldc))
        case .dotProducts:
            synthd_dot_gemm(transA, transB, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                            beta, c, Int32(ldc))
        }
    }

    /// `multiply` with the left operand packed already (`PackedLeftOperand`).
    public func multiply(
        packedA: PackedMatrix, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard isAvailable else { fatalError("BFloat16Kernel.\(self) on a CPU without it") }
        guard packedA.rows == m && packedA.depth == k else {
            fatalError("BFloat16Kernel: operand packed as \(packedA.rows) x \(packedA.depth), used as \(m) x \(k)")
        }
        switch self {
        case .amxTiles:
            synthd_amx_gemm_packed(packedA.elements, transB, Int32(m), Int32(n), Int32(k), alpha, b, Int32(ldb),
                                   beta, c, Int32(ldc))
        case .dotProducts:
            synthd_dot_gemm_packed(packedA.elements, transB, Int32(m), Int32(n), Int32(k), alpha, b, Int32(ldb),
                                   beta, c, Int32(ldc))
        }
    }
}

/// A left operand already packed for the bfloat16 kernels (`PackedLeftOperand.pack`), for `BLAS.gemmSerial`'s
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

    /// op(a) (m x k; a stored k x m when `transA`) packed for `kernel` (by default the current
    /// context's, whose products go to it; both kernels read one layout), when there is one
    /// and the shape suits it; nil otherwise (products then read `a` itself). Valid until the
    /// next `pack`.
    public func pack(transA: Bool, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                     for kernel: BFloat16Kernel? = ComputeContext.current.bfloat16Kernel) -> PackedMatrix? {
        guard kernel != nil, BFloat16Kernel.suits(m: m, n: 16, k: k) else { return nil }
        let count = synthd_bf16_tiles_packed_a_count(Int32(m), Int32(k))
        if count > capacity {
            elements?.deallocate()
            // Tile rows are 64 bytes: loads that stay within cache lines.
            elements = UnsafeMutableRawPointer.allocate(byteCount: count * 2, alignment: 64)
                .bindMemory(to: UInt16.self, capacity: count)
            capacity = count
        }
        synthd_bf16_tiles_pack_a(transA, Int32(m), Int32(k), a, Int32(lda), elements!)
        return PackedMatrix(elements: elements!, rows: m, depth: k)
    }
}
