/// Concatenates (B, a) and (B, b) into (B, a + b) along the feature axis.
public final class ConcatFeatures {
    private var output: Tensor?
    private var leftGrad: Tensor?, rightGrad: Tensor?

    public init() {}

    public func forward(_ left: Tensor, _ right: Tensor) -> Tensor {
        precondition(left.rank == 2 && right.rank == 2 && left.shape[0] == right.shape[0],
                     "ConcatFeatures needs (B, a) and (B, b), got \(left.shape) and \(right.shape)")
        let batch = left.shape[0], a = left.shape[1], b = right.shape[1]
        let y = Tensor.reuse(output, shape: [batch, a + b]); output = y
        for row in 0..<batch {
            (y.data + row * (a + b)).update(from: left.data + row * a, count: a)
            (y.data + row * (a + b) + a).update(from: right.data + row * b, count: b)
        }
        return y
    }

    /// Splits dy (B, a + b) into the two inputs' gradients.
    public func backward(_ dy: Tensor, leftFeatures a: Int) -> (left: Tensor, right: Tensor) {
        let batch = dy.shape[0], b = dy.shape[1] - a
        let dl = Tensor.reuse(leftGrad, shape: [batch, a]); leftGrad = dl
        let dr = Tensor.reuse(rightGrad, shape: [batch, b]); rightGrad = dr
        for row in 0..<batch {
            dl.data.advanced(by: row * a).update(from: dy.data + row * (a + b), count: a)
            dr.data.advanced(by: row * b).update(from: dy.data + row * (a + b) + a, count: b)
        }
        return (dl, dr)
    }
}
