import Engine
import Testing

// Shared by the numeric test targets: finite-difference gradient checks and tolerances.

/// Fixed random weights w for the test loss L = sum(w * y): dL/dy = w, so a layer's backward
/// called with w must return the gradient of L, which central differences estimate.
public func projectionWeights(like tensor: Tensor, seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let w = Tensor(zeros: tensor.shape)
    rng.fillUniform(w, -1, 1)
    return w
}

/// sum(w * y) in Double.
public func weightedSum(_ y: Tensor, _ w: Tensor) -> Double {
    precondition(y.count == w.count)
    var total: Double = 0
    for i in 0..<y.count { total += Double(y[i]) * Double(w[i]) }
    return total
}

public func randomTensor(_ shape: [Int], seed: UInt64, range: ClosedRange<Float> = -1...1) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let t = Tensor(zeros: shape)
    rng.fillUniform(t, range.lowerBound, range.upperBound)
    return t
}

/// Compares `analytic` with the central difference (L(x + eps) - L(x - eps)) / 2 eps for
/// every element of `tensor` (or `maxElements` evenly spaced ones). The error is normalised by
/// the largest analytic magnitude, as ggml's NMSE-style checks do, so that tiny gradients are
/// not held to a relative tolerance that Float32 cannot meet.
public func checkGradient(
    _ label: String, of tensor: Tensor, analytic: Tensor,
    eps: Float = 1e-2, tolerance: Double = 1e-2, maxElements: Int = 200,
    sourceLocation: SourceLocation = #_sourceLocation,
    loss: () -> Double
) {
    #expect(analytic.shape == tensor.shape, "\(label): gradient shape \(analytic.shape) vs \(tensor.shape)",
            sourceLocation: sourceLocation)
    let stride = Swift.max(1, tensor.count / maxElements)
    var maxDiff: Double = 0, scale: Double = 1e-3, worst = 0
    var index = 0
    while index < tensor.count {
        let saved = tensor[index]
        tensor[index] = saved + eps
        let plus = loss()
        tensor[index] = saved - eps
        let minus = loss()
        tensor[index] = saved
        let numeric = (plus - minus) / (2 * Double(eps))
        let diff = abs(numeric - Double(analytic[index]))
        if diff > maxDiff { maxDiff = diff; worst = index }
        scale = Swift.max(scale, abs(Double(analytic[index])))
        index += stride
    }
    #expect(maxDiff / scale < tolerance,
            "\(label): max |numeric - analytic| = \(maxDiff) at \(worst) (scale \(scale))",
            sourceLocation: sourceLocation)
}

/// Asserts two float sequences agree within atol + rtol * |expected|, reporting the worst.
public func expectClose(_ actual: [Float], _ expected: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(label): counts differ, \(actual.count) vs \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var worst: (index: Int, excess: Float) = (-1, 0)
    for i in actual.indices {
        let excess = abs(actual[i] - expected[i]) - (atol + rtol * abs(expected[i]))
        if excess > worst.excess { worst = (i, excess) }
    }
    if worst.index >= 0 {
        Issue.record("\(label): element \(worst.index) is \(actual[worst.index]), expected \(expected[worst.index])",
                     sourceLocation: sourceLocation)
    }
}
