import Engine
import NumericTestSupport
import Testing

/// Adam in Double from the paper's algorithm (Kingma & Ba 2015, Algorithm 1), with PyTorch's
/// placement of eps, as the reference for the Float32 implementation.
func referenceAdam(_ p0: [Double], gradients: [[Double]], lr: Double, b1: Double, b2: Double,
                   eps: Double, weightDecay: Double, decoupled: Bool) -> [Double] {
    var p = p0, m = [Double](repeating: 0, count: p0.count), v = m
    for (t, g0) in gradients.enumerated() {
        let step = Double(t + 1)
        for i in p.indices {
            var g = g0[i]
            if weightDecay != 0 { if decoupled { p[i] -= lr * weightDecay * p[i] } else { g += weightDecay * p[i] } }
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            let mHat = m[i] / (1 - pow(b1, step)), vHat = v[i] / (1 - pow(b2, step))
            p[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
    return p
}

@Suite struct OptimizerTests {
    static let gradients: [[Double]] = [[0.5, -1, 2e-3, 0], [0.25, 1, -4e-3, 1], [-0.5, 0.1, 1e-3, -1]]

    @Test(arguments: [(0.0, false), (0.1, false), (0.1, true)])
    func adamMatchesReference(weightDecay: Double, decoupled: Bool) {
        let parameter = Parameter("p", shape: [4])
        let start: [Float] = [1, -2, 0.5, 3]
        parameter.value.copy(from: Tensor(shape: [4], values: start))
        let adam = Adam([parameter], learningRate: 0.01, beta1: 0.5, beta2: 0.999, eps: 1e-8,
                        weightDecay: Float(weightDecay), decoupledWeightDecay: decoupled)
        for g in Self.gradients {
            parameter.grad.copy(from: Tensor(shape: [4], values: g.map(Float.init)))
            adam.update()
        }
        let expected = referenceAdam(start.map(Double.init), gradients: Self.gradients, lr: 0.01, b1: 0.5,
                                     b2: 0.999, eps: 1e-8, weightDecay: weightDecay, decoupled: decoupled)
        expectClose(parameter.value.values, expected.map(Float.init), atol: 1e-6, rtol: 1e-5, "Adam")
        #expect(adam.step == 3)
    }

    /// Adam updates 16 values at a time where it can (no weight decay) and the rest one by one:
    /// 37 values are two vectors and a tail of 5. Every value must be what the one-by-one
    /// formula in Float gives, to the last bit (a vector lane that rounded differently, or a
    /// lane left out, shows), and near the Double reference.
    @Test func vectorLanesGiveTheScalarFormulasBits() {
        let count = 37
        let parameter = Parameter("p", shape: [count])
        let start = (0..<count).map { Float(sin(Double($0) * 1.7)) * 2 }
        parameter.value.copy(from: Tensor(shape: [count], values: start))
        let adam = Adam([parameter], learningRate: 0.01, beta1: 0.5, beta2: 0.999, eps: 1e-8)
        var p = start, m = [Float](repeating: 0, count: count), v = m
        var gradients: [[Double]] = []
        for step in 1...3 {
            let g = (0..<count).map { Float(cos(Double($0 * step) * 0.9)) * (($0 % 7 == 0) ? 1e-3 : 1) }
            gradients.append(g.map(Double.init))
            parameter.grad.copy(from: Tensor(shape: [count], values: g))
            adam.update()
            // The bias corrections as Adam computes them (repeated products, not powf).
            let power = { (base: Float) in (0..<step).reduce(Float(1)) { product, _ in product * base } }
            let stepSize = Float(0.01) / (1 - power(0.5))
            let rootCorrection2 = (1 - power(0.999)).squareRoot()
            for i in 0..<count {
                m[i] = 0.5 * m[i] + (1 - 0.5) * g[i]
                v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i]
                p[i] -= stepSize * m[i] / (v[i].squareRoot() / rootCorrection2 + 1e-8)
            }
        }
        #expect(parameter.value.values == p, "Adam's vector lanes differ from the scalar formula")
        let expected = referenceAdam(start.map(Double.init), gradients: gradients, lr: 0.01, b1: 0.5,
                                     b2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false)
        expectClose(parameter.value.values, expected.map(Float.init), atol: 1e-6, rtol: 1e-5, "Adam")
    }

    @Test func sgdWithMomentumMatchesPyTorchFormula() {
        let parameter = Parameter("p", shape: [4])
        parameter.value.copy(from: Tensor(shape: [4], values: [1, -2, 0.5, 3]))
        let sgd = SGD([parameter], learningRate: 0.1, momentum: 0.9, weightDecay: 0.01)
        var p: [Double] = [1, -2, 0.5, 3], buf = [Double](repeating: 0, count: 4)
        for (t, g0) in Self.gradients.enumerated() {
            parameter.grad.copy(from: Tensor(shape: [4], values: g0.map(Float.init)))
            sgd.update()
            for i in 0..<4 {
                let g = g0[i] + 0.01 * p[i]
                buf[i] = t == 0 ? g : 0.9 * buf[i] + g
                p[i] -= 0.1 * buf[i]
            }
        }
        expectClose(parameter.value.values, p.map(Float.init), atol: 1e-6, "SGD")
    }

    @Test func exponentialMovingAverage() {
        let parameter = Parameter("p", shape: [2])
        parameter.value.copy(from: Tensor(shape: [2], values: [1, 2]))
        let ema = ExponentialMovingAverage([parameter], decay: 0.9)
        parameter.value.copy(from: Tensor(shape: [2], values: [3, 0]))
        ema.update()
        parameter.value.copy(from: Tensor(shape: [2], values: [5, 4]))
        ema.update()
        // 0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * 5 = 1.58; 0.9 * (0.9 * 2 + 0) + 0.1 * 4 = 2.02
        expectClose(ema.shadows[0].values, [1.58, 2.02])
        let target = Parameter("q", shape: [2])
        ema.copy(into: [target])
        expectClose(target.value.values, [1.58, 2.02])
    }
}

#if canImport(Glibc)
import Glibc
#endif
