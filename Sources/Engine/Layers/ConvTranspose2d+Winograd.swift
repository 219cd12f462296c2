/// The forward pass of a 4/2/1 transposed convolution (kernel 4, stride 2, padding 1: every
/// upsampling layer of G) by Winograd's minimal filtering F(4x4, 2x2) on its four phases.
///
/// With stride 2, an output pixel of a given parity (phase) sums only 2x2 of the 16 taps:
///
///     output row 2m     = input rows m-1, m   through kernel rows 3, 1
///     output row 2m + 1 = input rows m, m+1   through kernel rows 2, 0
///
/// (the same along columns), so each of the four phases is an ordinary 2x2 correlation over
/// the input. F(4, 2) gives four outputs of a 2-tap filter from five inputs with five products
/// instead of eight (Toom-Cook at the points 0, 1, -1, 2 and infinity):
///
///     y = A^T [(G g) * (B^T d)]
///
/// and in 2-D a 4x4 output tile costs 25 products instead of 64. Summed over channels the 25
/// products are 25 GEMMs per phase, (tiles x Cin) . (Cin x Cout). Against the GEMM + col2im
/// path this does 39% of the multiplications and no scatter-add. The transforms' constants
/// (1/2, 1/6, 8) cost a little accuracy: outputs differ from the direct sum by under 1e-5
/// of the largest output (~10x a direct sum's rounding), far below what 8-bit images resolve. (F(2x2, 2x2), exact
/// additions only, did 56%: generation 4,400 images/s against ~5,000 with this.)
///
/// The transforms work channels-last (each pixel's channels contiguous), so that every one
/// of them is a vector operation over 128 or 256 channels; planes of 4x4 or 8x8 pixels are
/// too small to vectorise along. A chunk of images is transposed to that layout on the way
/// in and back to NCHW on the way out.
enum WinogradTransposedConvolution {
    /// Outputs per tile side in each phase, inputs per tile side, and products per tile.
    static let tile = 4, patch = 5, products = 25
    /// The size of transformed weights from which `transformWeights` writes them by fifths.
    static let fifthsFromBytes = 8 << 20

    /// Whether an input of `height` x `width` can take this path, and gains by it: the
    /// transforms cost per input channel and tile, the saving is per output channel, so a
    /// layer that makes the image (1 or 3 channels) stays with columns.
    static func applies(kernelSize: Int, stride: Int, padding: Int, outChannels: Int, height: Int, width: Int) -> Bool {
        kernelSize == 4 && stride == 2 && padding == 1 && height % tile == 0 && width % tile == 0 && outChannels >= 16
    }

    /// Kernel index of tap `a` (0 or 1) of phase `phase` (0: even outputs, 1: odd outputs).
    @inline(__always)
    static func kernelIndex(phase: Int, tap: Int) -> Int { phase == 0 ? 3 - 2 * tap : 2 - 2 * tap }

    /// Floats of the transformed weights: 4 phases x 25 products x Cin x Cout.
    static func transformedWeightCount(inChannels: Int, outChannels: Int) -> Int { 4 * products * outChannels * inChannels }

    /// UInt16s of the transformed weights packed for `BFloat16GEMM` (`packWeights`).
    static func packedWeightCount(inChannels: Int, outChannels: Int) -> Int {
        4 * products * BFloat16GEMM.packedCount(k: inChannels, n: outChannels)
    }

    /// Each of the 100 (Cin x Cout) matrices of `u` packed for `BFloat16GEMM.multiply`.
    static func packWeights(_ u: UnsafePointer<Float>, inChannels: Int, outChannels: Int,
                            into packed: UnsafeMutablePointer<UInt16>) {
        let matrix = outChannels * inChannels, packedMatrix = BFloat16GEMM.packedCount(k: inChannels, n: outChannels)
        Parallel.forRanges(4 * products, minimumPerChunk: 10) { matrices in
            for i in matrices {
                BFloat16GEMM.pack(u + i * matrix, ldb: outChannels, k: inChannels, n: outChannels,
                                  into: packed + i * packedMatrix)
            }
        }
    }

    /// G g for a 2-tap filter: G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1] (the points' rows,
    /// scaled so that B^T below has integer entries).
    @inline(__always)
    static func filterTransform(_ g0: Float, _ g1: Float) -> (Float, Float, Float, Float, Float) {
        (g0 / 2, (g0 + g1) / 2, (g0 - g1) / 6, (g0 + 2 * g1) / 6, g1)
    }

