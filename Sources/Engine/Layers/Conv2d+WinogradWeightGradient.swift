/// The weight gradient of the 4/2/1 convolution by F(4x4, 2x2) read backwards (and of the
/// transposed convolution, its adjoint, with x and dy exchanged).
extension WinogradStridedConvolution {
    /// dW (Cout, Cin, 4, 4) += the weight gradient of the convolution of x (B, Cin, H, W) given
    /// dy (B, Cout, H/2, W/2), by the same F(4x4, 2x2) read backwards. With y = A^T [(G g) *
    /// (B^T d)] (per axis), the gradient of <z, y> for the filter g is
    ///
    ///     dg = G^T [(A z) * (B^T d)]
    ///
    /// so each 4x4 tile of dy (z, transformed by A: 5 x 4) and the tile's 5x5 phase patch of x
    /// (d, by B^T, as the forward) give 25 products whose sums over tiles and images are 25 GEMMs
    /// (Cout x tiles) . (tiles x 4 Cin); G^T (2 x 5) of their 5x5 results is the 2x2 taps of each
    /// phase. Exact in exact arithmetic, as the forward; the transposed convolution's weight
    /// gradient is this one with x and dy exchanged (it is the adjoint). In slices of at most
    /// `WinogradTransposedConvolution.wholeBatchTiles` tiles.
    ///
    /// Where the context has a panel kernel, the 25 products are made a block of their results
    /// at a time and reduced by G^T M G at once (`addBlockGradients`); else by OpenBLAS into
    /// whole matrices, summed over the slices and reduced at the end.
    static func weightGradient(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, batch: Int, inChannels: Int,
                               outChannels: Int, height: Int, width: Int, into dW: UnsafeMutablePointer<Float>,
                               scratch: ConvolutionScratch) {
        let (outHeight, outWidth) = (height / 2, width / 2), depth = 4 * inChannels
        let tilesPerImage = (outHeight / tile) * (outWidth / tile)
        BLAS.recordFLOPs(m: outChannels * products, n: depth, k: batch * tilesPerImage)
        let slice = Swift.max(1, WinogradTransposedConvolution.wholeBatchTiles / Swift.max(1, tilesPerImage))
        let sliceTiles = Swift.min(slice, batch) * tilesPerImage
        let kernel = ComputeContext.current.panelKernel.flatMap {
            GradientBlock.pays(outChannels: outChannels, depth: depth, tiles: sliceTiles) ? $0 : nil
        }
        let blocks = GradientBlock.rowBlocks(outChannels: outChannels)
        // x's transforms as the last pass left them (`TransformedImages`), where it was x's.
        let transformed = batch <= slice && scratch.transformedImages?.describe(x, batch: batch, channels: inChannels,
                                                                                 height: height, width: width) == true
        let shared = scratch.prepareShared(sizes: [
            products * sliceTiles * depth, products * sliceTiles * outChannels,
            kernel == nil ? products * outChannels * depth : products * PanelKernel.tilesCount(m: outChannels, k: sliceTiles),
            kernel == nil ? 1 : products * PanelKernel.packedCount(k: sliceTiles, n: depth),
        ])
        let (v, z, m) = (shared.value[0], shared.value[1], shared.value[2])
        let pointers = scratch.prepare(parts: Swift.max(Parallel.partCount(Swift.min(slice, batch)), Parallel.partCount(blocks)),
                                       sizes: [height * width * inChannels, (outHeight + 1) * (outWidth + 1) * depth,
                                               outHeight * outWidth * outChannels,
                                               kernel == nil ? 1 : products * GradientBlock.rows * GradientBlock.columns])
        let (inputImage, outputImage) = (inChannels * height * width, outChannels * outHeight * outWidth)
        for start in Swift.stride(from: 0, to: batch, by: slice) {
            let n = Swift.min(slice, batch - start), tiles = n * tilesPerImage
            Parallel.forParts(n) { part, images in
                for i in images {
                    if !transformed {
                        transformImage(x + (start + i) * inputImage, inChannels: inChannels, height: height, width: width,
                                       image: pointers[part, 0], phases: pointers[part, 1],
                                       into: v + i * tilesPerImage * depth, productStride: tiles * depth)
                    }
                    transformGradientImage(dy + (start + i) * outputImage, outChannels: outChannels,
                                           height: outHeight, width: outWidth, channelsLast: pointers[part, 2],
                                           into: z + i * tilesPerImage * outChannels, productStride: tiles * outChannels)
                }
            }
            if let kernel {
                addBlockGradients(z, v, tiles: tiles, outChannels: outChannels, inChannels: inChannels, kernel: kernel,
                                  zTiles: m, vPanels: shared.value[3], blockResults: pointers, into: dW)
                continue
            }
            // m[xi] (Cout x 4 Cin) (+)= z[xi]^T (Cout x tiles) . v[xi] (tiles x 4 Cin)
            Parallel.forRanges(products, minimumPerChunk: 1) { range in
                for xi in range {
                    BLAS.gemmSerial(transA: true, m: outChannels, n: depth, k: tiles,
                                    a: z + xi * tiles * outChannels, lda: outChannels,
                                    b: v + xi * tiles * depth, ldb: depth, beta: start == 0 ? 0 : 1,
                                    c: m + xi * outChannels * depth, ldc: depth)
                }
            }
        }
        guard kernel == nil else { return }
        Parallel.forRanges(outChannels, minimumPerChunk: 4) { channels in
            addFilterGradients(m, productStride: outChannels * depth, rowStride: depth, rows: channels, firstRow: 0,
                               columns: 0..<depth, inChannels: inChannels, into: dW)
        }
    }

