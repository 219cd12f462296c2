import CFloatGEMM

/// Float matrix products whose right operand is packed once, for the products of training's
/// Winograd passes (`WinogradProducts`): c = a . b with a read where it lies and b packed into
/// panels of 16 columns when the weights change (Sources/CFloatGEMM/PanelGEMM.c).
///
/// Why: OpenBLAS packs both operands on every call. A Winograd pass is 25 (or 100) products of
/// a few hundred tiles by one transformed weight matrix each, and packing was 12% of a
/// two-thread AVX2 step. Here the weight transforms write the packed panels (`offset`) and the
/// tiles are read in place by micro-tiles of 6 rows x 16 columns (AVX2) or 12 x 32 (AVX-512):
/// a step a few percent faster, not 12% (docs/performance.md says why). Each sum is
/// accumulated over k in order by one FMA after another: the result is a naive loop's `fma`
/// chain to the bit, whatever the blocking.
public enum PanelKernel: Sendable, CaseIterable, CustomStringConvertible {
    case avx512
    case avx2
    /// The AVX-512 kernel's operands, multiplied in half precision (AVX512-FP16) with Float sums
    /// (Sources/CFloatGEMM/HalfPanelGEMM.c): twice the multiply-adds of a Float FMA on Intel's
    /// server cores, the rounding of 11-bit operands (bfloat16 has 8) and of half sums of 64
    /// products. Only for contexts that accept reduced products (`ComputeContext.columnPanels`),
    /// never Winograd's.
    case avx512Half

    /// Whether this CPU runs the kernel.
    public var isAvailable: Bool {
        switch self {
        case .avx512: Self.avx512Available
        case .avx2: Self.avx2Available
        case .avx512Half: Self.avx512HalfAvailable
        }
    }

    /// Whether the kernel's products are Float, each sum one FMA chain (all but `avx512Half`).
    public var isFloat: Bool { self != .avx512Half }

    private static let avx512Available = synthd_panel_available(SYNTHD_PANEL_AVX512)
    private static let avx2Available = synthd_panel_available(SYNTHD_PANEL_AVX2)
    private static let avx512HalfAvailable = synthd_half_panel_available()

    /// The Float kernels, widest first.
    public static let floatKernels = allCases.filter(\.isFloat)

    /// The widest Float kernel this CPU runs; nil where it has neither (products stay with OpenBLAS).
    public static let fastest: PanelKernel? = floatKernels.first { $0.isAvailable }

    public var description: String {
        switch self {
        case .avx512: "AVX-512"
        case .avx2: "AVX2"
        case .avx512Half: "AVX512-FP16"
        }
    }

    /// Whether `avx512Half` beats the Float AVX-512 kernel on an m x n x k product: it converts
    /// both operands to halves a block at a time and sums 64 columns a micro-tile, so products
    /// of little depth or few columns pay more for the conversion than they save (on an Emerald
    /// Rapids, one thread: 0.35-0.8x below these bounds, 1.3-1.8x on the reference step's
    /// shapes above them; `synthd-bench gemm`).
    public static func halfPaysOff(m: Int, n: Int, k: Int) -> Bool { m >= 24 && n >= 64 && k >= 64 }

    /// Whether a product with `n` columns takes the kernel: whole panels only, which every
    /// layer of training that takes Winograd has but G's last (one or three output channels,
    /// which stays with OpenBLAS); then a packed matrix is as long as the plain one, and the
    /// weight transforms write the panels themselves (`offset`).
    public static func suits(n: Int) -> Bool { n > 0 && n % 16 == 0 }

    /// Where the 16 values of row `row`, columns `column..<column + 16` (`column` a multiple of
    /// 16) of a k x n matrix lie: packed into panels (`pack`'s layout, n a multiple of 16) or
    /// row-major.
    @inline(__always)
    public static func offset(row: Int, column: Int, k: Int, n: Int, packed: Bool) -> Int {
        packed ? column * k + row * 16 : row * n + column
    }

    /// Floats `pack` writes for a k x n right operand.
    public static func packedCount(k: Int, n: Int) -> Int { synthd_panel_packed_count(Int32(k), Int32(n)) }

    /// Packs `matrices` consecutive k x n row-major matrices from `b`, each into `packedCount`
    /// floats; threads split the matrices.
    public static func pack(_ b: UnsafePointer<Float>, matrices: Int, k: Int, n: Int, into packed: UnsafeMutablePointer<Float>) {
        let size = packedCount(k: k, n: n)
        Parallel.forRanges(matrices, minimumPerChunk: 1) { range in
            for matrix in range {
                synthd_panel_pack(b + matrix * k * n, Int32(n), Int32(k), Int32(n), packed + matrix * size)
            }
        }
    }

    /// Packs the k x n matrix whose column j lies at `b + (j / columnsPerImage) * imageStride +
    /// j % columnsPerImage` (rows `ldb` apart), on the calling thread: a batch of NCHW maps as
    /// the channels x (images * H*W) matrix of the columns path (ldb = columnsPerImage = H*W,
    /// imageStride = C*H*W), packed without a transposition first. `columnsPerImage` a multiple
    /// of 16, or n.
    public static func pack(images b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, columnsPerImage: Int,
                            imageStride: Int, into packed: UnsafeMutablePointer<Float>) {
        precondition(columnsPerImage % 16 == 0 || columnsPerImage == n, "PanelKernel: \(columnsPerImage) columns an image")
        synthd_panel_pack_images(b, Int32(ldb), Int32(k), Int32(n), Int32(columnsPerImage), imageStride, packed)
    }

