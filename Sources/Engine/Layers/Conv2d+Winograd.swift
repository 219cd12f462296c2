/// The 4/2/1 convolution (kernel 4, stride 2, padding 1: D's convolutions, and the input
/// gradient of G's upsamplers) by Winograd's minimal filtering F(4x4, 2x2).
///
/// Split the input into its four parity phases, x_rs[c, m, n] = x[c, 2m + r - 1, 2n + s - 1]
/// (zero outside the image). Tap (2p + r, 2q + s) of the kernel meets phase rs at (i + p, j + q):
///
///     y[o, i, j] = sum over c, r, s, p, q of x_rs[c, i + p, j + q] w[o, c, 2p + r, 2q + s]
///
/// a stride-1 2x2 correlation over 4 Cin channels (a space-to-depth of the input), which
/// F(4x4, 2x2) computes with 25 products per 4x4 output tile where the direct sum takes 64
/// (the transforms are `WinogradTransposedConvolution`'s). Summed over the 4 Cin channels, the
/// 25 products are 25 GEMMs (tiles x 4Cin) . (4Cin x Cout).
///
/// It runs channels-last: a chunk of images is transposed to (H, W, Cin), gathered into the
/// phases with a zero border, and the output transposed back to NCHW. Training takes this path
/// in contexts that ask for it (`ComputeContext.winogradConvolutions`): the transforms' constants
/// round to ~1e-5 of a layer's scale, where the columns path rounds like a direct sum.
enum WinogradStridedConvolution {
    static let tile = WinogradTransposedConvolution.tile, patch = WinogradTransposedConvolution.patch
    static let products = WinogradTransposedConvolution.products

    /// Whether a convolution of an input of `height` x `width` can take this path and gains by
    /// it: the output a whole number of 4x4 tiles, and channels in whole vectors of 16 on both
    /// sides (a layer that reads or makes an image stays with columns).
    static func applies(kernelSize: Int, stride: Int, padding: Int, inChannels: Int, outChannels: Int,
                        height: Int, width: Int) -> Bool {
        kernelSize == 4 && stride == 2 && padding == 1 && height % (2 * tile) == 0 && width % (2 * tile) == 0
            && inChannels % 16 == 0 && outChannels % 16 == 0 && inChannels > 0 && outChannels > 0
    }

    /// Floats of the transformed weights: 25 products x 4 Cin x Cout.
    static func transformedWeightCount(inChannels: Int, outChannels: Int) -> Int {
        products * 4 * inChannels * outChannels
    }