    /// The same for 16 filters at once (SIMD lanes).
    @inline(__always)
    static func filterTransform(_ g0: SIMD16<Float>, _ g1: SIMD16<Float>)
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        (g0 / 2, (g0 + g1) / 2, (g0 - g1) / 6, (g0 + 2 * g1) / 6, g1)
    }

    /// Row `a` of G g G^T (products 5a ..< 5a + 5: a down, b across, as `transformInput`) of
    /// 16 filters' 2x2 taps (g_ab: tap a down, b across), `productStride` floats apart: for
    /// callers that write the 25 products a fifth at a time, so that their stores go to 5
    /// places at once instead of 25 (see `transformWeights`).
    @inline(__always)
    static func transformFilterRow(_ a: Int, g00: SIMD16<Float>, g01: SIMD16<Float>, g10: SIMD16<Float>, g11: SIMD16<Float>,
                                   into row: UnsafeMutablePointer<Float>, productStride s: Int) {
        let left = filterTransform(g00, g10), right = filterTransform(g01, g11)
        let (g0, g1) = switch a {
        case 0: (left.0, right.0)
        case 1: (left.1, right.1)
        case 2: (left.2, right.2)
        case 3: (left.3, right.3)
        default: (left.4, right.4)
        }
        let r = filterTransform(g0, g1), p = row + 5 * a * s
        r.0.store(to: p); r.1.store(to: p + s); r.2.store(to: p + 2 * s); r.3.store(to: p + 3 * s); r.4.store(to: p + 4 * s)
    }

    /// u[phase][xi] (Cin x Cout) = G g G^T, g the phase's 2x2 taps of w (Cin, Cout, 4, 4).
    /// 16 output channels at a time as vectors where Cout is a multiple of 16 (every layer
    /// that training sends here; the weights change every step), else one by one. Each matrix
    /// row-major, or in `PanelKernel`'s panels when `packed` (Cout a multiple of 16).
    ///
    /// The result is 6.25 times the weights (13 MB for G's 256 -> 128 layer), written every
    /// step. A thread gathers its input channels' taps for a block of 16 output channels, then
    /// writes them filter by filter (each filter's 100 products to 100 places at once) or, for
    /// a result of `fifthsFromBytes` or more, as `WinogradStridedConvolution.transformWeights`
    /// writes its own: a fifth of one phase's products at a time over all the channels, 5 store
    /// streams running on through consecutive rows. On a Zen 4 (2026-12-07, AVX2's training
    /// path, binaries alternated) the 13 MB of D's 128 -> 256 input gradient took 3.96-4.55 ms by
    /// fifths against 4.10-5.11 filter by filter; the 3.3 MB of G's 128 -> 64 forward lost by
    /// fifths on a Zen 3 (8.4-9.5 -> 9.2-11.6 ms), so it stays filter by filter. `byFifths`
    /// forces one order (tests).
    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int, packed: Bool = false,
                                 into u: UnsafeMutablePointer<Float>) {
        transformWeights(w, inChannels: inChannels, outChannels: outChannels, packed: packed, byFifths: nil, into: u)
    }

    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int, packed: Bool,
                                 byFifths: Bool?, into u: UnsafeMutablePointer<Float>) {
        let matrix = outChannels * inChannels
        precondition(!packed || outChannels % 16 == 0, "packed panels need whole vectors of output channels")
        if outChannels % 16 == 0 {
            let fifths = byFifths ?? (4 * products * matrix * MemoryLayout<Float>.size >= fifthsFromBytes)
            Parallel.forRanges(inChannels, minimumPerChunk: 8) { channels in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 * channels.count) { block in
                    for co in Swift.stride(from: 0, to: outChannels, by: 16) {
                        for (i, ci) in channels.enumerated() {
                            // block[i * 256 + t * 16 + lane]: tap t of output channel co + lane, input channel ci.
                            transpose(w + (ci * outChannels + co) * 16, rows: 16, columns: 16, rowStride: 16) {
                                block.baseAddress! + i * 256 + $0 * 16
                            }
                        }
                        /// Row `a` of phase (py, px) of the filters of channel `ci`, the block's `i`th.
                        func write(_ i: Int, _ ci: Int, _ py: Int, _ px: Int, _ a: Int) {
                            let taps = block.baseAddress! + i * 256
                            func tap(_ kh: Int, _ kw: Int) -> SIMD16<Float> { SIMD16(loading: taps + (kh * 4 + kw) * 16) }
                            let r0 = kernelIndex(phase: py, tap: 0), r1 = kernelIndex(phase: py, tap: 1)
                            let c0 = kernelIndex(phase: px, tap: 0), c1 = kernelIndex(phase: px, tap: 1)
                            transformFilterRow(a, g00: tap(r0, c0), g01: tap(r0, c1), g10: tap(r1, c0), g11: tap(r1, c1),
                                               into: u + (py * 2 + px) * products * matrix + PanelKernel.offset(
                                                   row: ci, column: co, k: inChannels, n: outChannels, packed: packed),
                                               productStride: matrix)
                        }
                        if fifths {
                            for py in 0..<2 { for px in 0..<2 { for a in 0..<patch { for (i, ci) in channels.enumerated() { write(i, ci, py, px, a) } } } }
                        } else {
                            for (i, ci) in channels.enumerated() { for py in 0..<2 { for px in 0..<2 { for a in 0..<patch { write(i, ci, py, px, a) } } } }
                        }
                    }
                }
            }
            return
        }
        Parallel.forRanges(inChannels, minimumPerChunk: 16) { channels in
            for ci in channels {
                for co in 0..<outChannels {
                    let taps = w + (ci * outChannels + co) * 16
                    for py in 0..<2 {
                        for px in 0..<2 {
                            let r0 = kernelIndex(phase: py, tap: 0) * 4, r1 = kernelIndex(phase: py, tap: 1) * 4
                            let c0 = kernelIndex(phase: px, tap: 0), c1 = kernelIndex(phase: px, tap: 1)
                            // G g: each column of the 2x2 taps to 5 values; then each of the 5 rows to 5.
                            let left = filterTransform(taps[r0 + c0], taps[r1 + c0])
                            let right = filterTransform(taps[r0 + c1], taps[r1 + c1])
                            let phase = u + (py * 2 + px) * products * matrix + ci * outChannels + co
                            func put(row a: Int, _ g0: Float, _ g1: Float) {
                                let r = filterTransform(g0, g1), row = phase + a * patch * matrix
                                row[0] = r.0; row[matrix] = r.1; row[2 * matrix] = r.2; row[3 * matrix] = r.3; row[4 * matrix] = r.4
                            }
                            put(row: 0, left.0, right.0); put(row: 1, left.1, right.1); put(row: 2, left.2, right.2)
                            put(row: 3, left.3, right.3); put(row: 4, left.4, right.4)
                        }
                    }
                }
            }
        }
    }


    /// Working floats per thread for `images` images: the input channels-last with a zero
    /// border, the transformed inputs (25 x tiles x Cin) and products (25 x tiles x Cout) of
    /// one phase, and the output channels-last.
    /// Last, room for the bfloat16 GEMM's copy of one product's transformed inputs.
    static func scratchSizes(images: Int, inChannels: Int, outChannels: Int, height: Int, width: Int) -> [Int] {
        let tiles = images * (height / tile) * (width / tile)
        let cin = ChannelsLast.padded(inChannels), cout = ChannelsLast.padded(outChannels)
        return [images * (height + 2) * (width + 2) * cin, products * tiles * cin, products * tiles * cout,
                images * 4 * height * width * cout, (BFloat16GEMM.scratchCount(m: tiles, k: inChannels) + 1) / 2]
    }

    /// Images per chunk: at most 512 tiles, and the transformed inputs under 512 KiB, so that
    /// they are still in a core's L2 cache when the GEMMs read them. Those GEMMs are then small
    /// (G's layers at the reference sizes: 20 and 40 tiles), and OpenBLAS computes them with
    /// its small-matrix kernels, which skip packing the operands. Sampling measured 5,600-6,000
    /// images/s with a 4 MiB limit, 6,400 with 1 MiB, 7,080 with 512 KiB and 6,800 with 256 KiB.
    /// With the panel kernel's products (an Emerald Rapids, 2026-12-03) larger chunks did not
    /// pay either: 5,635 and 5,849 images/s at 512 KiB, 5,347 and 5,801 at 2 MiB, 5,246 and
    /// 4,983 at 8 MiB.
    static func imagesPerChunk(inChannels: Int, height: Int, width: Int) -> Int {
        let tilesPerImage = Swift.max(1, (height / tile) * (width / tile))
        let byWidth = Swift.max(1, 512 / tilesPerImage)
        let byCache = Swift.max(1, (1 << 17) / (products * inChannels * tilesPerImage))
        return Swift.min(byWidth, byCache)
    }

    /// Sampling's forward of `batch` images in chunks per thread (`scratch`'s buffers):
    /// `ends(start)` says where the chunk starting at image `start` is read from and written to.
    /// `bias`: ChannelsLast.padded(Cout) floats; `statistics` and `packed` as `forward`'s (per
    /// thread: `statistics` holds 2 x ChannelsLast.padded(Cout) doubles for each part).
    /// Training's Float passes take `runWholeBatch`.
    static func run(batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int,
                    weights: WinogradProducts, bias: UnsafePointer<Float>, scratch: ConvolutionScratch,
                    statistics: UnsafeMutablePointer<Double>? = nil, packed: UnsafePointer<UInt16>? = nil,
                    ends: (Int) -> (Source, Destination)) {
        BLAS.recordFLOPs(m: outChannels * products, n: batch * 4 * (height / tile) * (width / tile), k: inChannels)
        let chunk = imagesPerChunk(inChannels: inChannels, height: height, width: width)
        let sizes = scratchSizes(images: Swift.min(chunk, batch), inChannels: inChannels, outChannels: outChannels,
                                 height: height, width: width)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch), sizes: sizes)
        Parallel.forParts(batch) { part, images in
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                let (source, destination) = ends(start)
                forward(source, images: n, inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                        weights: weights, bias: bias, destination, scratch: (0..<5).map { pointers[part, $0] },
                        statistics: statistics.map { $0 + part * 2 * ChannelsLast.padded(outChannels) }, packed: packed)
            }
        }
    }

    /// Where a chunk's input is read from.
    enum Source {
        /// (n, Cin, H, W), used as it is.
        case planes(UnsafePointer<Float>)
        /// (n, H, W, ChannelsLast.padded(Cin)), each value taken as max(0, x * scale + shift) with row
        /// `rows[i]` of the (rows, ChannelsLast.padded(Cin)) tables for image i: the BatchNorm, class
        /// scale and ReLU before this layer, applied on the way into the bordered copy.
        case channelsLast(UnsafePointer<Float>, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                          rows: UnsafePointer<Int32>)
    }

    /// Where a chunk's output goes: (n, Cout, 2H, 2W), or channels-last (n, 2H, 2W,
    /// ChannelsLast.padded(Cout)), which skips the transpose back (the next layer reads it so).
    enum Destination {
        case planes(UnsafeMutablePointer<Float>)
        case channelsLast(UnsafeMutablePointer<Float>)
    }

    /// y = the transposed convolution of x (n images of Cin x H x W), plus `bias`
    /// (ChannelsLast.padded(Cout) floats, zero past Cout). `weights`: the transformed weights
    /// (`TransformedWeights`); `scratch` holds the four buffers of `scratchSizes` for n images.
    /// With `statistics` (2 x ChannelsLast.padded(Cout) doubles), adds each channel's sum of
    /// y - bias, then its sum of squares, taken as the output transform makes the values: a
    /// following BatchNorm's statistics without another pass over the output. With `packed`
    /// (`packWeights` of the weights in rows), the products are bfloat16 GEMMs (`BFloat16GEMM`),
    /// else Float products as `weights` takes them: the panel kernel on weights transformed into
    /// its panels where the context has one (OpenBLAS's small-matrix kernels on these chunks'
    /// 20-40 tiles were 30% of generation on an Emerald Rapids), else OpenBLAS.
    static func forward(_ source: Source, images n: Int, inChannels: Int, outChannels: Int,
                        height: Int, width: Int, weights: WinogradProducts, bias: UnsafePointer<Float>,
                        _ destination: Destination, scratch: [UnsafeMutablePointer<Float>],
                        statistics: UnsafeMutablePointer<Double>? = nil, packed: UnsafePointer<UInt16>? = nil) {
        let (bordered, v, m) = (scratch[0], scratch[1], scratch[2])
        let channelsLast: UnsafeMutablePointer<Float>
        switch destination {
        case .planes: channelsLast = scratch[3]
        case .channelsLast(let y): channelsLast = y
        }
        let tileRows = height / tile, tileColumns = width / tile, tilesPerImage = tileRows * tileColumns
        let tiles = n * tilesPerImage
        let borderedWidth = width + 2, borderedPlane = (height + 2) * borderedWidth
        let outWidth = 2 * width, outPlane = 4 * height * width
        let cin = ChannelsLast.padded(inChannels), cout = ChannelsLast.padded(outChannels)  // channels-last strides

        for image in 0..<n {
            border(source, image: image, inChannels: inChannels, height: height, width: width,
                   into: bordered + image * borderedPlane * cin)
        }

        for py in 0..<2 {
            for px in 0..<2 {
                // B^T d B for each tile; its 5x5 patch starts at bordered row 4ty + py, column 4tx + px.
                for image in 0..<n {
                    let plane = bordered + image * borderedPlane * cin
                    for ty in 0..<tileRows {
                        for tx in 0..<tileColumns {
                            let corner = plane + ((tile * ty + py) * borderedWidth + tile * tx + px) * cin
                            let index = (image * tilesPerImage + ty * tileColumns + tx) * cin
                            transformInput(corner, rowStride: borderedWidth * cin, pixelStride: cin,
                                           into: v + index, productStride: tiles * cin, count: cin)
                        }
                    }
                }
                // The 25 products, each summed over input channels by one GEMM: (tiles x Cin) . (Cin x Cout).
                let phase = (py * 2 + px) * products
                if let packed {
                    let packedMatrix = BFloat16GEMM.packedCount(k: inChannels, n: outChannels)
                    let converted = UnsafeMutableRawPointer(scratch[4]).assumingMemoryBound(to: UInt16.self)
                    for xi in 0..<products {
                        BFloat16GEMM.multiply(m: tiles, n: outChannels, k: inChannels, a: v + xi * tiles * cin, lda: cin,
                                              packed: packed + (phase + xi) * packedMatrix,
                                              c: m + xi * tiles * cout, ldc: cout, scratch: converted)
                    }
                } else {
                    for xi in 0..<products {
                        weights.multiply(phase + xi, m: tiles, a: v + xi * tiles * cin, lda: cin,
                                         c: m + xi * tiles * cout, ldc: cout)
                    }
                }
                // A^T M A into the phase's pixels: output row 2 (4ty + r) + py, column 2 (4tx + c) + px.
                // The phase's sums in Float (at most a few thousand values a channel), the layer's in Double.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * cout) { sums in
                    let partial = statistics == nil ? nil : sums.baseAddress!
                    partial?.update(repeating: 0, count: 2 * cout)
                    for image in 0..<n {
                        let out = channelsLast + image * outPlane * cout
                        for ty in 0..<tileRows {
                            for tx in 0..<tileColumns {
                                let index = (image * tilesPerImage + ty * tileColumns + tx) * cout
                                let topLeft = out + ((2 * tile * ty + py) * outWidth + 2 * tile * tx + px) * cout
                                transformOutput(m + index, productStride: tiles * cout, bias: bias,
                                                into: topLeft, rowStride: 2 * outWidth * cout,
                                                pixelStride: 2 * cout, count: cout, sums: partial)
                            }
                        }
                    }
                    if let statistics, let partial {
                        for i in 0..<(2 * cout) { statistics[i] += Double(partial[i]) }
                    }
                }
            }
        }

        // Out: (2H, 2W, Cout) -> (Cout, 2H, 2W) per image, unless wanted channels-last.
        if case .planes(let y) = destination {
            for image in 0..<n {
                let target = y + image * outChannels * outPlane
                transpose(channelsLast + image * outPlane * cout, rows: outPlane, columns: outChannels,
                          rowStride: cout) { channel in target + channel * outPlane }
            }
        }
    }

    /// In: image `image` of `source`, (Cin, H, W) or (H, W, Cin), to `target`'s (H + 2, W + 2,
    /// ChannelsLast.padded(Cin)), zero on the border.
    static func border(_ source: Source, image: Int, inChannels: Int, height: Int, width: Int,
                       into target: UnsafeMutablePointer<Float>) {
        let cin = ChannelsLast.padded(inChannels), borderedWidth = width + 2
        target.update(repeating: 0, count: borderedWidth * cin)                                         // top row
        (target + (height + 1) * borderedWidth * cin).update(repeating: 0, count: borderedWidth * cin)  // bottom row
        for row in 1...height {
            let rowStart = target + row * borderedWidth * cin
            rowStart.update(repeating: 0, count: cin)                                 // left pixel
            (rowStart + (width + 1) * cin).update(repeating: 0, count: cin)           // right pixel
        }
        switch source {
        case .planes(let x):
            transpose(x + image * inChannels * height * width, rows: inChannels, columns: height * width,
                      rowStride: height * width) { pixel in
                target + ((pixel / width + 1) * borderedWidth + pixel % width + 1) * cin
            }
        case .channelsLast(let x, let scale, let shift, let rows):
            let row = Int(rows[image]) * cin
            rectifiedAffine(x + image * height * width * cin, rows: height, rowLength: width * cin,
                            rowStride: width * cin, scale: scale + row, shift: shift + row, channels: cin,
                            into: target + (borderedWidth + 1) * cin, targetRowStride: borderedWidth * cin)
        }
    }

    /// Training's forward, y (B, Cout, 2H, 2W) = the transposed convolution of x (B, Cin, H, W)
    /// plus `bias` (ChannelsLast.padded(Cout) floats; nil for none), Float products, in three
    /// passes over the whole batch: every image's transformed inputs (threads split the images),
    /// the 100 GEMMs (threads split the products: each GEMM has the batch's tiles, and OpenBLAS
    /// packs each weight matrix once, where threads splitting the images would each pack all
    /// 100: 8% of a two-thread step), then every image's outputs. Batches of more than
    /// `wholeBatchTiles` tiles go in slices of that many (memory stays bounded; a GEMM of 512
    /// rows pays for its packing).
    static func runWholeBatch(_ x: UnsafePointer<Float>, batch: Int, inChannels: Int, outChannels: Int,
                              height: Int, width: Int, weights: WinogradProducts, bias: UnsafePointer<Float>?,
                              into y: UnsafeMutablePointer<Float>, scratch: ConvolutionScratch) {
        BLAS.recordFLOPs(m: outChannels * products, n: batch * 4 * (height / tile) * (width / tile), k: inChannels)
        let slice = Swift.max(1, wholeBatchTiles / Swift.max(1, (height / tile) * (width / tile)))
        let (inputImage, outputImage) = (inChannels * height * width, outChannels * 4 * height * width)
        for start in Swift.stride(from: 0, to: batch, by: slice) {
            runSlice(x + start * inputImage, batch: Swift.min(slice, batch - start), inChannels: inChannels,
                     outChannels: outChannels, height: height, width: width, weights: weights, bias: bias,
                     into: y + start * outputImage, scratch: scratch)
        }
    }

    /// Tiles a phase's GEMMs take at most in training's passes (`runWholeBatch`).
    static let wholeBatchTiles = 512

    /// `runWholeBatch` of one slice of the batch.
    private static func runSlice(_ x: UnsafePointer<Float>, batch: Int, inChannels: Int, outChannels: Int,
                                 height: Int, width: Int, weights: WinogradProducts, bias: UnsafePointer<Float>?,
                                 into y: UnsafeMutablePointer<Float>, scratch: ConvolutionScratch) {
        let cin = ChannelsLast.padded(inChannels), cout = ChannelsLast.padded(outChannels)
        let tileRows = height / tile, tileColumns = width / tile, tilesPerImage = tileRows * tileColumns
        let tiles = batch * tilesPerImage
        let borderedWidth = width + 2, borderedPlane = (height + 2) * borderedWidth
        let outWidth = 2 * width, outPlane = 4 * height * width
        let phaseInputs = products * tiles * cin, phaseProducts = products * tiles * cout
        let shared = scratch.prepareShared(sizes: [4 * phaseInputs, 4 * phaseProducts, cout])
        let (v, m, zero) = (shared.value[0], shared.value[1], shared.value[2])
        zero.update(repeating: 0, count: cout)
        let bias = bias ?? UnsafePointer(zero)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch), sizes: [borderedPlane * cin, outPlane * cout])

        Parallel.forParts(batch) { part, images in
            let bordered = pointers[part, 0]
            for image in images {
                border(.planes(x), image: image, inChannels: inChannels, height: height, width: width, into: bordered)
                for phase in 0..<4 {
                    let (py, px) = (phase / 2, phase % 2)
                    for ty in 0..<tileRows {
                        for tx in 0..<tileColumns {
                            let corner = bordered + ((tile * ty + py) * borderedWidth + tile * tx + px) * cin
                            transformInput(corner, rowStride: borderedWidth * cin, pixelStride: cin,
                                           into: v + phase * phaseInputs + (image * tilesPerImage + ty * tileColumns + tx) * cin,
                                           productStride: tiles * cin, count: cin)
                        }
                    }
                }
            }
        }
        Parallel.forRanges(4 * products, minimumPerChunk: 1) { range in
            for j in range {   // phase j / 25, product j % 25: the same offsets in v, u and m
                weights.multiply(j, m: tiles, a: v + j * tiles * cin, lda: cin, c: m + j * tiles * cout, ldc: cout)
            }
        }
        Parallel.forParts(batch) { part, images in
            let channelsLast = pointers[part, 1]
            for image in images {
                for phase in 0..<4 {
                    let (py, px) = (phase / 2, phase % 2)
                    for ty in 0..<tileRows {
                        for tx in 0..<tileColumns {
                            let topLeft = channelsLast + ((2 * tile * ty + py) * outWidth + 2 * tile * tx + px) * cout
                            transformOutput(m + phase * phaseProducts + (image * tilesPerImage + ty * tileColumns + tx) * cout,
                                            productStride: tiles * cout, bias: bias, into: topLeft,
                                            rowStride: 2 * outWidth * cout, pixelStride: 2 * cout, count: cout)
                        }
                    }
                }
                let target = y + image * outChannels * outPlane
                transpose(channelsLast, rows: outPlane, columns: outChannels, rowStride: cout) { target + $0 * outPlane }
            }
        }
    }

    /// target = max(0, x * scale + shift) for `rows` rows of `rowLength` floats (whole pixels of
    /// `channels`, a multiple of 16, channels-last), the per-channel tables repeating each pixel.
    @inline(__always)
    static func rectifiedAffine(_ x: UnsafePointer<Float>, rows rowCount: Int, rowLength: Int, rowStride: Int,
                                scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, channels: Int,
                                into target: UnsafeMutablePointer<Float>, targetRowStride: Int) {
        for row in 0..<rowCount {
            let from = x + row * rowStride, to = target + row * targetRowStride
            for pixel in Swift.stride(from: 0, to: rowLength, by: channels) {
                for c in Swift.stride(from: 0, to: channels, by: 16) {
                    let value = load(from + pixel + c) * load(scale + c) + load(shift + c)
                    store(value.replacing(with: 0, where: value .< 0), to + pixel + c)
                }
            }
        }
    }

    /// B^T d for five values, B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1].
    @inline(__always)
    static func dataTransform(_ d0: SIMD16<Float>, _ d1: SIMD16<Float>, _ d2: SIMD16<Float>, _ d3: SIMD16<Float>,
                              _ d4: SIMD16<Float>)
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let twice1 = d1 + d1, v3 = d3 - d1
        return (2 * (d0 - d2) + v3, twice1 + d2 - d3, 3 * d2 - twice1 - d3, v3, twice1 - 2 * d3 - d2 + d4)
    }

    /// The 25 transformed values of one tile, `count` channels each (a multiple of 16): the 5x5
    /// patch at `corner` (pixels `pixelStride` apart, rows `rowStride` apart), B^T d B; the
    /// products `s` apart.
    @inline(__always)
    static func transformInput(_ corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int,
                               into out: UnsafeMutablePointer<Float>, productStride s: Int, count: Int) {
        for i in Swift.stride(from: 0, to: count, by: 16) {
            // Along each row of the patch, then down each of the five resulting columns.
            func row(_ a: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
                let p = corner + a * rowStride + i
                return dataTransform(load(p), load(p + pixelStride), load(p + 2 * pixelStride),
                                     load(p + 3 * pixelStride), load(p + 4 * pixelStride))
            }
            let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4)
            func put(_ b: Int, _ c: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
                let o = out + i + b * s
                store(c.0, o); store(c.1, o + 5 * s); store(c.2, o + 10 * s); store(c.3, o + 15 * s); store(c.4, o + 20 * s)
            }
            put(0, dataTransform(r0.0, r1.0, r2.0, r3.0, r4.0))
            put(1, dataTransform(r0.1, r1.1, r2.1, r3.1, r4.1))
            put(2, dataTransform(r0.2, r1.2, r2.2, r3.2, r4.2))
            put(3, dataTransform(r0.3, r1.3, r2.3, r3.3, r4.3))
            put(4, dataTransform(r0.4, r1.4, r2.4, r3.4, r4.4))
        }
    }

    /// A^T m for five products, A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1].
    @inline(__always)
    static func productTransform(_ m0: SIMD16<Float>, _ m1: SIMD16<Float>, _ m2: SIMD16<Float>, _ m3: SIMD16<Float>,
                                 _ m4: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
        let sum = m1 + m2, difference = m1 - m2
        return (m0 + sum + m3, difference + 2 * m3, sum + 4 * m3, difference + 8 * m3 + m4)
    }

    /// One tile's 4x4 outputs, `count` channels each (a multiple of 16), from its 25 products
    /// `s` apart: A^T M A + bias. With `sums`, adds each channel's 16 values of A^T M A (before the
    /// bias) to `sums[c]` and their squares to `sums[count + c]`.
    @inline(__always)
    static func transformOutput(_ products: UnsafePointer<Float>, productStride s: Int, bias: UnsafePointer<Float>,
                                into topLeft: UnsafeMutablePointer<Float>, rowStride: Int, pixelStride: Int, count: Int,
                                sums: UnsafeMutablePointer<Float>? = nil) {
        for i in Swift.stride(from: 0, to: count, by: 16) {
            let m = products + i, b = load(bias + i)
            // Along each row of products (5 -> 4), then down each of the four columns (5 -> 4).
            func row(_ a: Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>) {
                let p = m + a * patch * s
                return productTransform(load(p), load(p + s), load(p + 2 * s), load(p + 3 * s), load(p + 4 * s))
            }
            let r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4)
            var sum = SIMD16<Float>(), squares = SIMD16<Float>()
            func put(_ c: Int, _ y: (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)) {
                let o = topLeft + i + c * pixelStride
                store(y.0 + b, o); store(y.1 + b, o + rowStride); store(y.2 + b, o + 2 * rowStride)
                store(y.3 + b, o + 3 * rowStride)
                if sums != nil {
                    sum += (y.0 + y.1) + (y.2 + y.3)
                    squares += (y.0 * y.0 + y.1 * y.1) + (y.2 * y.2 + y.3 * y.3)
                }
            }
            put(0, productTransform(r0.0, r1.0, r2.0, r3.0, r4.0))
            put(1, productTransform(r0.1, r1.1, r2.1, r3.1, r4.1))
            put(2, productTransform(r0.2, r1.2, r2.2, r3.2, r4.2))
            put(3, productTransform(r0.3, r1.3, r2.3, r3.3, r4.3))
            if let sums {
                store(load(sums + i) + sum, sums + i)
                store(load(sums + count + i) + squares, sums + count + i)
            }
        }
    }
}

