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

/// Checks a layer's backward pass against central differences of L = sum(w * forward()), w fixed
/// random weights (`projectionWeights`, from `seed`): with the layer's gradients zeroed and
/// `forward` run once more, `backward(w)` must return dL/dx for the input `x` and add dL/dp
/// into the `grad` of each of `parameters` (by default all of the layer's). `forward` calls the
/// layer as the test means it (with labels, on one path); each check is labelled by the
/// parameter's name.
public func checkLayerGradients(
    _ layer: some Module, input x: Tensor, parameters: [Parameter]? = nil, seed: UInt64,
    eps: Float = 1e-2, maxElements: Int = 200, sourceLocation: SourceLocation = #_sourceLocation,
    forward: () -> Tensor, backward: (Tensor) -> Tensor?
) {
    let w = projectionWeights(like: forward(), seed: seed)
    layer.zeroGradients()
    _ = forward()
    guard let dx = backward(w) else {
        Issue.record("backward returned no input gradient", sourceLocation: sourceLocation)
        return
    }
    let loss = { weightedSum(forward(), w) }
    checkGradient("input", of: x, analytic: dx, eps: eps, maxElements: maxElements, sourceLocation: sourceLocation, loss: loss)
    for parameter in parameters ?? layer.parameters {
        checkGradient(parameter.name, of: parameter.value, analytic: parameter.grad, eps: eps, maxElements: maxElements,
                      sourceLocation: sourceLocation, loss: loss)
    }
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
