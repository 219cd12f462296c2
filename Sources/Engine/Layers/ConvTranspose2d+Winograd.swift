/// The forward pass of a 4/2/1 transposed convolution (kernel 4, stride 2, padding 1: every
/// upsampling layer of G) by Winograd's minimal filtering F(2x2, 2x2) on its four phases.
///
/// With stride 2, an output pixel of a given parity (phase) sums only 2x2 of the 16 taps:
///
///     output row 2m     = input rows m-1, m   through kernel rows 3, 1
///     output row 2m + 1 = input rows m, m+1   through kernel rows 2, 0
///
/// (the same along columns), so each of the four phases is an ordinary 2x2 correlation over
/// the input. F(2, 2) gives two outputs of a 2-tap filter from three inputs with three products
/// instead of four:
///
///     v = (d0 - d1, d1, d2 - d1)    u = (g0, g0 + g1, g1)    y = (m0 + m1, m1 + m2), m = u * v
///
/// and in 2-D a 2x2 output tile costs 9 products instead of 16. Summed over channels the 9
/// products are 9 GEMMs per phase, (Cout x Cin) . (Cin x tiles); the transforms are additions
/// only, so the result differs from the direct sum by float rounding alone. Against the
/// GEMM + col2im path this does 56% of the multiplications and no scatter-add.
///
/// The transforms work channels-last (each pixel's channels contiguous), so that every one
/// of them is a vector operation over 128 or 256 channels; planes of 4x4 or 8x8 pixels are
/// too small to vectorise along. A chunk of images is transposed to that layout on the way
/// in and back to NCHW on the way out.
enum WinogradTransposedConvolution {
    /// Whether an input of `height` x `width` can take this path, and gains by it: the
    /// transforms cost per input channel and tile, the saving is per output channel, so a
    /// layer that makes the image (1 or 3 channels) stays with columns.
    static func applies(kernelSize: Int, stride: Int, padding: Int, outChannels: Int, height: Int, width: Int) -> Bool {
        kernelSize == 4 && stride == 2 && padding == 1 && height % 2 == 0 && width % 2 == 0 && outChannels >= 16
    }

    /// Kernel index of tap `a` (0 or 1) of phase `phase` (0: even outputs, 1: odd outputs).
    @inline(__always)
    static func kernelIndex(phase: Int, tap: Int) -> Int { phase == 0 ? 3 - 2 * tap : 2 - 2 * tap }

    /// Floats of the transformed weights: 4 phases x 9 products x Cin x Cout.
    static func transformedWeightCount(inChannels: Int, outChannels: Int) -> Int { 36 * outChannels * inChannels }