    /// The block of the 25 products' results that one thread makes and reduces at a time: its
    /// 25 x 48 x 64 floats (300 KiB) stay in L2 between the products that write them and the
    /// G^T M G that reads them. Made whole, the results went through memory three times (13 MB
    /// for D's 128 -> 256 layer at batch 64, where k, the tiles, is only 64): OpenBLAS zeroed
    /// them, wrote them, and the reduction read them back.
    enum GradientBlock {
        /// Output channels: four of the packed left operand's tiles of 12 rows.
        static let rows = 4 * PanelKernel.tileRows
        /// Columns of 4 Cin: 16 input channels of one phase at least (Cin is a multiple of 16).
        static let columns = 64

        static func rowBlocks(outChannels: Int) -> Int { (outChannels + rows - 1) / rows }

        /// Whether the blocks beat OpenBLAS's whole matrices: where a product's results
        /// (Cout x 4 Cin) outnumber its operands (tiles x (Cout + 4 Cin)), which the blocks
        /// pack once more. D's 128 -> 256 layer at 8 x 8 (64 tiles) and G's 256 -> 128: 1.15-1.18x
        /// (`synthd-bench kernels --convolutions --winograd`, Zen 2, one and two threads); 64 ->
        /// 128 at 16 x 16 (256 tiles, results a third of the operands): 0.85-0.9x.
        static func pays(outChannels: Int, depth: Int, tiles: Int) -> Bool {
            depth % columns == 0 && outChannels * depth > tiles * (outChannels + depth)
        }
    }