/// 16 channels at `p` (the channels-last buffers are padded to whole vectors).
@inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}

@inline(__always) private func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// B[c][r] = A[r][c]: A is rows x columns with rows `rowStride` apart; row c of B
/// starts at `targetRow(c)`. Works in 8x8 blocks held in registers, transposed by three rounds
/// of interleaving (each takes the even and odd halves of row pairs: the element index's six
/// bits rotate by one, and three rotations swap row and column bits); the edges go one by one.
@inline(__always)
func transpose(_ a: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int,
               into targetRow: (Int) -> UnsafeMutablePointer<Float>) {
    let fullRows = rows / 8 * 8, fullColumns = columns / 8 * 8
    func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    func interleave(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (even: SIMD8<Float>, odd: SIMD8<Float>) {
        let pair = SIMD16(lowHalf: a, highHalf: b)
        return (pair.evenHalf, pair.oddHalf)
    }
    for c0 in stride(from: 0, to: fullColumns, by: 8) {
        for r0 in stride(from: 0, to: fullRows, by: 8) {
            let block = a + r0 * rowStride + c0
            var t = (load8(block), load8(block + rowStride), load8(block + 2 * rowStride), load8(block + 3 * rowStride),
                     load8(block + 4 * rowStride), load8(block + 5 * rowStride), load8(block + 6 * rowStride),
                     load8(block + 7 * rowStride))
            for _ in 0..<3 {
                let (p0, p1, p2, p3) = (interleave(t.0, t.1), interleave(t.2, t.3), interleave(t.4, t.5), interleave(t.6, t.7))
                t = (p0.even, p1.even, p2.even, p3.even, p0.odd, p1.odd, p2.odd, p3.odd)
            }
            func put(_ v: SIMD8<Float>, _ j: Int) {
                UnsafeMutableRawPointer(targetRow(c0 + j) + r0).storeBytes(of: v, as: SIMD8<Float>.self)
            }
            put(t.0, 0); put(t.1, 1); put(t.2, 2); put(t.3, 3); put(t.4, 4); put(t.5, 5); put(t.6, 6); put(t.7, 7)
        }
        for c in c0..<(c0 + 8) {
            let row = targetRow(c)
            for r in fullRows..<rows { row[r] = a[r * rowStride + c] }
        }
    }
    for c in fullColumns..<columns {
        let row = targetRow(c)
        for r in 0..<rows { row[r] = a[r * rowStride + c] }
    }
}
