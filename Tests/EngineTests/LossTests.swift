import Engine
import NumericTestSupport
import Testing

@Suite struct LossTests {
    @Test(arguments: [Float(0), 1])
    func binaryCrossEntropyGradient(target: Float) {
        let logits = randomTensor([6], seed: 71, range: -3...3)
        let grad = Tensor(zeros: [6])
        let bce = BinaryCrossEntropyWithLogits()
        _ = bce(logits, target: target, gradient: grad)
        checkGradient("dlogits", of: logits, analytic: grad, eps: 1e-3) { Double(bce(logits, target: target)) }
    }

    @Test func binaryCrossEntropyIsStableForLargeLogits() {
        let bce = BinaryCrossEntropyWithLogits()
        // -log(sigmoid(x)) for target 1: about e^-100 at x = 100, about 100 at x = -100.
        let logits = Tensor(shape: [2], values: [100, -100])
        let grad = Tensor(zeros: [2])
        let loss = bce(logits, target: 1, gradient: grad)
        #expect(abs(loss - 50) < 1e-4)
        expectClose(grad.values, [0, -0.5])
        // Against the definition in Double at moderate values.
        let x: Double = 2.5
        let reference = -log(1 / (1 + exp(-x)))
        #expect(abs(Double(bce(Tensor(shape: [1], values: [2.5]), target: 1)) - reference) < 1e-6)
    }

    @Test func hingeLossValuesAndGradients() {
        let logits = Tensor(shape: [4], values: [-2, -0.5, 0.5, 2])
        let grad = Tensor(zeros: [4])
        // real: mean(relu(1 - x)) = (3 + 1.5 + 0.5 + 0) / 4
        #expect(abs(HingeLoss.discriminator(logits, real: true, gradient: grad) - 1.25) < 1e-6)
        expectClose(grad.values, [-0.25, -0.25, -0.25, 0])
        // fake: mean(relu(1 + x)) = (0 + 0.5 + 1.5 + 3) / 4
        #expect(abs(HingeLoss.discriminator(logits, real: false, gradient: grad) - 1.25) < 1e-6)
        expectClose(grad.values, [0, 0.25, 0.25, 0.25])
        #expect(abs(HingeLoss.generator(logits, gradient: grad) - 0) < 1e-6)
        expectClose(grad.values, [-0.25, -0.25, -0.25, -0.25])

        // Away from the kinks at +-1, where the loss has no derivative.
        let away = Tensor(shape: [5], values: [-2.5, -0.4, 0.3, 1.6, 2.2])
        for real in [true, false] {
            let g = Tensor(zeros: [5])
            _ = HingeLoss.discriminator(away, real: real, gradient: g)
            checkGradient("hinge \(real)", of: away, analytic: g, eps: 1e-3) {
                Double(HingeLoss.discriminator(away, real: real))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SoftmaxCrossEntropyTests {
    @Test func gradientAndStability() {
        let logits = randomTensor([3, 4], seed: 91, range: -2...2)
        let labels: [Int32] = [2, 0, 3]
        let grad = Tensor(zeros: [3, 4])
        let loss = SoftmaxCrossEntropy()
        _ = loss(logits, labels: labels, gradient: grad)
        checkGradient("dlogits", of: logits, analytic: grad, eps: 1e-3) { Double(loss(logits, labels: labels)) }
        // Uniform logits: log K. Huge logits do not overflow.
        #expect(abs(loss(Tensor(zeros: [1, 4]), labels: [1]) - log(4)) < 1e-6)
        let huge = Tensor(shape: [1, 2], values: [1000, 0])
        #expect(abs(loss(huge, labels: [1]) - 1000) < 1e-3)
        #expect(SoftmaxCrossEntropy.predictions(Tensor(shape: [2, 3], values: [0, 5, 1, 9, 2, 3])) == [1, 0])
    }
}

@Suite struct SymmetricEigenTests {
    @Test func knownSpectrumAndReconstruction() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3.
        let eigen = SymmetricEigen([2, 1, 1, 2], n: 2)
        #expect(eigen.values.sorted().enumerated().allSatisfy { abs($1 - [1.0, 3.0][$0]) < 1e-12 })
        // V L V^T gives the matrix back; V sqrt(L) V^T squared gives it back too.
        let m: [Double] = [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2]
        let e = SymmetricEigen(m, n: 3)
        let rebuilt = e.apply { $0 }
        #expect(zip(rebuilt, m).allSatisfy { abs($0 - $1) < 1e-10 })
        let root = e.apply { $0.squareRoot() }
        var square = [Double](repeating: 0, count: 9)
        for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { square[i * 3 + j] += root[i * 3 + k] * root[k * 3 + j] } } }
        #expect(zip(square, m).allSatisfy { abs($0 - $1) < 1e-10 })
    }
}
