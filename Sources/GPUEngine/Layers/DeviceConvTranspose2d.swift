import CUDA
import Engine

/// Transposed 2-D convolution on a device, as `Engine/Layers/ConvTranspose2d.swift` (weight
/// (Cin, Cout, K, K)): the adjoint of a convolution whose input is this layer's output, the
/// same column geometry with the roles swapped (image = output, grid = input).
///
/// Forward: the input to channel-major (Cin, B*H*W) unless it is already, one GEMM W^T . xcm
/// into the columns (Cout*K*K, B*H*W), then col2im (a gather: deterministic) with the bias,
/// into maps channel-major when `outputChannelMajor`. Backward: im2col of dy (either layout);
/// dW from the kept xcm in one GEMM that sums over the batch; dx through one GEMM into
/// channel-major, which is dx when x was channel-major, else one pass to NCHW. (A GEMM per
/// image, batched, ran a third as fast on an H200: an image's product is too small to fill
/// the GPU.)
public final class DeviceConvTranspose2d {
    public let layer: ConvTranspose2d
    let parameters: DeviceWeights
    var weight: DeviceTensor { parameters.weight }
    var weightGradient: DeviceTensor { parameters.weightGradient }
    var bias: DeviceTensor? { parameters.bias }
    var biasGradient: DeviceTensor? { parameters.biasGradient }
    private var input: DeviceTensor?
    private var output: DeviceTensor?, cols: DeviceTensor?, channelMajor: DeviceTensor?, inputGradient: DeviceTensor?
    private var gradientChannelMajor: DeviceTensor?, ownChannelMajor: DeviceTensor?
    /// Partial sums of the bias gradient (see `addChannelBiasGradient`).
    private var biasScratch: DeviceTensor?

    /// Whether `forward` returns its maps channel-major (the next layers take them so).
    public var outputChannelMajor = false
    /// Whether the next layer is a BatchNorm, whose normalising cancels the bias: its true
    /// gradient is 0 (the CPU's is rounding noise), so none is summed and Adam leaves it where
    /// it is. The bias is still added (col2im adds it for free), so that the statistics
    /// BatchNorm computes, and sampling's standing ones, are the model's.
    public var biasCancelledByBatchNorm = false

    public init(_ layer: ConvTranspose2d, arena: ParameterArena) {
        self.layer = layer
        parameters = DeviceWeights(weight: layer.weight, bias: layer.bias, arena: arena)
    }

    var device: any KernelDevice { parameters.device }

    func outputSize(_ inputSize: Int) -> Int { (inputSize - 1) * layer.stride - 2 * layer.padding + layer.kernelSize }

    /// The geometry with the output as the image and the input as the grid.
    func geometry(_ x: DeviceTensor) -> ConvGeometry {
        ConvGeometry(batch: x.shape[0], channels: layer.outChannels, height: outputSize(x.shape[2]), width: outputSize(x.shape[3]),
                     kernelHeight: layer.kernelSize, kernelWidth: layer.kernelSize, stride: layer.stride, padding: layer.padding,
                     gridHeight: x.shape[2], gridWidth: x.shape[3])
    }

    /// x (B, Cin, H, W) -> y (B, Cout, OH, OW).
    public func forward(_ x: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        precondition(x.shape.count == 4 && x.shape[1] == layer.inChannels,
                     "ConvTranspose2d expects (B, \(layer.inChannels), H, W), got \(x.shape)")
        let g = geometry(x), inputs = layer.inChannels
        input = x
        let cols = try DeviceTensor.reuse(self.cols, shape: [g.patchSize, g.columnCount], on: device)
        self.cols = cols
        let y = try DeviceTensor.reuse(output, shape: [g.batch, layer.outChannels, g.height, g.width], on: device,
                                       channelMajor: outputChannelMajor)
        output = y
        // xcm (Cin, B*H*W), kept for dW (x itself when channel-major: the layer before keeps
        // its output until the next forward pass); cols (Cout*K*K, B*H*W) = W^T (Cout*K*K, Cin) . xcm
        let xcm = try x.channelMajorMatrix(scratch: &ownChannelMajor)
        channelMajor = xcm
        try device.multiply(MatrixProduct(transA: true, m: g.patchSize, n: g.columnCount, k: inputs, a: weight.address,
                                          lda: g.patchSize, b: xcm.address, ldb: g.columnCount, c: cols.address, ldc: g.columnCount))
        try device.col2im(cols, into: y, g, bias: bias)
        return y
    }

    /// dy (B, Cout, OH, OW) -> the parameter gradients (added, when `parameterGradients`) and
    /// dx (B, Cin, H, W) when `inputGradient`.
    @discardableResult
    public func backward(_ dy: DeviceTensor, inputGradient wantInput: Bool = true,
                         parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        guard let x = input, let cols, let xcm = channelMajor else { preconditionFailure("ConvTranspose2d.backward before forward") }
        let g = geometry(x), inputs = layer.inChannels
        try device.im2col(dy, into: cols, g)
        if parameterGradients {
            // dW (Cin, Cout*K*K) += xcm (Cin, B*H*W) . dcols^T
            try device.multiply(MatrixProduct(transB: true, m: inputs, n: g.patchSize, k: g.columnCount, a: xcm.address,
                                              lda: g.columnCount, b: cols.address, ldb: g.columnCount, beta: 1,
                                              c: weightGradient.address, ldc: g.patchSize))
            if let biasGradient, !biasCancelledByBatchNorm {
                let (n, hw) = dy.channelRuns
                try device.addChannelBiasGradient(dy, into: biasGradient, batch: n, channels: layer.outChannels, spatial: hw,
                                                  scratch: &biasScratch)
            }
        }
        guard wantInput else { return nil }
        // dxcm (Cin, B*H*W) = W (Cin, Cout*K*K) . dcols: dx itself when x was channel-major,
        // else then to (B, Cin, H, W)
        let dxcm = try DeviceTensor.reuse(gradientChannelMajor, shape: [inputs, g.columnCount], on: device)
        gradientChannelMajor = dxcm
        try device.multiply(MatrixProduct(m: inputs, n: g.columnCount, k: g.patchSize, a: weight.address, lda: g.patchSize,
                                          b: cols.address, ldb: g.columnCount, c: dxcm.address, ldc: g.columnCount))
        if x.channelMajor { return DeviceTensor(storage: dxcm.storage, offset: dxcm.offset, shape: x.shape, channelMajor: true) }
        let dx = try DeviceTensor.reuse(inputGradient, shape: x.shape, on: device)
        inputGradient = dx
        try device.fromChannelMajor(dxcm, into: dx, bias: nil, batch: g.batch, channels: inputs, inner: g.gridArea)
        return dx
    }
}
