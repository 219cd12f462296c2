import CFloatGEMM
@testable import Engine
import NumericTestSupport
import Testing

/// The panel kernel's products in half precision (`PanelKernel.avx512Half`,
/// Sources/CFloatGEMM/HalfPanelGEMM.c), where the CPU has AVX512-FP16.
///
/// Two independent references: small integers, whose products and 64-term sums half represents
/// exactly after any power-of-two scale, must come out exact (a dropped, repeated or misplaced
/// term shows in every layout, remainder and block); real-valued operands must stay within the
/// rounding of 11-bit operands and half sums of the Double sums, each tile at its own scale.
@Suite(.enabled(if: PanelKernel.avx512Half.isAvailable, "this CPU has no AVX512-FP16"))
struct HalfPanelGEMMTests {
    /// Shapes the half kernel takes (`halfPaysOff`), with every remainder: rows around the tiles
    /// of 12, columns around the panels of 16 and the groups of 64, depths across the half runs
    /// (64), the groups' depth blocks (128) and the tiles' (512).
    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (24, 64, 64), (25, 65, 65), (37, 100, 129), (131, 80, 700), (48, 130, 513), (30, 192, 1030),
    ]

    /// How the left operand reaches the kernel: rows as they lie, Float tiles (converted by
    /// each product), or tiles converted to halves once (`LeftOperandTiles` for the half kernel).
    enum Left: CaseIterable { case rows, tiles, halves }

    /// c = a . b (+ bias, or c += when `start` is given) by the half kernel, a as `left` says,
    /// b packed from `images` NCHW maps of n / images cells, c written into NCHW maps as the
    /// columns path does.
    func multiply(m: Int, n: Int, k: Int, a: [Float], b: [Float], images: Int, left: Left, bias: [Float]?,
                  start: [Float]?) -> [Float] {
        let cells = n / images
        // b (k x n) as `images` maps of k channels, then packed back from them.
        let maps = (0..<(images * k * cells)).map { at -> Float in
            let (image, row, cell) = (at / (k * cells), at / cells % k, at % cells)
            return b[row * n + image * cells + cell]
        }
        var packed = [Float](repeating: .nan, count: PanelKernel.packedCount(k: k, n: n))
        packed.withUnsafeMutableBufferPointer {
            PanelKernel.pack(images: maps, ldb: cells, k: k, n: n, columnsPerImage: cells, imageStride: k * cells,
                             into: $0.baseAddress!)
        }
        // c as `images` maps of m channels; the initial sums placed the same way.
        var c = [Float](repeating: 0, count: images * m * cells)
        if let start {
            for at in c.indices {
                let (image, row, cell) = (at / (m * cells), at / cells % m, at % cells)
                c[at] = start[row * n + image * cells + cell]
            }
        }
        let leftTiles = LeftOperandTiles()
        withExtendedLifetime(leftTiles) {
            let packedA = left == .rows ? nil
                : leftTiles.pack(transA: false, a, lda: k, m: m, k: k, for: left == .halves ? .avx512Half : .avx512)
            #expect((packedA?.halves != nil) == (left == .halves))
            a.withUnsafeBufferPointer { rows in
                c.withUnsafeMutableBufferPointer { out in
                    PanelKernel.avx512Half.multiply(aTiles: left != .rows, halves: packedA?.halves, m: m, n: n, k: k,
                                                    a: packedA?.floats ?? rows.baseAddress!, lda: k,
                                                    packed: packed, c: out.baseAddress!, ldc: cells, columnsPerImage: cells,
                                                    imageStride: m * cells, bias: bias, accumulate: start != nil)
                }
            }
        }
        // Back to m x n.
        return (0..<(m * n)).map { at in
            let (row, column) = (at / n, at % n)
            return c[((column / cells) * m + row) * cells + column % cells]
        }
    }

    /// Integers from -3 to 3 (zeros included), from a seed.
    func smallIntegers(_ count: Int, seed: UInt64) -> [Float] {
        randomTensor([count], seed: seed).values.map { ($0 * 3.49).rounded() }
    }

    @Test func smallIntegersComeOutExactInEveryLayout() {
        for (index, (m, n, k)) in Self.shapes.enumerated() {
            #expect(PanelKernel.halfPaysOff(m: m, n: n, k: k), "\(m) x \(n) x \(k) would not reach the half kernel")
            let a = smallIntegers(m * k, seed: UInt64(700 + index)), b = smallIntegers(k * n, seed: UInt64(800 + index))
            let bias = smallIntegers(m, seed: UInt64(900 + index)), start = smallIntegers(m * n, seed: UInt64(950 + index))
            var exact = [Float](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n { exact[i * n + j] = (0..<k).reduce(0) { $0 + a[i * k + $1] * b[$1 * n + j] } }
            }
            let images = n % 32 == 0 ? 2 : 1   // images of 16, 32 or 48 cells where n allows, else one
            for left in Left.allCases {
                let plain = multiply(m: m, n: n, k: k, a: a, b: b, images: images, left: left, bias: nil, start: nil)
                #expect(plain == exact, "\(m) x \(n) x \(k), a as \(left): \(zip(plain, exact).filter { $0 != $1 }.count) wrong")
                let withBias = multiply(m: m, n: n, k: k, a: a, b: b, images: images, left: left, bias: bias, start: nil)
                let biased = exact.indices.map { exact[$0] + bias[$0 / n] }
                #expect(withBias == biased, "\(m) x \(n) x \(k), a as \(left), with a bias")
                let continued = multiply(m: m, n: n, k: k, a: a, b: b, images: images, left: left, bias: nil, start: start)
                #expect(continued == exact.indices.map { exact[$0] + start[$0] }, "\(m) x \(n) x \(k), a as \(left), c +=")
            }
        }
    }

    /// Real values, each tile of 12 rows at its own magnitude from 1e-15 to 1e15: every sum within
    /// 2e-3 of the sum of its terms' magnitudes (measured: up to 4.5e-4), where one scale for all
    /// would have lost the small tiles entirely in half's range.
    @Test func realValuesStayWithinHalfRoundingAtEveryMagnitude() {
        let (m, n, k) = (72, 96, 300)
        let magnitudes: [Float] = [1e-15, 1e-6, 1, 3e4, 1e9, 1e15]
        let raw = randomTensor([m * k], seed: 31).values
        let a = raw.indices.map { raw[$0] * magnitudes[$0 / k / 12] }
        // And b's two groups of columns (64, then 32) at 1e-8 and 1e8: each block's scale is its own,
        // whether its neighbour's served (converted in one pass) or not (a second).
        let b = randomTensor([k * n], seed: 32).values.enumerated().map { $1 * ($0 % n < 64 ? 1e-8 : 1e8) }
        for left in [Left.tiles, .halves] {
            let c = multiply(m: m, n: n, k: k, a: a, b: b, images: 1, left: left, bias: nil, start: nil)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, size = 0.0
                    for q in 0..<k {
                        let term = Double(a[i * k + q]) * Double(b[q * n + j])
                        sum += term
                        size += abs(term)
                    }
                    worst = max(worst, abs(Double(c[i * n + j]) - sum) / size)
                }
            }
            #expect(worst < 2e-3, "a as \(left): largest error \(worst) of the terms' magnitudes")
        }
    }

    /// A NaN or an infinity in an operand reaches its sums, as in Float (no scale hides it).
    @Test func nonFiniteOperandsReachTheirSums() {
        let (m, n, k) = (24, 64, 64)
        var a = randomTensor([m * k], seed: 41).values
        a[3 * k + 10] = .nan
        a[15 * k + 20] = .infinity
        let b = randomTensor([k * n], seed: 42).values.map { $0 == 0 ? 0.5 : $0 }
        for left in [Left.tiles, .halves] {
            let c = multiply(m: m, n: n, k: k, a: a, b: b, images: 1, left: left, bias: nil, start: nil)
            #expect((0..<n).allSatisfy { c[3 * n + $0].isNaN }, "a as \(left): a NaN in row 3 reaches each of its sums")
            #expect((0..<n).allSatisfy { !c[15 * n + $0].isFinite }, "a as \(left): an infinity in row 15 reaches each of its sums")
            #expect((0..<n).allSatisfy { c[4 * n + $0].isFinite && c[16 * n + $0].isFinite }, "a as \(left): other rows keep finite sums")
        }
    }

    /// Below the shapes where it pays, the half kernel hands the product to the Float one:
    /// its FMA chains, to the bit.
    @Test func smallProductsStayFloat() {
        let chain = PanelGEMMTests()
        for (m, n, k) in [(23, 64, 64), (24, 48, 64), (24, 64, 16)] {
            #expect(!PanelKernel.halfPaysOff(m: m, n: n, k: k))
            let a = randomTensor([m * k], seed: 51).values, b = randomTensor([k * n], seed: 52).values
            let c = multiply(m: m, n: n, k: k, a: a, b: b, images: 1, left: .rows, bias: nil, start: nil)
            let expected = chain.fmaChain(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n)
            #expect(zip(c, expected).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(m) x \(n) x \(k) not Float's chain")
        }
    }

    /// Weights converted once a pass are converted by threads that split the tiles: each tile
    /// takes its own scale, so the halves and scales do not depend on the split (where a product's
    /// own conversion starts from its last tile's scale).
    @Test func convertedTilesDoNotDependOnHowThreadsSplitThem() {
        let (m, k) = (61, 1100)   // six tiles, the last of one row; three depth blocks, the last short
        let raw = randomTensor([m * k], seed: 61).values
        let a = raw.indices.map { raw[$0] * ($0 / k % 3 == 0 ? 1e-4 : 50) }   // neighbouring rows far apart in size
        var tiles = [Float](repeating: .nan, count: PanelKernel.tilesCount(m: m, k: k))
        let tileCount = (m + PanelKernel.tileRows - 1) / PanelKernel.tileRows
        a.withUnsafeBufferPointer { a in
            tiles.withUnsafeMutableBufferPointer {
                synthd_panel_pack_a(false, a.baseAddress!, Int32(k), Int32(m), Int32(k), 0, Int32(tileCount), $0.baseAddress!)
            }
        }
        let (wordCount, scaleCount) = HalfTiles.counts(m: m, k: k)
        func converted(splits: [Int]) -> ([UInt32], [Float]) {
            var words = [UInt32](repeating: 0xDEAD_BEEF, count: wordCount), scales = [Float](repeating: .nan, count: scaleCount)
            let bounds = [0] + splits + [tileCount]
            for (first, end) in zip(bounds, bounds.dropFirst()) {
                PanelKernel.convertToHalves(tiles: first..<end, of: tiles, m: m, k: k, into: &words, scales: &scales)
            }
            return (words, scales)
        }
        let whole = converted(splits: []), split = converted(splits: [1, 4])
        #expect(!whole.0.contains(0xDEAD_BEEF) && !whole.1.contains { $0.isNaN }, "every word and scale written")
        #expect(whole.0 == split.0 && whole.1 == split.1)
    }

    /// Which contexts take it: reduced products asked for, no bfloat16 kernel, Winograd never.
    @Test func onlyContextsThatAcceptReducedProductsTakeIt() {
        let float = ComputeContext(threads: 1, products: .float32)
        #expect(!float.halfColumns && float.columnPanels(gridCells: 64) == .avx512)
        let reduced = ComputeContext(threads: 1, products: .bfloat16)
        #expect(reduced.halfColumns == (BFloat16Kernel.fastest == nil))
        if reduced.halfColumns {
            #expect(reduced.columnPanels(gridCells: 64) == .avx512Half)
            #expect(reduced.productsDescription.contains("AVX512-FP16"))
        }
        #expect(!PanelKernel.floatKernels.contains(.avx512Half) && PanelKernel.fastest != .avx512Half)
    }
}
