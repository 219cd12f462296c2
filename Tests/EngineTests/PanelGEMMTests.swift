@testable import Engine
import NumericTestSupport
import Testing

/// The Float products with a packed right operand (`PanelKernel`, Sources/CFloatGEMM), each
/// kernel this CPU runs (an AVX2-only CPU skips the AVX-512 one with the reason, `.enabled(if:)`).
///
/// The kernels promise more than closeness: every sum runs over k in order, one FMA after
/// another, so c must equal a scalar chain of `fma`s to the bit, whatever the micro-tile, the
/// row block or the panel a value falls in. A wrong row, panel or remainder breaks that for
/// whole rows; a dropped k step or a sum in another order breaks it in the last bits.
@Suite struct PanelGEMMTests {
    /// c[i][j] = fma(a[i][q], b[q][j], ...) from q = 0 up, in Float: the kernel's contract.
    func fmaChain(m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for q in 0..<k { sum = sum.addingProduct(a[i * lda + q], b[q * ldb + j]) }
                c[i * n + j] = sum
            }
        }
        return c
    }

    /// c (m x n, row stride ldc) by `kernel` from a and b packed; what lies past n in each row of c untouched.
    func multiply(_ kernel: PanelKernel, m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float],
                  ldc: Int) -> (c: [Float], padding: [Float]) {
        var packed = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n))
        packed.withUnsafeMutableBufferPointer { PanelKernel.pack(b, matrices: 1, k: k, n: n, into: $0.baseAddress!) }
        var c = [Float](repeating: -7, count: max(1, m * ldc))
        c.withUnsafeMutableBufferPointer { c in
            kernel.multiply(m: m, n: n, k: k, a: a, lda: lda, packed: packed, c: c.baseAddress!, ldc: ldc)
        }
        let rows = (0..<m).flatMap { c[($0 * ldc)..<($0 * ldc + n)] }
        let padding = (0..<m).flatMap { c[($0 * ldc + n)..<($0 * ldc + ldc)] }
        return (rows, padding)
    }

    /// Shapes with every remainder: rows around the micro-tiles (6, 12) and the row blocks
    /// (96 KiB of a: 64 rows at k = 384), partial and odd numbers of panels, k of 1 and odd.
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 16, 1), (5, 16, 7), (6, 32, 64), (7, 48, 33), (12, 16, 128), (13, 80, 5), (25, 64, 384),
        (70, 48, 384), (131, 32, 96), (6, 17, 9), (11, 1, 40), (23, 40, 19),
    ]

    // Each kernel's checks run where the CPU has it, and are skipped with the reason elsewhere.
    @Test(.enabled(if: PanelKernel.avx2.isAvailable, "this CPU has no AVX2 with FMA"))
    func avx2Kernel() {
        equalsTheFMAChainToTheBit(.avx2)
        isNearTheDoubleSum(.avx2)
        noDepthGivesZeros(.avx2)
    }

    @Test(.enabled(if: PanelKernel.avx512.isAvailable, "this CPU has no AVX-512"))
    func avx512Kernel() {
        equalsTheFMAChainToTheBit(.avx512)
        isNearTheDoubleSum(.avx512)
        noDepthGivesZeros(.avx512)
    }

    func equalsTheFMAChainToTheBit(_ kernel: PanelKernel) {
        for (index, shape) in Self.shapes.enumerated() {
            let (m, n, k) = shape
            let lda = k + 3, ldc = n + 5   // strides wider than the rows: rows must be found by them
            let a = randomTensor([m * lda], seed: UInt64(10 + index)).values
            let b = randomTensor([k * n], seed: UInt64(50 + index)).values
            let (c, padding) = multiply(kernel, m: m, n: n, k: k, a: a, lda: lda, b: b, ldc: ldc)
            let expected = fmaChain(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: n)
            let wrong = zip(c, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(wrong == 0, "\(kernel) \(m) x \(n) x \(k): \(wrong) of \(c.count) values differ from the FMA chain")
            #expect(padding.allSatisfy { $0 == -7 }, "\(kernel) \(m) x \(n) x \(k) wrote past n")
        }
    }

    /// And against sums in Double (an independent reference: a kernel that summed the wrong
    /// terms in the same order as the chain above could not pass both).
    func isNearTheDoubleSum(_ kernel: PanelKernel) {
        let (m, n, k) = (37, 48, 200)
        let a = randomTensor([m * k], seed: 3).values, b = randomTensor([k * n], seed: 4).values
        let c = multiply(kernel, m: m, n: n, k: k, a: a, lda: k, b: b, ldc: n).c
        let expected = (0..<(m * n)).map { index in
            Float((0..<k).reduce(0.0) { $0 + Double(a[index / n * k + $1]) * Double(b[$1 * n + index % n]) })
        }
        expectClose(c, expected, atol: 2e-5, rtol: 1e-5, "\(kernel) against Double")
    }

    func noDepthGivesZeros(_ kernel: PanelKernel) {
        let c = multiply(kernel, m: 7, n: 16, k: 0, a: [0], lda: 1, b: [], ldc: 16).c
        #expect(c.allSatisfy { $0 == 0 })
    }

    /// The packed layout is what `offset` says (the weight transforms write it through `offset`
    /// instead of packing), and a partial last panel is zero past n.
    @Test func packingPutsEachRowOfSixteenWhereOffsetSays() {
        let (k, n) = (5, 48)
        let b = (0..<(k * n)).map { Float($0) }
        var packed = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n))
        #expect(packed.count == k * n)
        packed.withUnsafeMutableBufferPointer { PanelKernel.pack(b, matrices: 1, k: k, n: n, into: $0.baseAddress!) }
        for row in 0..<k {
            for column in Swift.stride(from: 0, to: n, by: 16) {
                let at = PanelKernel.offset(row: row, column: column, k: k, n: n, packed: true)
                #expect(Array(packed[at..<(at + 16)]) == Array(b[(row * n + column)..<(row * n + column + 16)]))
                #expect(PanelKernel.offset(row: row, column: column, k: k, n: n, packed: false) == row * n + column)
            }
        }
        var partial = [Float](repeating: .nan, count: PanelKernel.packedCount(k: 2, n: 20))
        #expect(partial.count == 2 * 32)
        partial.withUnsafeMutableBufferPointer {
            PanelKernel.pack((0..<40).map(Float.init), matrices: 1, k: 2, n: 20, into: $0.baseAddress!)
        }
        #expect(Array(partial[32..<36]) == [16, 17, 18, 19] && Array(partial[36..<48]).allSatisfy { $0 == 0 })
        #expect(Array(partial[48..<52]) == [36, 37, 38, 39] && Array(partial[52..<64]).allSatisfy { $0 == 0 })
    }

    @Test func onlyWholePanelsSuit() {
        #expect(PanelKernel.suits(n: 16) && PanelKernel.suits(n: 256))
        #expect(!PanelKernel.suits(n: 1) && !PanelKernel.suits(n: 24) && !PanelKernel.suits(n: 0))
    }
}

