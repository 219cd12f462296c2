/// 2-D convolution, NCHW. Weight (Cout, Cin, KH, KW) and bias (Cout) as in PyTorch.
///
/// Forward: im2col of the whole batch into cols (Cin*KH*KW, B*OH*OW), one GEMM
/// W (Cout, Cin*KH*KW) . cols -> (Cout, B*OH*OW), then the bias and a swap of the two leading
/// axes back to (B, Cout, OH, OW). The backward reuses the saved cols.
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Int, stride: Int, padding: Int

    private var geometry: ConvGeometry?
    private var cols: Tensor?          // (Cin*K*K, B*OH*OW)
    private var channelMajor: Tensor?  // (Cout, B*OH*OW): output before the axis swap, dy after
    private var output: Tensor?
    private var inputGrad: Tensor?
    private var inputShape: [Int] = []

    public init(_ name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter("\(name).weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter("\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func outputSize(_ inputSize: Int) -> Int { (inputSize + 2 * padding - kernelSize) / stride + 1 }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "Conv2d expects (B, \(inChannels), H, W), got \(x.shape)")
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        let g = ConvGeometry(batch: batch, channels: inChannels, height: height, width: width,
                             kernelHeight: kernelSize, kernelWidth: kernelSize,
                             stride: stride, padding: padding,
                             gridHeight: outputSize(height), gridWidth: outputSize(width))
        precondition(g.gridHeight > 0 && g.gridWidth > 0, "Conv2d: input \(x.shape) is smaller than the kernel")
        geometry = g
        inputShape = x.shape
        let cols = Tensor.reuse(self.cols, shape: [g.patchSize, g.columnCount]); self.cols = cols
        let ycm = Tensor.reuse(channelMajor, shape: [outChannels, g.columnCount]); channelMajor = ycm
        let y = Tensor.reuse(output, shape: [batch, outChannels, g.gridHeight, g.gridWidth]); output = y

        im2col(cols.data, x.data, g)
        let columns = g.columnCount
        if let bias {
            for o in 0..<outChannels { (ycm.data + o * columns).update(repeating: bias.value[o], count: columns) }
        }
        // ycm (Cout, B*OH*OW) = W (Cout, Cin*K*K) . cols (Cin*K*K, B*OH*OW)
        BLAS.gemm(m: outChannels, n: columns, k: g.patchSize,
                  a: weight.value.data, lda: g.patchSize, b: cols.data, ldb: columns,
                  beta: bias == nil ? 0 : 1, c: ycm.data, ldc: columns)
        swapLeadingAxes(y.data, ycm.data, a: outChannels, b: batch, inner: g.gridHeight * g.gridWidth)
        return y
    }

    /// dy is (B, Cout, OH, OW). Returns dx (B, Cin, H, W) when `inputGradient`, else nil.
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let g = geometry, let cols, let dycm = channelMajor else {
            preconditionFailure("Conv2d.backward before forward")
        }
        let columns = g.columnCount
        swapLeadingAxes(dycm.data, dy.data, a: g.batch, b: outChannels, inner: g.gridHeight * g.gridWidth)
        if parameterGradients {
            // dW (Cout, Cin*K*K) += dycm (Cout, B*OH*OW) . cols^T
            BLAS.gemm(transB: true, m: outChannels, n: g.patchSize, k: columns,
                      a: dycm.data, lda: columns, b: cols.data, ldb: columns,
                      beta: 1, c: weight.grad.data, ldc: g.patchSize)
            if let bias {
                for o in 0..<outChannels { bias.grad[o] += sum(dycm.data + o * columns, columns) }
            }
        }
        guard inputGradient else { return nil }
        // dcols (Cin*K*K, B*OH*OW) = W^T . dycm; cols is free to hold it.
        BLAS.gemm(transA: true, m: g.patchSize, n: columns, k: outChannels,
                  a: weight.value.data, lda: g.patchSize, b: dycm.data, ldb: columns,
                  c: cols.data, ldc: columns)
        let dx = Tensor.reuse(inputGrad, shape: inputShape); inputGrad = dx
        col2im(dx.data, cols.data, g)
        return dx
    }
}