    /// u[phase][xi] (Cin x Cout) = G g G^T, g the phase's 2x2 taps of w (Cin, Cout, 4, 4), G = [1 0; 1 1; 0 1].
    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int,
                                 into u: UnsafeMutablePointer<Float>) {
        let matrix = outChannels * inChannels
        Parallel.forRanges(inChannels, minimumPerChunk: 16) { channels in
            for ci in channels {
                for co in 0..<outChannels {
                    let taps = w + (ci * outChannels + co) * 16
                    for py in 0..<2 {
                        for px in 0..<2 {
                            let r0 = kernelIndex(phase: py, tap: 0) * 4, r1 = kernelIndex(phase: py, tap: 1) * 4
                            let c0 = kernelIndex(phase: px, tap: 0), c1 = kernelIndex(phase: px, tap: 1)
                            let g00 = taps[r0 + c0], g01 = taps[r0 + c1], g10 = taps[r1 + c0], g11 = taps[r1 + c1]
                            // Rows of G g: (g0., g0. + g1., g1.); then the same across columns.
                            let phase = u + (py * 2 + px) * 9 * matrix + ci * outChannels + co
                            func store(row a: Int, _ left: Float, _ right: Float) {
                                phase[(a * 3 + 0) * matrix] = left
                                phase[(a * 3 + 1) * matrix] = left + right
                                phase[(a * 3 + 2) * matrix] = right
                            }
                            store(row: 0, g00, g01)
                            store(row: 1, g00 + g10, g01 + g11)
                            store(row: 2, g10, g11)
                        }
                    }
                }
            }
        }
    }

    /// Channels-last buffers hold each pixel's channels rounded up to whole 16-lane vectors.
    static func vectorPadded(_ channels: Int) -> Int { (channels + 15) / 16 * 16 }

    /// Working floats per thread for `images` images: the input channels-last with a zero
    /// border, the transformed inputs (9 x tiles x Cin) and products (9 x tiles x Cout) of one
    /// phase, and the output channels-last.
    static func scratchSizes(images: Int, inChannels: Int, outChannels: Int, height: Int, width: Int) -> [Int] {
        let tiles = images * (height / 2) * (width / 2)
        let cin = vectorPadded(inChannels), cout = vectorPadded(outChannels)
        return [images * (height + 2) * (width + 2) * cin, 9 * tiles * cin, 9 * tiles * cout, images * 4 * height * width * cout]
    }

    /// Images per chunk: about 512 tiles (GEMMs wide enough to run near peak), and the
    /// transformed inputs under ~4 MiB so they are still in cache when the GEMMs read them.
    static func imagesPerChunk(inChannels: Int, height: Int, width: Int) -> Int {
        let tilesPerImage = Swift.max(1, (height / 2) * (width / 2))
        let byWidth = Swift.max(1, 512 / tilesPerImage)
        let byCache = Swift.max(1, (1 << 20) / (9 * inChannels * tilesPerImage))
        return Swift.min(byWidth, byCache)
    }

    /// y (n, Cout, 2H, 2W) = the transposed convolution of x (n, Cin, H, W), plus `bias`.
    /// `u` from `transformWeights`; `scratch` holds the four buffers of `scratchSizes` for n images.
    static func forward(x: UnsafePointer<Float>, images n: Int, inChannels: Int, outChannels: Int,
                        height: Int, width: Int, u: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                        y: UnsafeMutablePointer<Float>, scratch: [UnsafeMutablePointer<Float>]) {
        let (bordered, v, m, channelsLast) = (scratch[0], scratch[1], scratch[2], scratch[3])
        let tileRows = height / 2, tileColumns = width / 2, tilesPerImage = tileRows * tileColumns
        let tiles = n * tilesPerImage
        let borderedWidth = width + 2, borderedPlane = (height + 2) * borderedWidth
        let outWidth = 2 * width, outPlane = 4 * height * width
        let matrix = outChannels * inChannels
        let cin = vectorPadded(inChannels), cout = vectorPadded(outChannels)  // channels-last strides

        // In: (Cin, H, W) -> (H + 2, W + 2, Cin) per image, zero on the border.
        for image in 0..<n {
            let source = x + image * inChannels * height * width
            let target = bordered + image * borderedPlane * cin
            target.update(repeating: 0, count: borderedWidth * cin)                       // top row
            (target + (height + 1) * borderedWidth * cin).update(repeating: 0, count: borderedWidth * cin)  // bottom row
            for row in 1...height {
                let rowStart = target + row * borderedWidth * cin
                rowStart.update(repeating: 0, count: cin)                                 // left pixel
                (rowStart + (width + 1) * cin).update(repeating: 0, count: cin)           // right pixel
            }
            transpose(source, rows: inChannels, columns: height * width, rowStride: height * width) { pixel in
                target + ((pixel / width + 1) * borderedWidth + pixel % width + 1) * cin
            }
        }

        for py in 0..<2 {
            for px in 0..<2 {
                // B^T d B for each tile; its 3x3 patch starts at bordered row 2ty + py, column 2tx + px.
                for image in 0..<n {
                    let plane = bordered + image * borderedPlane * cin
                    for ty in 0..<tileRows {
                        for tx in 0..<tileColumns {
                            let corner = plane + ((2 * ty + py) * borderedWidth + 2 * tx + px) * cin
                            let tile = (image * tilesPerImage + ty * tileColumns + tx) * cin
                            transformInput(corner, rowStride: borderedWidth * cin, pixelStride: cin,
                                           into: v + tile, productStride: tiles * cin, count: cin)
                        }
                    }
                }
                // The 9 products, each summed over input channels by one GEMM: (tiles x Cin) . (Cin x Cout).
                let phaseWeights = u + (py * 2 + px) * 9 * matrix
                for xi in 0..<9 {
                    BLAS.gemmSerial(m: tiles, n: outChannels, k: inChannels,
                                    a: v + xi * tiles * cin, lda: cin,
                                    b: phaseWeights + xi * matrix, ldb: outChannels,
                                    c: m + xi * tiles * cout, ldc: cout)
                }
                // A^T M A into the phase's pixels: output row 4ty + 2r + py, column 4tx + 2c + px.
                for image in 0..<n {
                    let out = channelsLast + image * outPlane * cout
                    for ty in 0..<tileRows {
                        for tx in 0..<tileColumns {
                            let tile = (image * tilesPerImage + ty * tileColumns + tx) * cout
                            let topLeft = out + ((4 * ty + py) * outWidth + 4 * tx + px) * cout
                            transformOutput(m + tile, productStride: tiles * cout,
                                            into: topLeft, rowStride: 2 * outWidth * cout,
                                            pixelStride: 2 * cout, count: cout)
                        }
                    }
                }
            }
        }

        // Out: (2H, 2W, Cout) -> (Cout, 2H, 2W) per image, plus the bias.
        for image in 0..<n {
            let target = y + image * outChannels * outPlane
            transpose(channelsLast + image * outPlane * cout, rows: outPlane, columns: outChannels, rowStride: cout,
                      shift: bias) { channel in target + channel * outPlane }
        }
    }

    /// The 9 transformed values of one tile, `count` channels each (a multiple of 16): the 3x3
    /// patch at `corner` (pixels `pixelStride` apart, rows `rowStride` apart), B^T d B with
    /// B^T = [1 -1 0; 0 1 0; 0 -1 1]; the products `s` apart.
    @inline(__always)
    static func transformInput(_ corner: UnsafePointer<Float>, rowStride: Int, pixelStride: Int,
                               into out: UnsafeMutablePointer<Float>, productStride s: Int, count: Int) {
        for i in Swift.stride(from: 0, to: count, by: 16) {
            let r0 = corner + i, r1 = r0 + rowStride, r2 = r1 + rowStride, o = out + i
            let c1 = pixelStride, c2 = 2 * pixelStride
            // Across rows: (d0 - d1, d1, d2 - d1) for each of the three columns.
            let b0 = load(r1), b1 = load(r1 + c1), b2 = load(r1 + c2)
            let a0 = load(r0) - b0, a1 = load(r0 + c1) - b1, a2 = load(r0 + c2) - b2
            let e0 = load(r2) - b0, e1 = load(r2 + c1) - b1, e2 = load(r2 + c2) - b2
            // Then across columns.
            store(a0 - a1, o); store(a1, o + s); store(a2 - a1, o + 2 * s)
            store(b0 - b1, o + 3 * s); store(b1, o + 4 * s); store(b2 - b1, o + 5 * s)
            store(e0 - e1, o + 6 * s); store(e1, o + 7 * s); store(e2 - e1, o + 8 * s)
        }
    }

    /// One tile's 2x2 outputs, `count` channels each (a multiple of 16), from its 9 products
    /// `s` apart: output (r, c) sums products (a, b) for a in {r, r + 1}, b in {c, c + 1}
    /// (A^T = [1 1 0; 0 1 1]).
    @inline(__always)
    static func transformOutput(_ products: UnsafePointer<Float>, productStride s: Int,
                                into topLeft: UnsafeMutablePointer<Float>, rowStride: Int, pixelStride: Int, count: Int) {
        for i in Swift.stride(from: 0, to: count, by: 16) {
            let m = products + i, out = topLeft + i
            let m3 = load(m + 3 * s), m4 = load(m + 4 * s), m5 = load(m + 5 * s)
            let top0 = load(m) + m3, top1 = load(m + s) + m4, top2 = load(m + 2 * s) + m5
            let bottom0 = m3 + load(m + 6 * s), bottom1 = m4 + load(m + 7 * s), bottom2 = m5 + load(m + 8 * s)
            store(top0 + top1, out)
            store(top1 + top2, out + pixelStride)
            store(bottom0 + bottom1, out + rowStride)
            store(bottom1 + bottom2, out + rowStride + pixelStride)
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

/// B[c][r] = A[r][c] + shift[c]: A is rows x columns with rows `rowStride` apart; row c of B
/// starts at `targetRow(c)`. Works in 8x8 blocks held in registers, transposed by three rounds
/// of interleaving (each takes the even and odd halves of row pairs: the element index's six
/// bits rotate by one, and three rotations swap row and column bits); the edges go one by one.
@inline(__always)
func transpose(_ a: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int, shift: UnsafePointer<Float>? = nil,
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
                let value = shift.map { v + SIMD8(repeating: $0[c0 + j]) } ?? v
                UnsafeMutableRawPointer(targetRow(c0 + j) + r0).storeBytes(of: value, as: SIMD8<Float>.self)
            }
            put(t.0, 0); put(t.1, 1); put(t.2, 2); put(t.3, 3); put(t.4, 4); put(t.5, 5); put(t.6, 6); put(t.7, 7)
        }
        for c in c0..<(c0 + 8) {
            let row = targetRow(c), add = shift?[c] ?? 0
            for r in fullRows..<rows { row[r] = a[r * rowStride + c] + add }
        }
    }
    for c in fullColumns..<columns {
        let row = targetRow(c), add = shift?[c] ?? 0
        for r in 0..<rows { row[r] = a[r * rowStride + c] + add }
    }
}