/// The columns path's use of the kernels: a left operand packed into tiles (`LeftOperandTiles`),
/// right operands packed from a batch of NCHW maps, products written into NCHW maps with a bias.
/// The sums keep the FMA chain's order, so each result is the chain's to the bit, plus the bias.
@Suite struct PanelGEMMImagesTests {
    let chain = PanelGEMMTests()

    /// A batch of `images` NCHW maps of `k` channels and `cells` cells as the k x (images * cells)
    /// matrix the products take.
    func matrix(of maps: [Float], images: Int, k: Int, cells: Int) -> [Float] {
        (0..<k).flatMap { row in (0..<(images * cells)).map { maps[($0 / cells * k + row) * cells + $0 % cells] } }
    }

    func checkImagesBiasAndTiles(_ kernel: PanelKernel) {
        // Rows around the tiles of 12 (and AVX2's micro-tiles of 6), images of 16 and 48 cells,
        // depths across the AVX-512 kernel's blocks of 256 (the bias only after the last).
        for (index, (m, k, cells, images)) in [(20, 7, 16, 3), (12, 33, 48, 2), (5, 64, 16, 5), (25, 1, 32, 1),
                                               (13, 600, 16, 2)].enumerated() {
            let n = images * cells
            for transA in [false, true] {
                let stored = randomTensor([m * k], seed: UInt64(200 + index)).values   // m x k, or k x m when transA
                let a = transA ? (0..<(m * k)).map { stored[($0 % k) * m + $0 / k] } : stored
                let maps = randomTensor([images * k * cells], seed: UInt64(300 + index)).values
                let bias = randomTensor([m], seed: UInt64(400 + index)).values
                var packed = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n))
                packed.withUnsafeMutableBufferPointer {
                    PanelKernel.pack(images: maps, ldb: cells, k: k, n: n, columnsPerImage: cells, imageStride: k * cells,
                                     into: $0.baseAddress!)
                }
                let tiles = LeftOperandTiles()
                let aTiles = tiles.pack(transA: transA, stored, lda: transA ? m : k, m: m, k: k, for: kernel)
                #expect(aTiles.halves == nil, "Float kernels take no halves")
                var c = [Float](repeating: -7, count: images * m * cells + 3)
                c.withUnsafeMutableBufferPointer {
                    kernel.multiply(aTiles: true, m: m, n: n, k: k, a: aTiles.floats, lda: 0, packed: packed, c: $0.baseAddress!,
                                    ldc: cells, columnsPerImage: cells, imageStride: m * cells, bias: bias)
                }
                let b = matrix(of: maps, images: images, k: k, cells: cells)
                let sums = chain.fmaChain(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n)
                // Column q = (image, cell) of row r lands in map r of that image.
                let expected = (0..<(images * m * cells)).map { at -> Float in
                    let (image, r, cell) = (at / (m * cells), at / cells % m, at % cells)
                    return sums[r * n + image * cells + cell] + bias[r]
                }
                let wrong = zip(c, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
                #expect(wrong == 0, "\(kernel) \(m) x \(k), \(images) images of \(cells), transA \(transA): \(wrong) wrong")
                #expect(c.suffix(3).allSatisfy { $0 == -7 }, "\(kernel) wrote past the last image")
            }
        }
    }

    /// A weight gradient's product: a from maps in tiles, c += a . b over two chunks, each chain
    /// going on from the sums before (so the result is the chain over both chunks' depths).
    func checkAccumulatedMapTiles(_ kernel: PanelKernel) {
        for (index, (m, cells, images, n)) in [(13, 16, 3, 32), (24, 64, 2, 48), (5, 16, 20, 16)].enumerated() {
            let k = cells * images
            let maps = (0..<2).map { randomTensor([images * m * cells], seed: UInt64(500 + 10 * index + $0)).values }
            let bs = (0..<2).map { randomTensor([k * n], seed: UInt64(600 + 10 * index + $0)).values }
            let start = randomTensor([m * n], seed: UInt64(700 + index)).values
            var c = start
            for chunk in 0..<2 {
                var tiles = [Float](repeating: .nan, count: PanelKernel.tilesCount(m: m, k: k))
                tiles.withUnsafeMutableBufferPointer {
                    PanelKernel.packTiles(maps: maps[chunk], channels: m, cells: cells, images: images, into: $0.baseAddress!)
                }
                var packed = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n))
                packed.withUnsafeMutableBufferPointer { PanelKernel.pack(bs[chunk], matrices: 1, k: k, n: n, into: $0.baseAddress!) }
                c.withUnsafeMutableBufferPointer {
                    kernel.multiply(aTiles: true, m: m, n: n, k: k, a: tiles, lda: 0, packed: packed, c: $0.baseAddress!,
                                    ldc: n, columnsPerImage: n, imageStride: 0, bias: nil, accumulate: true)
                }
            }
            // The chain from c's start over the first chunk's depths, then the second's.
            let a = maps.map { matrix(of: $0, images: images, k: m, cells: cells) }   // m x k each
            var expected = start
            for i in 0..<m {
                for j in 0..<n {
                    var sum = start[i * n + j]
                    for chunk in 0..<2 {
                        for q in 0..<k { sum = sum.addingProduct(a[chunk][i * k + q], bs[chunk][q * n + j]) }
                    }
                    expected[i * n + j] = sum
                }
            }
            let wrong = zip(c, expected).filter { $0.0.bitPattern != $0.1.bitPattern }.count
            #expect(wrong == 0, "\(kernel) \(m) channels, \(images) images of \(cells), n \(n): \(wrong) of \(c.count) wrong")
        }
    }

    @Test(.enabled(if: PanelKernel.avx2.isAvailable, "this CPU has no AVX2 with FMA"))
    func avx2Kernel() {
        checkImagesBiasAndTiles(.avx2)
        checkAccumulatedMapTiles(.avx2)
    }

    @Test(.enabled(if: PanelKernel.avx512.isAvailable, "this CPU has no AVX-512"))
    func avx512Kernel() {
        checkImagesBiasAndTiles(.avx512)
        checkAccumulatedMapTiles(.avx512)
    }

    /// Packing from maps is packing the gathered matrix.
    @Test func packingFromMapsIsPackingTheirMatrix() {
        let (images, k, cells) = (3, 5, 32)
        let maps = (0..<(images * k * cells)).map(Float.init)
        let n = images * cells
        var fromMaps = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n)), plain = fromMaps
        fromMaps.withUnsafeMutableBufferPointer {
            PanelKernel.pack(images: maps, ldb: cells, k: k, n: n, columnsPerImage: cells, imageStride: k * cells,
                             into: $0.baseAddress!)
        }
        plain.withUnsafeMutableBufferPointer {
            PanelKernel.pack(matrix(of: maps, images: images, k: k, cells: cells), matrices: 1, k: k, n: n, into: $0.baseAddress!)
        }
        #expect(fromMaps == plain)
    }

    /// Which grids take the panels: Float contexts with the AVX-512 kernel, grids of whole panels.
    @Test func columnPanelsNeedFloatProductsAndWholePanels() {
        #expect(ComputeContext(threads: 1, products: .float32, panelKernel: .avx2).columnPanels(gridCells: 64) == nil)
        guard PanelKernel.avx512.isAvailable else { return }
        let kernel = PanelKernel.avx512
        let float = ComputeContext(threads: 1, products: .float32, panelKernel: kernel)
        #expect(float.columnPanels(gridCells: 16) == kernel && float.columnPanels(gridCells: 256) == kernel)
        #expect(float.columnPanels(gridCells: 4) == nil && float.columnPanels(gridCells: 24) == nil)
        #expect(ComputeContext(threads: 1, products: .float32, panelKernel: nil).columnPanels(gridCells: 64) == nil)
        if BFloat16Kernel.fastest != nil {
            #expect(ComputeContext(threads: 1, products: .bfloat16, panelKernel: kernel).columnPanels(gridCells: 64) == nil)
        }
    }
}
