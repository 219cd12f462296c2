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
/// It runs channels-last: each image is transposed to (H, W, Cin), gathered into the phases
/// with a zero border, and its outputs transposed back to NCHW. Training takes this path in
/// contexts that ask for it (`ComputeContext.winogradConvolutions`): the transforms' constants
/// round to ~1e-6 of a layer's largest output, where the columns path rounds like a direct sum.
enum WinogradStridedConvolution {
    static let tile = WinogradTransposedConvolution.tile
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
    /// of phase rs. `w` is (Cout, Cin, 4, 4); 16 output channels at a time, as vectors. Each
    /// matrix row-major, or in `PanelKernel`'s panels when `packed`.
    ///
    /// The result (25 x 4 Cin x Cout: 13 MB for D's 128 -> 256 layer) is far larger than L2 and
    /// written every step. Written filter by filter, each filter's 25 products went to 25 places
    /// at once, four times over: on a 2-core Zen 3 two threads then waited on memory and the pass
    /// did not speed up. So a thread first gathers its channels' taps for a block of 16 output
    /// channels, then writes a fifth of the products at a time over all of them: 5 store
    /// streams, each running on through consecutive rows.
    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int, packed: Bool = false,
                                 into u: UnsafeMutablePointer<Float>) {
        let depth = 4 * inChannels, matrix = depth * outChannels
        Parallel.forRanges(inChannels, minimumPerChunk: 8) { channels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 * channels.count) { block in
                for o in Swift.stride(from: 0, to: outChannels, by: 16) {
                    for (i, c) in channels.enumerated() {
                        // block[i * 256 + t * 16 + lane]: tap t of output channel o + lane, input channel c.
                        transpose(w + (o * inChannels + c) * 16, rows: 16, columns: 16, rowStride: inChannels * 16) {
                            block.baseAddress! + i * 256 + $0 * 16
                        }
                    }
                    for r in 0..<2 {
                        for s in 0..<2 {
                            for a in 0..<5 {
                                for (i, c) in channels.enumerated() {
                                    let taps = block.baseAddress! + i * 256
                                    func tap(_ kh: Int, _ kw: Int) -> SIMD16<Float> { SIMD16(loading: taps + (kh * 4 + kw) * 16) }
                                    let row = u + PanelKernel.offset(row: (2 * r + s) * inChannels + c, column: o, k: depth,
                                                                     n: outChannels, packed: packed)
                                    WinogradTransposedConvolution.transformFilterRow(
                                        a, g00: tap(r, s), g01: tap(r, 2 + s), g10: tap(2 + r, s), g11: tap(2 + r, 2 + s),
                                        into: row, productStride: matrix)
                                }
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
    /// split the products), every image's outputs; in slices of at most
    /// `WinogradTransposedConvolution.wholeBatchTiles` tiles.
    static func run(_ x: UnsafePointer<Float>, batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                    weights: WinogradProducts, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>,
                    scratch: ConvolutionScratch) {
        BLAS.recordFLOPs(m: outChannels * products, n: batch * (height / (2 * tile)) * (width / (2 * tile)),
                         k: 4 * inChannels)
        let tilesPerImage = Swift.max(1, (height / (2 * tile)) * (width / (2 * tile)))
        let slice = Swift.max(1, WinogradTransposedConvolution.wholeBatchTiles / tilesPerImage)
        let (inputImage, outputImage) = (inChannels * height * width, outChannels * height * width / 4)
        for start in Swift.stride(from: 0, to: batch, by: slice) {
            runSlice(x + start * inputImage, batch: Swift.min(slice, batch - start), inChannels: inChannels,
                     outChannels: outChannels, height: height, width: width, weights: weights, bias: bias,
                     into: y + start * outputImage, scratch: scratch)
        }
        if batch <= slice {
            scratch.transformedImages = TransformedImages(images: x, batch: batch, channels: inChannels, height: height,
                                                          width: width)
        }
    }

    /// One image's transformed inputs: x (Cin, H, W) to (H, W, Cin) in `image`, gathered into
    /// the phases (H/2 + 1, W/2 + 1, 4 Cin) in `phases` (pixel (m, n) of phase rs is input pixel
    /// (2m + r - 1, 2n + s - 1), zero outside the image), and B^T d B of each tile into `v`
    /// (tile t's 4 Cin values at v + t * 4 Cin, the 25 products `productStride` apart).
    static func transformImage(_ x: UnsafePointer<Float>, inChannels: Int, height: Int, width: Int,
                               image: UnsafeMutablePointer<Float>, phases: UnsafeMutablePointer<Float>,
                               into v: UnsafeMutablePointer<Float>, productStride: Int) {
        let (outHeight, outWidth) = (height / 2, width / 2), depth = 4 * inChannels, plane = height * width
        let phaseWidth = outWidth + 1, tileColumns = outWidth / tile
        transpose(x, rows: inChannels, columns: plane, rowStride: plane) { image + $0 * inChannels }
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
        // Tile (ty, tx) reads the 5x5 phase pixels from (4ty, 4tx).
        for ty in 0..<(outHeight / tile) {
            for tx in 0..<tileColumns {
                WinogradTransposedConvolution.transformInput(
                    phases + (tile * ty * phaseWidth + tile * tx) * depth, rowStride: phaseWidth * depth,
                    pixelStride: depth, into: v + (ty * tileColumns + tx) * depth, productStride: productStride, count: depth)
            }
        }
    }

    /// A z for four values of dy, A = (A^T)^T: [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 0 0 0 1].
    @inline(__always)
    static func gradientTransform(_ z0: SIMD16<Float>, _ z1: SIMD16<Float>, _ z2: SIMD16<Float>, _ z3: SIMD16<Float>)
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let even = z0 + z2, odd = z1 + z3
        return (z0, even + odd, even - odd, z0 + 2 * z1 + 4 * z2 + 8 * z3, z3)
    }

    /// One image's dy (Cout, H', W') to channels-last in `channelsLast`, then A Z A^T of each 4x4
    /// tile into `z` (tile t's Cout values at z + t * Cout, the 25 products `productStride` apart;
    /// product 5a + b: a down, b across, as the inputs').
    static func transformGradientImage(_ dy: UnsafePointer<Float>, outChannels: Int, height: Int, width: Int,
                                       channelsLast: UnsafeMutablePointer<Float>,
                                       into z: UnsafeMutablePointer<Float>, productStride s: Int) {
        let plane = height * width, tileColumns = width / tile
        transpose(dy, rows: outChannels, columns: plane, rowStride: plane) { channelsLast + $0 * outChannels }
        for ty in 0..<(height / tile) {
            for tx in 0..<tileColumns {
                let corner = channelsLast + (tile * ty * width + tile * tx) * outChannels
                let out = z + (ty * tileColumns + tx) * outChannels
                for o in Swift.stride(from: 0, to: outChannels, by: 16) {
                    func row(_ a: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
                        let p = corner + a * width * outChannels + o
                        return gradientTransform(SIMD16(loading: p), SIMD16(loading: p + outChannels),
                                                 SIMD16(loading: p + 2 * outChannels), SIMD16(loading: p + 3 * outChannels))
                    }
                    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3))
                    func put(_ b: Int, _ c: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
                        let p = out + o + b * s
                        c.0.store(to: p); c.1.store(to: p + 5 * s); c.2.store(to: p + 10 * s); c.3.store(to: p + 15 * s)
                        c.4.store(to: p + 20 * s)
                    }
                    put(0, gradientTransform(r0.0, r1.0, r2.0, r3.0)); put(1, gradientTransform(r0.1, r1.1, r2.1, r3.1))
                    put(2, gradientTransform(r0.2, r1.2, r2.2, r3.2)); put(3, gradientTransform(r0.3, r1.3, r2.3, r3.3))
                    put(4, gradientTransform(r0.4, r1.4, r2.4, r3.4))
                }
            }
        }
    }

    /// `run` of one slice of the batch.
    private static func runSlice(_ x: UnsafePointer<Float>, batch: Int, inChannels: Int, outChannels: Int,
                                 height: Int, width: Int, weights: WinogradProducts, bias: UnsafePointer<Float>?,
                                 into y: UnsafeMutablePointer<Float>, scratch: ConvolutionScratch) {
        let (outHeight, outWidth) = (height / 2, width / 2)
        let depth = 4 * inChannels                                  // the phases' channels
        let phaseWidth = outWidth + 1, phasePlane = (outHeight + 1) * phaseWidth
        let tileRows = outHeight / tile, tileColumns = outWidth / tile, tilesPerImage = tileRows * tileColumns
        let tiles = batch * tilesPerImage
        let plane = height * width, outPlane = outHeight * outWidth
        let shared = scratch.prepareShared(sizes: [products * tiles * depth, products * tiles * outChannels, outChannels])
        let (v, m, zero) = (shared.value[0], shared.value[1], shared.value[2])
        zero.update(repeating: 0, count: outChannels)
        let bias = bias ?? UnsafePointer(zero)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [plane * inChannels, phasePlane * depth, outPlane * outChannels])

        Parallel.forParts(batch) { part, images in
            let (image, phases) = (pointers[part, 0], pointers[part, 1])
            for i in images {
                transformImage(x + i * inChannels * plane, inChannels: inChannels, height: height, width: width,
                               image: image, phases: phases, into: v + i * tilesPerImage * depth, productStride: tiles * depth)
            }
        }
        // The 25 products, each summed over the phases' channels by one GEMM.
        Parallel.forRanges(products, minimumPerChunk: 1) { range in
            for xi in range {
                weights.multiply(xi, m: tiles, a: v + xi * tiles * depth, lda: depth, c: m + xi * tiles * outChannels,
                                 ldc: outChannels)
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
