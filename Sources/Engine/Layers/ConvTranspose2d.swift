/// Transposed 2-D convolution, NCHW. Weight (Cin, Cout, KH, KW) and bias (Cout) as in PyTorch.
/// Output size (H - 1) * stride - 2 * padding + K.
///
/// It is the adjoint of a convolution whose input is this layer's output, so it reuses the
/// same im2col geometry with the roles swapped: forward is a GEMM then col2im, backward is
/// im2col then GEMMs.
public final class ConvTranspose2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Int, stride: Int, padding: Int

    private var geometry: ConvGeometry?
    private var inputChannelMajor: Tensor?  // x as (Cin, B*H*W), kept for dW
    private var cols: Tensor?               // (Cout*K*K, B*H*W)
    private var output: Tensor?
    private var inputGradChannelMajor: Tensor?
    private var inputGrad: Tensor?
    private var inputShape: [Int] = []

    public init(_ name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter("\(name).weight", shape: [inChannels, outChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter("\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func outputSize(_ inputSize: Int) -> Int { (inputSize - 1) * stride - 2 * padding + kernelSize }

    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "ConvTranspose2d expects (B, \(inChannels), H, W), got \(x.shape)")
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        let g = ConvGeometry(batch: batch, channels: outChannels,
                             height: outputSize(height), width: outputSize(width),
                             kernelHeight: kernelSize, kernelWidth: kernelSize,
                             stride: stride, padding: padding,
                             gridHeight: height, gridWidth: width)
        geometry = g
        inputShape = x.shape
        let columns = g.columnCount
        let xcm = Tensor.reuse(inputChannelMajor, shape: [inChannels, columns]); inputChannelMajor = xcm
        let cols = Tensor.reuse(self.cols, shape: [g.patchSize, columns]); self.cols = cols
        let y = Tensor.reuse(output, shape: [batch, outChannels, g.height, g.width]); output = y

        swapLeadingAxes(xcm.data, x.data, a: batch, b: inChannels, inner: height * width)
        // cols (Cout*K*K, B*H*W) = W^T . xcm, W stored (Cin, Cout*K*K): transpose A.
        BLAS.gemm(transA: true, m: g.patchSize, n: columns, k: inChannels,
                  a: weight.value.data, lda: g.patchSize, b: xcm.data, ldb: columns,
                  c: cols.data, ldc: columns)
        col2im(y.data, cols.data, g)
        if let bias {
            let area = g.height * g.width
            for b in 0..<batch {
                for o in 0..<outChannels {
                    let plane = y.data + (b * outChannels + o) * area
                    let value = bias.value[o]
                    for i in 0..<area { plane[i] += value }
                }
            }
        }
        return y
    }

    /// dy is (B, Cout, OH, OW). Returns dx (B, Cin, H, W) when `inputGradient`, else nil.
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let g = geometry, let cols, let xcm = inputChannelMajor else {
            preconditionFailure("ConvTranspose2d.backward before forward")
        }
        let columns = g.columnCount
        im2col(cols.data, dy.data, g)  // dcols (Cout*K*K, B*H*W)
        if parameterGradients {
            // dW (Cin, Cout*K*K) += xcm (Cin, B*H*W) . dcols^T
            BLAS.gemm(transB: true, m: inChannels, n: g.patchSize, k: columns,
                      a: xcm.data, lda: columns, b: cols.data, ldb: columns,
                      beta: 1, c: weight.grad.data, ldc: g.patchSize)
            if let bias {
                let area = g.height * g.width
                for b in 0..<g.batch {
                    for o in 0..<outChannels {
                        bias.grad[o] += sum(dy.data + (b * outChannels + o) * area, area)
                    }
                }
            }
        }
        guard inputGradient else { return nil }
        let dxcm = Tensor.reuse(inputGradChannelMajor, shape: [inChannels, columns])
        inputGradChannelMajor = dxcm
        // dxcm (Cin, B*H*W) = W (Cin, Cout*K*K) . dcols
        BLAS.gemm(m: inChannels, n: columns, k: g.patchSize,
                  a: weight.value.data, lda: g.patchSize, b: cols.data, ldb: columns,
                  c: dxcm.data, ldc: columns)
        let dx = Tensor.reuse(inputGrad, shape: inputShape); inputGrad = dx
        swapLeadingAxes(dx.data, dxcm.data, a: inChannels, b: g.batch, inner: g.gridHeight * g.gridWidth)
        return dx
    }
}
