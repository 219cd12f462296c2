import CFloatGEMM

/// The columns path's Float products by `PanelKernel`, where its layout suits the grid.
///
/// Why: OpenBLAS packs both operands of every call, and the columns path calls it per chunk of
/// a few images: on an Intel Emerald Rapids its packing was 10% of a one-thread FP32 step, the
/// swaps between NCHW and the channel-major matrices another 4% (docs/performance.md). Here
/// the left operand (the weights, or their transpose) is packed once a pass, the right one is
/// written in panels by the pass that makes it anyway (im2col, or a pack straight from the NCHW
/// maps instead of the swap), and products over a batch's pixels write their NCHW output and
/// bias directly. The weight gradients take dy (or x) in tiles and the patches' transpose in
/// panels (`addWeightGradient`).
extension ComputeContext {
    /// The kernel of the columns path's products for a grid of `gridCells` cells where no
    /// bfloat16 kernel takes them: the context's `panelKernel` where it is the AVX-512 one and
    /// the grid's cells are a multiple of 16 (no panel straddles two images), in half precision
    /// where the context accepts reduced products and the CPU has AVX512-FP16 (`halfColumns`);
    /// nil: OpenBLAS. AVX2's kernel stays with Winograd's products: in the columns path it ran
    /// 0.98-0.99x OpenBLAS's Haswell kernels (alternated steps, 2026-12-03), and AVX2 CPUs
    /// train by Winograd anyway.
    func columnPanels(gridCells: Int) -> PanelKernel? {
        guard bfloat16Kernel == nil, panelKernel == .avx512, gridCells > 0, gridCells % 16 == 0 else { return nil }
        return halfColumns ? .avx512Half : .avx512
    }
}

extension PanelKernel {
    /// dW (rows x C*16) += maps (rows, as a rows x (images * cells) matrix) . cols(image)^T,
    /// where cols is im2col's matrix of `image` in geometry `g` (4 x 4 kernels): the weight
    /// gradient of a chunk, its FMA chains going on from dW's values. `tiles` and `panels` are
    /// the chunk's scratch (`tilesCount(m: rows, k: g.columnCount)` and `g.patchSize *
    /// g.columnCount` floats). A convolution passes dy and x; a transposed one x and dy.
    func addWeightGradient(maps: UnsafePointer<Float>, rows: Int, image: UnsafePointer<Float>, geometry g: ConvGeometry,
                           tiles: UnsafeMutablePointer<Float>, panels: UnsafeMutablePointer<Float>,
                           into dW: UnsafeMutablePointer<Float>) {
        let cells = g.gridHeight * g.gridWidth
        Self.packTiles(maps: maps, channels: rows, cells: cells, images: g.batch, into: tiles)
        patchPanels(panels, image, g)
        multiply(aTiles: true, m: rows, n: g.patchSize, k: g.columnCount, a: tiles, lda: 0, packed: panels, c: dW,
                 ldc: g.patchSize, columnsPerImage: g.patchSize, imageStride: 0, bias: nil, accumulate: true)
    }
}

/// A left operand packed once a pass into the panel kernel's tiles of 12 rows (each depth's 12
/// floats consecutive): the weights, or their transpose, that every chunk's product of the pass
/// reads. Read in place, a micro-tile's 12 rows 4-8 KiB apart fell into one L1 set, and W^T
/// read down W's columns put each depth in another: those products ran up to 1.4x slower than
/// OpenBLAS's in the step, though faster alone (docs/performance.md).
final class LeftOperandTiles {
    private var storage: Tensor?
    /// The tiles as the half kernel's halves and scales (UInt32 words in Floats' room).
    private var halfStorage: Tensor?, scaleStorage: Tensor?

    /// op(a) (m x k; a stored k x m, row stride lda, when `transA`) packed, and converted to
    /// halves as well when `kernel` is the half one (each chunk's product converted all of W
    /// again: ~4% of an Emerald Rapids step); valid until the next call.
    func pack(transA: Bool, _ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, for kernel: PanelKernel) -> PackedTiles {
        let count = synthd_panel_packed_a_count(Int32(m), Int32(k))
        // Grown, never shrunk: a layer packs W for its forward and W^T for its backward (tile
        // counts that differ by a few percent), and a fresh 2 MiB of zeros each pass showed.
        if (storage?.count ?? 0) < count { storage = Tensor(zeros: [count]) }
        let out = storage!.data
        var halves: HalfTiles?
        if kernel == .avx512Half {
            let (words, scales) = HalfTiles.counts(m: m, k: k)
            if (halfStorage?.count ?? 0) < words { halfStorage = Tensor(zeros: [words]) }
            if (scaleStorage?.count ?? 0) < scales { scaleStorage = Tensor(zeros: [scales]) }
            halves = HalfTiles(words: UnsafeMutableRawPointer(halfStorage!.data).assumingMemoryBound(to: UInt32.self),
                               scales: scaleStorage!.data)
        }
        let rows = PanelKernel.tileRows, tiles = (m + rows - 1) / rows
        Parallel.forRanges(tiles, minimumPerChunk: Swift.max(1, 65536 / Swift.max(rows * k, 1))) { range in
            synthd_panel_pack_a(transA, a, Int32(lda), Int32(m), Int32(k), Int32(range.lowerBound), Int32(range.upperBound), out)
            if let halves {
                PanelKernel.convertToHalves(tiles: range, of: out, m: m, k: k, into: UnsafeMutablePointer(mutating: halves.words),
                                            scales: UnsafeMutablePointer(mutating: halves.scales))
            }
        }
        return PackedTiles(floats: UnsafePointer(out), halves: halves)
    }
}

/// A left operand in the panel kernel's tiles (`LeftOperandTiles`), and in the half kernel's
/// halves where it was packed for that kernel.
struct PackedTiles: @unchecked Sendable {
    let floats: UnsafePointer<Float>
    let halves: HalfTiles?
}
