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