    /// u[xi] (4 Cin x Cout; row (2r + s) Cin + c) = G g G^T, g the 2x2 taps w[o, c, 2p + r, 2q + s]
    /// of phase rs. `w` is (Cout, Cin, 4, 4); 16 output channels at a time, as vectors.
    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int,
                                 into u: UnsafeMutablePointer<Float>) {
        let matrix = 4 * inChannels * outChannels
        Parallel.forRanges(inChannels, minimumPerChunk: 8) { channels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { block in
                let taps = block.baseAddress!
                for c in channels {
                    for o in Swift.stride(from: 0, to: outChannels, by: 16) {
                        // taps[t * 16 + lane]: tap t of output channel o + lane.
                        transpose(w + (o * inChannels + c) * 16, rows: 16, columns: 16, rowStride: inChannels * 16) {
                            taps + $0 * 16
                        }
                        func tap(_ kh: Int, _ kw: Int) -> SIMD16<Float> { SIMD16(loading: taps + (kh * 4 + kw) * 16) }
                        for r in 0..<2 {
                            for s in 0..<2 {
                                let row = u + ((2 * r + s) * inChannels + c) * outChannels + o
                                WinogradTransposedConvolution.transformFilter(
                                    g00: tap(r, s), g01: tap(r, 2 + s), g10: tap(2 + r, s), g11: tap(2 + r, 2 + s),
                                    into: row, productStride: matrix)
                            }
                        }
                    }
                }
            }
        }
    }

    /// y (B, Cout, H/2, W/2) = the convolution of x (B, Cin, H, W) plus `bias` (Cout floats, nil
    /// for none), in three passes over the whole batch (as `WinogradTransposedConvolution.
    /// runWholeBatch`, which says why): every image's transformed inputs, the 25 GEMMs (threads
    /// split the products), every image's outputs.
    static func run(_ x: UnsafePointer<Float>, batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                    u: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
                    scratch: ConvolutionScratch) {
        let (outHeight, outWidth) = (height / 2, width / 2)
        let depth = 4 * inChannels                                  // the phases' channels
        let phaseWidth = outWidth + 1, phasePlane = (outHeight + 1) * phaseWidth
        let tileRows = outHeight / tile, tileColumns = outWidth / tile, tilesPerImage = tileRows * tileColumns
        let tiles = batch * tilesPerImage
        let plane = height * width, outPlane = outHeight * outWidth
        BLAS.recordFLOPs(m: outChannels * products, n: tiles, k: depth)
        let shared = scratch.prepareShared(sizes: [products * tiles * depth, products * tiles * outChannels, outChannels])
        let (v, m, zero) = (shared.value[0], shared.value[1], shared.value[2])
        zero.update(repeating: 0, count: outChannels)
        let bias = bias ?? UnsafePointer(zero)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [plane * inChannels, phasePlane * depth, outPlane * outChannels])

        Parallel.forParts(batch) { part, images in
            let (image, phases) = (pointers[part, 0], pointers[part, 1])
            for i in images {
                // (Cin, H, W) -> (H, W, Cin) -> phases (H/2 + 1, W/2 + 1, 4 Cin): pixel (m, n) of phase
                // rs is input pixel (2m + r - 1, 2n + s - 1), zero outside the image.
                transpose(x + i * inChannels * plane, rows: inChannels, columns: plane, rowStride: plane) { image + $0 * inChannels }
                for row in 0...outHeight {
                    for column in 0...outWidth {
                        let pixel = phases + (row * phaseWidth + column) * depth
                        for r in 0..<2 {
                            for s in 0..<2 {
                                let (sourceRow, sourceColumn) = (2 * row + r - 1, 2 * column + s - 1)
                                let slot = pixel + (2 * r + s) * inChannels
                                if sourceRow >= 0 && sourceRow < height && sourceColumn >= 0 && sourceColumn < width {
                                    slot.update(from: image + (sourceRow * width + sourceColumn) * inChannels, count: inChannels)
                                } else {
                                    slot.update(repeating: 0, count: inChannels)
                                }
                            }
                        }
                    }
                }
                // B^T d B for each tile; tile (ty, tx) reads the 5x5 phase pixels from (4ty, 4tx).
                for ty in 0..<tileRows {
                    for tx in 0..<tileColumns {
                        WinogradTransposedConvolution.transformInput(
                            phases + (tile * ty * phaseWidth + tile * tx) * depth, rowStride: phaseWidth * depth,
                            pixelStride: depth, into: v + (i * tilesPerImage + ty * tileColumns + tx) * depth,
                            productStride: tiles * depth, count: depth)
                    }
                }
            }
        }
        // The 25 products, each summed over the phases' channels by one GEMM.
        Parallel.forRanges(products, minimumPerChunk: 1) { range in
            for xi in range {
                BLAS.gemmSerial(m: tiles, n: outChannels, k: depth, a: v + xi * tiles * depth, lda: depth,
                                b: u + xi * depth * outChannels, ldb: outChannels,
                                c: m + xi * tiles * outChannels, ldc: outChannels)
            }
        }
        // A^T M A + bias into each image's output, channels-last, then to (Cout, H/2, W/2).
        Parallel.forParts(batch) { part, images in
            let output = pointers[part, 2]
            for i in images {
                for ty in 0..<tileRows {
                    for tx in 0..<tileColumns {
                        WinogradTransposedConvolution.transformOutput(
                            m + (i * tilesPerImage + ty * tileColumns + tx) * outChannels, productStride: tiles * outChannels,
                            bias: bias, into: output + (tile * ty * outWidth + tile * tx) * outChannels,
                            rowStride: outWidth * outChannels, pixelStride: outChannels, count: outChannels)
                    }
                }
                let target = y + i * outChannels * outPlane
                transpose(output, rows: outPlane, columns: outChannels, rowStride: outChannels) { target + $0 * outPlane }
            }
        }
    }
}
