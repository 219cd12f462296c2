/// y = x W^T + b. x is (B, in), W is (out, in) as in PyTorch, y is (B, out).
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inFeatures: Int, outFeatures: Int

    private var input: Tensor?
    private var output: Tensor?
    private var inputGrad: Tensor?

    public init(_ name: String, inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter("\(name).weight", shape: [outFeatures, inFeatures])
        self.bias = bias ? Parameter("\(name).bias", shape: [outFeatures]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == inFeatures,
                     "Linear expects (B, \(inFeatures)), got \(x.shape)")
        let batch = x.shape[0]
        let y = Tensor.reuse(output, shape: [batch, outFeatures])
        output = y
        input = x
        if let bias {
            for b in 0..<batch { (y.data + b * outFeatures).update(from: bias.value.data, count: outFeatures) }
        }
        // y (B, out) = x (B, in) . W^T, W stored (out, in): transpose B.
        BLAS.gemm(transB: true, m: batch, n: outFeatures, k: inFeatures,
                  a: x.data, lda: inFeatures, b: weight.value.data, ldb: inFeatures,
                  beta: bias == nil ? 0 : 1, c: y.data, ldc: outFeatures)
        return y
    }

    /// dy is (B, out). Returns dx (B, in) when `inputGradient`, else nil.
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let batch = x.shape[0]
        if parameterGradients {
            // dW (out, in) += dy^T (out, B) . x (B, in)
            BLAS.gemm(transA: true, m: outFeatures, n: inFeatures, k: batch,
                      a: dy.data, lda: outFeatures, b: x.data, ldb: inFeatures,
                      beta: 1, c: weight.grad.data, ldc: inFeatures)
            if let bias {
                for b in 0..<batch { axpy(bias.grad.data, 1, dy.data + b * outFeatures, outFeatures) }
            }
        }
        guard inputGradient else { return nil }
        let dx = Tensor.reuse(inputGrad, shape: x.shape)
        inputGrad = dx
        // dx (B, in) = dy (B, out) . W (out, in)
        BLAS.gemm(m: batch, n: inFeatures, k: outFeatures,
                  a: dy.data, lda: outFeatures, b: weight.value.data, ldb: inFeatures,
                  c: dx.data, ldc: inFeatures)
        return dx
    }
}
