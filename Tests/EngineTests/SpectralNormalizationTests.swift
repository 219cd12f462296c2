import Engine
import Foundation
import NumericTestSupport
import Testing

@Suite struct SpectralNormalizationTests {
    /// A 3x5 weight, u and cost as `scripts/make_spectral_fixture.py` builds them.
    private func fixtureWeight() -> (Parameter, cost: Tensor) {
        let layerWeight = Parameter("L.weight", shape: [3, 5])
        let cost = Tensor(zeros: [3, 5])
        for r in 0..<3 {
            for c in 0..<5 {
                layerWeight.value[r * 5 + c] = Float(0.5 * sin(Double(1 + r * 5 + c)))
                cost[r * 5 + c] = Float(cos(Double(r * 5 + c)))
            }
        }
        return (layerWeight, cost)
    }

    /// One power iteration, W / sigma and the weight gradient against
    /// `torch.nn.utils.spectral_norm` (values printed by scripts/make_spectral_fixture.py).
    @Test func matchesPyTorch() {
        let sigma: Float = 1.1627861
        let u: [Float] = [-0.74881731, -0.214588245, 0.627076169]
        let normalized: [Float] = [0.361833956, 0.390999441, 0.0606818437, -0.325426361, -0.41233907, -0.12014914,
                                   0.282505356, 0.42542573, 0.17721165, -0.233930004, -0.429997491, -0.230727268,
                                   0.180672541, 0.425962849, 0.279624878]
        let gradient: [Float] = [0.0307556592, -0.521388845, -0.59417085, -0.120674915, 0.46376898, 0.00631328636,
                                 0.543177612, 0.580646947, 0.0842721559, -0.489582066, -0.027173978, 0.829546742,
                                 0.923586013, 0.168484563, -0.741520817]

        let (layerWeight, cost) = fixtureWeight()
        let sn = SpectralNormalization(layerWeight)
        sn.weight.value.copy(from: layerWeight.value)
        let start: [Float] = [0.3, -0.5, 0.8]
        let norm = start.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in 0..<3 { sn.u[i] = start[i] / norm }

        sn.normalize(iterate: true)
        #expect(abs(sn.sigma - sigma) < 1e-5)
        expectClose(sn.u.values, u, atol: 1e-6, rtol: 1e-5, "u")
        expectClose(layerWeight.value.values, normalized, atol: 1e-6, rtol: 1e-5, "W / sigma")
        layerWeight.grad.copy(from: cost)
        sn.accumulateGradient()
        expectClose(sn.weight.grad.values, gradient, atol: 1e-6, rtol: 1e-5, "dL/dW")
        #expect(layerWeight.grad.values.allSatisfy { $0 == 0 }, "the layer's gradient is handed over")
    }

    /// Power iteration converges to the largest singular value, computed here from the
    /// eigenvalues of W W^T; reading W transposed gives the same sigma.
    @Test(arguments: [false, true])
    func sigmaConvergesToTheLargestSingularValue(transposed: Bool) {
        let rows = 6, columns = 9
        let layerWeight = Parameter("L.weight", shape: [rows, columns])
        let sn = SpectralNormalization(layerWeight, transposed: transposed)
        sn.weight.value.copy(from: randomTensor([rows, columns], seed: 4))
        for _ in 0..<200 { sn.normalize(iterate: true) }

        let w = sn.weight.value
        var gram = [Double](repeating: 0, count: rows * rows)
        for i in 0..<rows {
            for j in 0..<rows {
                for k in 0..<columns { gram[i * rows + j] += Double(w[i * columns + k]) * Double(w[j * columns + k]) }
            }
        }
        let largest = SymmetricEigen(gram, n: rows).values.max()!.squareRoot()
        #expect(abs(Double(sn.sigma) - largest) < 1e-4 * largest, "sigma \(sn.sigma), largest singular value \(largest)")
        for i in 0..<w.count { #expect(abs(layerWeight.value[i] - w[i] / sn.sigma) < 1e-6) }
    }

    /// dL/dW for L = sum(C * W / sigma(W)), u and v held, against central differences, in
    /// both orientations (u on the row side, and on the column side as for embedding tables).
    @Test(arguments: [false, true])
    func gradientMatchesFiniteDifferences(transposed: Bool) {
        let layerWeight = Parameter("E.weight", shape: [4, 3, 2])
        let sn = SpectralNormalization(layerWeight, transposed: transposed)
        sn.weight.value.copy(from: randomTensor([4, 3, 2], seed: 11))
        let cost = randomTensor([4, 3, 2], seed: 12)
        sn.normalize(iterate: true)
        layerWeight.grad.copy(from: cost)
        sn.accumulateGradient()
        checkGradient("spectral norm (transposed: \(transposed))", of: sn.weight.value, analytic: sn.weight.grad,
                      eps: 1e-3, tolerance: 1e-3) {
            sn.normalize(iterate: false)
            return weightedSum(layerWeight.value, cost)
        }
    }

    /// Gradients add up across backward passes until handed over, like any parameter's.
    @Test func gradientsAccumulate() {
        let (layerWeight, cost) = fixtureWeight()
        let sn = SpectralNormalization(layerWeight)
        sn.weight.value.copy(from: layerWeight.value)
        sn.normalize(iterate: true)
        layerWeight.grad.copy(from: cost)
        sn.accumulateGradient()
        let once = sn.weight.grad.values
        layerWeight.grad.copy(from: cost)
        sn.accumulateGradient()
        expectClose(sn.weight.grad.values, once.map { 2 * $0 }, atol: 1e-6, rtol: 1e-6, "twice")
    }
}
