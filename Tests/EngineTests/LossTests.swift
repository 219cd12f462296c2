import Engine
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
