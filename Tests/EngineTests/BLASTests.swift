import Engine
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