    /// dW += G^T M G of one slice's 25 products z[xi]^T . v[xi], made by `kernel` a block of
    /// results (`GradientBlock`) at a time into `blockResults`' slot 3 (one per part), after
    /// z's and v's matrices are packed into `zTiles` and `vPanels`. A task is a block of output
    /// channels with all its columns, so no two threads write the same lines of dW (with a task
    /// a block, two threads wrote different taps of the same lines: 3.4% of a two-thread step
    /// in the reduction, where one thread's took 2%).
    static func addBlockGradients(_ z: UnsafePointer<Float>, _ v: UnsafePointer<Float>, tiles: Int, outChannels: Int,
                                  inChannels: Int, kernel: PanelKernel, zTiles: UnsafeMutablePointer<Float>,
                                  vPanels: UnsafeMutablePointer<Float>, blockResults: ScratchPointers,
                                  into dW: UnsafeMutablePointer<Float>) {
        let depth = 4 * inChannels
        let tilesSize = PanelKernel.tilesCount(m: outChannels, k: tiles), panelSize = PanelKernel.packedCount(k: tiles, n: depth)
        PanelKernel.pack(v, matrices: products, k: tiles, n: depth, into: vPanels)
        Parallel.forRanges(products, minimumPerChunk: 1) { range in
            for xi in range {
                PanelKernel.packTiles(transposed: z + xi * tiles * outChannels, lda: outChannels, m: outChannels, k: tiles,
                                      into: zTiles + xi * tilesSize)
            }
        }
        let (rows, columns) = (GradientBlock.rows, GradientBlock.columns), columnBlocks = depth / columns
        Parallel.forEachTask(GradientBlock.rowBlocks(outChannels: outChannels)) { part, rowBlock in
            let results = blockResults[part, 3]
            let firstRow = rowBlock * rows, blockRows = Swift.min(rows, outChannels - firstRow)
            for columnBlock in 0..<columnBlocks {
                let firstColumn = columnBlock * columns
                for xi in 0..<products {
                    kernel.multiply(aTiles: true, m: blockRows, n: columns, k: tiles,
                                    a: zTiles + xi * tilesSize + firstRow * tiles, lda: 0,
                                    packed: vPanels + xi * panelSize + firstColumn * tiles,
                                    c: results + xi * rows * columns, ldc: columns, columnsPerImage: columns,
                                    imageStride: 0, bias: nil)
                }
                addFilterGradients(results, productStride: rows * columns, rowStride: columns,
                                   rows: firstRow..<(firstRow + blockRows), firstRow: firstRow,
                                   columns: firstColumn..<(firstColumn + columns), inChannels: inChannels, into: dW)
            }
        }
    }

    /// dW's taps += G^T M G for output channels `rows` and columns `columns` of 4 Cin (a
    /// multiple of 16 each way), M read from `m`: product xi's value for (o, d) at
    /// m + xi * productStride + (o - firstRow) * rowStride + (d - columns.lowerBound). Column
    /// d is input channel d % Cin of phase d / Cin (2r + s); 16 channels at a time.
    static func addFilterGradients(_ m: UnsafePointer<Float>, productStride: Int, rowStride: Int, rows: Range<Int>,
                                   firstRow: Int, columns: Range<Int>, inChannels: Int, into dW: UnsafeMutablePointer<Float>) {
        for o in rows {
            for d in Swift.stride(from: columns.lowerBound, to: columns.upperBound, by: 16) {
                let (phase, c) = d.quotientAndRemainder(dividingBy: inChannels)
                let (r, s) = phase.quotientAndRemainder(dividingBy: 2)
                let row = m + (o - firstRow) * rowStride + (d - columns.lowerBound)
                func product(_ xi: Int) -> SIMD16<Float> { SIMD16(loading: row + xi * productStride) }
                func across(_ a: Int) -> (SIMD16<Float>, SIMD16<Float>) {
                    filterGradient(product(5 * a), product(5 * a + 1), product(5 * a + 2), product(5 * a + 3), product(5 * a + 4))
                }
                let (r0, r1, r2, r3, r4) = (across(0), across(1), across(2), across(3), across(4))
                let top = filterGradient(r0.0, r1.0, r2.0, r3.0, r4.0)       // q = 0: p = 0, 1
                let bottom = filterGradient(r0.1, r1.1, r2.1, r3.1, r4.1)    // q = 1
                for lane in 0..<16 {
                    let taps = dW + (o * inChannels + c + lane) * 16
                    taps[r * 4 + s] += top.0[lane]                 // (2p + r, 2q + s) = (r, s)
                    taps[r * 4 + 2 + s] += bottom.0[lane]          // (r, 2 + s)
                    taps[(2 + r) * 4 + s] += top.1[lane]           // (2 + r, s)
                    taps[(2 + r) * 4 + 2 + s] += bottom.1[lane]    // (2 + r, 2 + s)
                }
            }
        }
    }

    /// G^T m for five products: G^T = [1/2 1/2 1/6 1/6 0; 0 1/2 -1/6 1/3 1] (the filter
    /// transform's transpose, `WinogradTransposedConvolution.filterTransform`).
    @inline(__always)
    static func filterGradient(_ m0: SIMD16<Float>, _ m1: SIMD16<Float>, _ m2: SIMD16<Float>, _ m3: SIMD16<Float>,
                               _ m4: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
        ((m0 + m1) / 2 + (m2 + m3) / 6, m1 / 2 + (m3 + m3 - m2) / 6 + m4)
    }
}
