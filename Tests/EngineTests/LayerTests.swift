import Foundation
import Engine
import NumericTestSupport
import Testing

@Suite struct LinearTests {
    @Test func forwardIsAffineMap() {
        let layer = Linear("fc", inFeatures: 3, outFeatures: 2)
        layer.weight.value.copy(from: Tensor(shape: [2, 3], values: [1, 2, 3, -1, 0, 0.5]))
        layer.bias!.value.copy(from: Tensor(shape: [2], values: [0.25, -1]))
        let y = layer.forward(Tensor(shape: [1, 3], values: [1, -1, 2]))
        // [1*1 - 2 + 6 + 0.25, -1 + 0 + 1 - 1]
        expectClose(y.values, [5.25, -1])
    }

    @Test func gradientsMatchFiniteDifferences() {
        let layer = Linear("fc", inFeatures: 5, outFeatures: 4)
        layer.weight.value.copy(from: randomTensor([4, 5], seed: 1))
        layer.bias!.value.copy(from: randomTensor([4], seed: 2))
        let x = randomTensor([3, 5], seed: 3)
        checkLayerGradients(layer, input: x, seed: 4) { layer.forward(x) } backward: { layer.backward($0) }
    }

    @Test func backwardAccumulatesParameterGradients() {
        let layer = Linear("fc", inFeatures: 2, outFeatures: 2)
        layer.weight.value.copy(from: randomTensor([2, 2], seed: 5))
        let x = randomTensor([2, 2], seed: 6)
        let w = projectionWeights(like: layer.forward(x), seed: 7)
        layer.backward(w)
        let once = layer.weight.grad.values
        _ = layer.forward(x)
        layer.backward(w)
        expectClose(layer.weight.grad.values, once.map { 2 * $0 }, "twice the gradient after two backwards")
    }
}

@Suite struct BatchNormTests {
    func makeLayer() -> BatchNorm2d {
        let layer = BatchNorm2d("bn", channels: 3)
        layer.gamma.value.copy(from: randomTensor([3], seed: 31, range: 0.5...1.5))
        layer.beta.value.copy(from: randomTensor([3], seed: 32))
        return layer
    }