    /// c = a . b + bias (one per row, when given), as `multiply`, with c's columns in images as
    /// `pack(images:)` reads b's: a convolution writes its NCHW output (ldc = columnsPerImage
    /// = H*W, imageStride = C*H*W) and its bias at once. On the calling thread.
    /// With `aTiles`, a was packed into tiles (`LeftOperandTiles`, `packTiles`; lda unused).
    /// With `accumulate`, c += a . b, each sum's FMA chain continued from c's value (a weight
    /// gradient summed over chunks is then the one chain over all of them).
    /// With `halves` (a's tiles converted for the half kernel), `avx512Half` reads those instead.
    public func multiply(aTiles: Bool = false, halves: HalfTiles? = nil, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                         packed: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                         columnsPerImage: Int, imageStride: Int, bias: UnsafePointer<Float>?, accumulate: Bool = false) {
        guard isAvailable else { fatalError("PanelKernel.\(self) on a CPU without it") }
        precondition(columnsPerImage % 16 == 0 || columnsPerImage == n, "PanelKernel: \(columnsPerImage) columns an image")
        if self == .avx512Half {
            guard Self.halfPaysOff(m: m, n: n, k: k) else {
                return Self.avx512.multiply(aTiles: aTiles, m: m, n: n, k: k, a: a, lda: lda, packed: packed, c: c, ldc: ldc,
                                            columnsPerImage: columnsPerImage, imageStride: imageStride, bias: bias,
                                            accumulate: accumulate)
            }
            precondition(halves == nil || aTiles, "PanelKernel: halves of a left operand not in tiles")
            return synthd_half_panel_gemm(Int32(m), Int32(n), Int32(k), a, aTiles, Int32(lda), halves?.words, halves?.scales,
                                          packed, c, Int32(ldc),
                                          Int32(columnsPerImage), imageStride, bias, accumulate)
        }
        synthd_panel_gemm_images(self == .avx512 ? SYNTHD_PANEL_AVX512 : SYNTHD_PANEL_AVX2, aTiles, Int32(m), Int32(n), Int32(k),
                                 a, Int32(lda), packed, c, Int32(ldc), Int32(columnsPerImage), imageStride, bias, accumulate)
    }

    /// Converts tiles `tiles` of a left operand packed into tiles (m x k) to the halves that
    /// `avx512Half` multiplies, into `halves` (`HalfTiles.counts(m:k:)`), on the calling thread.
    public static func convertToHalves(tiles: Range<Int>, of a: UnsafePointer<Float>, m: Int, k: Int,
                                       into words: UnsafeMutablePointer<UInt32>, scales: UnsafeMutablePointer<Float>) {
        synthd_half_panel_convert_a(a, Int32(m), Int32(k), Int32(tiles.lowerBound), Int32(tiles.upperBound), words, scales)
    }

    /// Rows of a packed left-operand tile (`LeftOperandTiles`, `packTiles`).
    public static let tileRows = Int(SYNTHD_PANEL_TILE_ROWS)

    /// Floats a left operand of m rows and depth k takes in tiles of 12 rows (m rounded up).
    public static func tilesCount(m: Int, k: Int) -> Int { synthd_panel_packed_a_count(Int32(m), Int32(k)) }

    /// The channels x (images * cells) matrix of a batch of NCHW maps packed into tiles of 12
    /// rows, on the calling thread: a weight gradient's left operand, no transposition first.
    public static func packTiles(maps: UnsafePointer<Float>, channels: Int, cells: Int, images: Int,
                                 into tiles: UnsafeMutablePointer<Float>) {
        synthd_panel_pack_a_maps(maps, Int32(channels), Int32(cells), Int32(images), 0, Int32((channels + tileRows - 1) / tileRows), tiles)
    }

    /// The m x k left operand whose transpose lies at `a` (k x m, row stride `lda`) packed into
    /// tiles of 12 rows, on the calling thread: a Winograd weight gradient's z^T.
    public static func packTiles(transposed a: UnsafePointer<Float>, lda: Int, m: Int, k: Int,
                                 into tiles: UnsafeMutablePointer<Float>) {
        synthd_panel_pack_a(true, a, Int32(lda), Int32(m), Int32(k), 0, Int32((m + tileRows - 1) / tileRows), tiles)
    }

    /// c (m x n, row stride ldc) = a (m x k, row stride lda) . b, with b packed by `pack`, on
    /// the calling thread. Only where `isAvailable`.
    public func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard isAvailable else { fatalError("PanelKernel.\(self) on a CPU without it") }
        if self == .avx512Half {
            return multiply(m: m, n: n, k: k, a: a, lda: lda, packed: packed, c: c, ldc: ldc, columnsPerImage: n,
                            imageStride: 0, bias: nil)
        }
        synthd_panel_gemm(self == .avx512 ? SYNTHD_PANEL_AVX512 : SYNTHD_PANEL_AVX2,
                          Int32(m), Int32(n), Int32(k), a, Int32(lda), packed, c, Int32(ldc))
    }
}

/// A left operand's tiles as `PanelKernel.avx512Half` multiplies them: halves (two to a 32-bit
/// word) with a power-of-two scale per tile and block of depths, converted once where several
/// products read the same operand (`PanelKernel.convertToHalves`).
public struct HalfTiles: @unchecked Sendable {
    public let words: UnsafePointer<UInt32>
    public let scales: UnsafePointer<Float>

    public init(words: UnsafePointer<UInt32>, scales: UnsafePointer<Float>) {
        self.words = words
        self.scales = scales
    }

    /// The 32-bit words and the scales an m x k operand takes.
    public static func counts(m: Int, k: Int) -> (words: Int, scales: Int) {
        (synthd_half_panel_halves_count(Int32(m), Int32(k)), synthd_half_panel_scales_count(Int32(m), Int32(k)))
    }
}
