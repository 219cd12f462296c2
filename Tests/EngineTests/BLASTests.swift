@testable import Engine
import NumericTestSupport
import Testing

@Suite struct BLASTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemmMatchesNaiveLoop(transA: Bool, transB: Bool) {
        let (m, n, k) = (7, 5, 9)
        let a = randomTensor(transA ? [k, m] : [m, k], seed: 1)
        let b = randomTensor(transB ? [n, k] : [k, n], seed: 2)
        let fast = randomTensor([m, n], seed: 3)
        let naive = Tensor(zeros: [m, n]); naive.copy(from: fast)
        let lda = transA ? m : k, ldb = transB ? k : n
        // beta = 1 also checks accumulation, which backward passes rely on.
        BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5,
                  a: a.data, lda: lda, b: b.data, ldb: ldb, beta: 1, c: fast.data, ldc: n)
        BLAS.gemmNaive(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5,
                       a: a.data, lda: lda, b: b.data, ldb: ldb, beta: 1, c: naive.data, ldc: n)
        expectClose(fast.values, naive.values, atol: 1e-5, rtol: 1e-5, "gemm")
    }

    @Test func im2colAndCol2imAreAdjoint() {
        // <im2col(x), c> == <x, col2im(c)> for every geometry: col2im is the transpose.
        let g = ConvGeometry(batch: 2, channels: 3, height: 5, width: 6, kernelHeight: 4, kernelWidth: 3,
                             stride: 2, padding: 1, gridHeight: 2, gridWidth: 3)
        let x = randomTensor([2, 3, 5, 6], seed: 4)
        let c = randomTensor([g.patchSize, g.columnCount], seed: 5)
        let cols = Tensor(zeros: c.shape), image = Tensor(zeros: x.shape)
        im2col(cols.data, x.data, g)
        col2im(image.data, c.data, g)
        let left = weightedSum(cols, c), right = weightedSum(image, x)
        #expect(abs(left - right) < 1e-4 * Swift.max(1, abs(left)))
    }
}

/// The gathering col2im of the DCGAN geometry (`DoublingColumns`) against the scatter that
/// serves every geometry, on odd batch and channel counts, each grid width it takes (4 and
/// multiples of 8: the first and last vectors of a row read past their lanes' own taps), and
/// grids of one row (where every pixel row has one kernel row inside).
@Suite struct DoublingColumnsTests {
    @Test(arguments: [(1, 4), (3, 4), (2, 8), (5, 16), (1, 24), (4, 32)])
    func gatherMatchesTheScatter(gridHeight: Int, gridWidth: Int) {
        let g = ConvGeometry(batch: 3, channels: 5, height: 2 * gridHeight, width: 2 * gridWidth, kernelHeight: 4, kernelWidth: 4,
                             stride: 2, padding: 1, gridHeight: gridHeight, gridWidth: gridWidth)
        #expect(DoublingColumns.applies(to: g))
        let cols = randomTensor([g.patchSize, g.columnCount], seed: UInt64(gridHeight * 100 + gridWidth))
        let gathered = randomTensor([3, 5, g.height, g.width], seed: 9), scattered = randomTensor(gathered.shape, seed: 10)
        col2im(gathered.data, cols.data, g)
        col2imByScatter(scattered.data, cols.data, g)
        expectClose(gathered.values, scattered.values, atol: 1e-6, rtol: 1e-6, "col2im \(gridHeight)x\(gridWidth)")
    }

    @Test func otherGeometriesScatter() {
        let base = ConvGeometry(batch: 1, channels: 1, height: 16, width: 16, kernelHeight: 4, kernelWidth: 4,
                                stride: 2, padding: 1, gridHeight: 8, gridWidth: 8)
        var odd = base; odd.gridWidth = 6; odd.width = 12
        var unpadded = base; unpadded.padding = 0
        var wider = base; wider.kernelWidth = 3
        #expect(DoublingColumns.applies(to: base))
        #expect(![odd, unpadded, wider].contains(where: DoublingColumns.applies))
    }
}