    @Test func trainingForwardNormalisesEachChannel() {
        let layer = makeLayer()
        let x = randomTensor([4, 3, 2, 3], seed: 33, range: 1...4)
        let y = layer.forward(x)
        for c in 0..<3 {
            var values: [Double] = []
            for b in 0..<4 { for i in 0..<6 { values.append(Double(y[(b * 3 + c) * 6 + i])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            #expect(abs(mean - Double(layer.beta.value[c])) < 1e-5)
            // Variance gamma^2 * var / (var + eps): within 1e-3 of gamma^2 for these inputs.
            #expect(abs(variance - Double(layer.gamma.value[c] * layer.gamma.value[c])) < 1e-3)
        }
    }

    @Test func runningStatisticsFollowPyTorch() {
        let layer = makeLayer()
        let x = randomTensor([2, 3, 2, 2], seed: 34)
        _ = layer.forward(x)
        for c in 0..<3 {
            var values: [Double] = []
            for b in 0..<2 { for i in 0..<4 { values.append(Double(x[(b * 3 + c) * 4 + i])) } }
            let mean = values.reduce(0, +) / 8
            let unbiased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 7
            #expect(abs(Double(layer.runningMean[c]) - 0.1 * mean) < 1e-6)
            #expect(abs(Double(layer.runningVar[c]) - (0.9 + 0.1 * unbiased)) < 1e-6)
        }
    }

    @Test(arguments: [true, false])
    func gradientsMatchFiniteDifferences(training: Bool) {
        let layer = makeLayer()
        layer.setTraining(training)
        if !training {
            layer.runningMean.copy(from: randomTensor([3], seed: 35))
            layer.runningVar.copy(from: randomTensor([3], seed: 36, range: 0.5...2))
        }
        let x = randomTensor([3, 3, 2, 3], seed: 37, range: -2...2)
        // Running statistics change on every training forward but do not affect its output.
        checkLayerGradients(layer, input: x, seed: 38) { layer.forward(x) } backward: { layer.backward($0) }
    }

    @Test func inferenceUsesRunningStatistics() {
        let layer = makeLayer()
        layer.setTraining(false)
        layer.runningMean.fill(1)
        layer.runningVar.fill(4)
        let y = layer.forward(Tensor(shape: [1, 3, 1, 1], values: [3, 3, 3]))
        for c in 0..<3 {
            let expected = (3 - 1) / (4 + layer.eps).squareRoot() * layer.gamma.value[c] + layer.beta.value[c]
            #expect(abs(y[c] - expected) < 1e-6)
        }
    }
}

@Suite struct EmbeddingTests {
    @Test func forwardGathersRowsAndBackwardScattersWithRepeats() {
        let layer = Embedding("embed", count: 4, dimension: 3)
        layer.weight.value.copy(from: randomTensor([4, 3], seed: 41))
        let labels: [Int32] = [2, 0, 2]
        let y = layer.forward(labels)
        for (row, label) in labels.enumerated() {
            for d in 0..<3 { #expect(y[row * 3 + d] == layer.weight.value[Int(label) * 3 + d]) }
        }
        let w = projectionWeights(like: y, seed: 42)
        layer.backward(w)
        checkGradient("dE", of: layer.weight.value, analytic: layer.weight.grad) {
            weightedSum(layer.forward(labels), w)
        }
        // Row 1 and row 3 were never read.
        for d in 0..<3 { #expect(layer.weight.grad[3 + d] == 0 && layer.weight.grad[9 + d] == 0) }
    }
}

@Suite struct ActivationTests {
    static let kinds: [Activation.Kind] = [.relu, .leakyReLU(slope: 0.2), .tanh, .sigmoid]

    @Test(arguments: kinds)
    func gradientsMatchFiniteDifferences(_ kind: Activation.Kind) {
        let layer = Activation(kind)
        // Keep inputs away from the kink at 0 (|x| >= 0.1 > eps), as ggml's grad_expect does.
        let x = randomTensor([2, 3, 4], seed: 51, range: 0.1...2)
        var signs = RandomGenerator(seed: 52)
        for i in 0..<x.count where signs.uniform() < 0.5 { x[i] = -x[i] }
        let w = projectionWeights(like: layer.forward(x), seed: 53)
        let dx = layer.backward(w)
        checkGradient("\(kind)", of: x, analytic: dx) { weightedSum(layer.forward(x), w) }
    }

    @Test func valuesAtKnownPoints() {
        let x = Tensor(shape: [5], values: [-2, -0.5, 0, 0.5, 30])
        expectClose(Activation(.relu).forward(x).values, [0, 0, 0, 0.5, 30])
        expectClose(Activation(.leakyReLU(slope: 0.2)).forward(x).values, [-0.4, -0.1, 0, 0.5, 30])
        expectClose(Activation(.tanh).forward(x).values, [-0.9640276, -0.46211716, 0, 0.46211716, 1])
        expectClose(Activation(.sigmoid).forward(x).values, [0.11920292, 0.37754067, 0.5, 0.62245935, 1])
        // Large negative inputs must not overflow exp.
        #expect(sigmoid(-200) == 0 && sigmoid(-200).isFinite)
    }

    /// The vectorised tanh (16 values at a time; the rest through libm) against Double's tanh
    /// on a fine grid over [-12, 12] and on tiny values: within a few Float ulp, odd, and
    /// exactly +-1 beyond the clamp.
    @Test func tanhIsWithinAFewUlpOfDoubles() {
        let grid = (-12_000...12_000).map { Float($0) / 1000 } + (1...40).map { Float.ulpOfOne * Float($0) * 1e-3 }
        let y = Activation(.tanh).forward(Tensor(shape: [grid.count], values: grid)).values
        var worstAbsolute: Float = 0, worstRelative: Float = 0
        for (x, value) in zip(grid, y) {
            let exact = Float(Foundation.tanh(Double(x)))
            worstAbsolute = max(worstAbsolute, abs(value - exact))
            if abs(x) < 0.5, x != 0 { worstRelative = max(worstRelative, abs(value - exact) / abs(exact)) }
        }
        #expect(worstAbsolute < 3e-7 && worstRelative < 1e-6, "absolute \(worstAbsolute), relative \(worstRelative)")
        let sixteen = SIMD16<Float>((0..<16).map { Float($0) * 0.7 - 5 })
        #expect(rationalTanh(-sixteen) == -rationalTanh(sixteen))
        #expect(rationalTanh(SIMD16(repeating: 9.5)) == SIMD16(repeating: 1) && rationalTanh(SIMD16(repeating: -40)) == SIMD16(repeating: -1))
    }
}

@Suite struct ShapeOpTests {
    @Test func concatenationAndSplit() {
        let concat = ConcatFeatures()
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4]), b = Tensor(shape: [2, 1], values: [5, 6])
        let y = concat.forward(a, b)
        #expect(y.shape == [2, 3])
        expectClose(y.values, [1, 2, 5, 3, 4, 6])
        let (da, db) = concat.backward(Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), leftFeatures: 2)
        expectClose(da.values, [1, 2, 4, 5])
        expectClose(db.values, [3, 6])
    }

    @Test func reshapeSharesStorage() {
        let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let view = t.reshaped([3, 2])
        view[5] = 60
        #expect(t[5] == 60 && view.shape == [3, 2])
    }

    /// Small blocks, ones past malloc's mmap threshold (which sat 16 bytes past a page), and
    /// the sizes in between: every tensor's first element starts a cache line, and is zero.
    @Test func storageStartsACacheLine() {
        let tensors = [1, 3, 17, 1_000, 40_000, (1 << 18) + 3, 3 << 20].map { Tensor(zeros: [$0]) }
        for t in tensors {
            #expect(Int(bitPattern: t.data) % Tensor.alignment == 0, "\(t.count) floats at \(t.data)")
            #expect(t[0] == 0 && t[t.count - 1] == 0)
        }
        #expect(Tensor.alignment == 64)
    }
}

@Suite struct ProjectionHeadTests {
    @Test func forwardAndGradients() {
        let head = ProjectionHead("head", features: 6, classes: 3)
        head.linear.weight.value.copy(from: randomTensor([1, 6], seed: 61))
        head.linear.bias!.value.fill(0.3)
        head.embedding.weight.value.copy(from: randomTensor([3, 6], seed: 62))
        let phi = randomTensor([4, 6], seed: 63)
        let labels: [Int32] = [1, 2, 1, 0]
        let y = head.forward(phi, labels: labels)
        for b in 0..<4 {
            var expected: Double = 0.3
            for f in 0..<6 {
                expected += Double(phi[b * 6 + f]) * Double(head.linear.weight.value[f] + head.embedding.weight.value[Int(labels[b]) * 6 + f])
            }
            #expect(abs(Double(y[b]) - expected) < 1e-5)
        }
        #expect(head.parameters.count == 3, "the linear part's weight and bias and the class embedding")
        checkLayerGradients(head, input: phi, seed: 64) { head.forward(phi, labels: labels) } backward: { head.backward($0) }
    }
}

@Suite struct ClassConditionalAffineTests {
    @Test func forwardScalesAndShiftsByClassAndGradientsMatchFiniteDifferences() {
        let layer = ClassConditionalAffine("cbn", classes: 3, channels: 2)
        #expect(layer.scale.value.values.allSatisfy { $0 == 1 } && layer.shift.value.values.allSatisfy { $0 == 0 })
        layer.scale.value.copy(from: randomTensor([3, 2], seed: 71, range: 0.5...1.5))
        layer.shift.value.copy(from: randomTensor([3, 2], seed: 72))
        let x = randomTensor([4, 2, 3, 3], seed: 73)
        let labels: [Int32] = [2, 0, 2, 0]   // repeated classes gather two samples' gradients; class 1 is unused
        let y = layer.forward(x, labels: labels)
        for b in 0..<4 {
            for c in 0..<2 {
                let k = Int(labels[b]) * 2 + c
                for i in 0..<9 {
                    let index = (b * 2 + c) * 9 + i
                    #expect(abs(y[index] - (x[index] * layer.scale.value[k] + layer.shift.value[k])) < 1e-6)
                }
            }
        }
        checkLayerGradients(layer, input: x, seed: 74) { layer.forward(x, labels: labels) } backward: { layer.backward($0) }
        #expect(layer.scale.grad[2] == 0 && layer.shift.grad[3] == 0, "an unused class got a gradient")
    }
}
