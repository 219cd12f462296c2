import CUDA
import Engine

/// 2-D convolution on a device, as `Engine/Layers/Conv2d.swift` (weight (Cout, Cin, K, K)).
///
/// Forward: im2col of the whole batch into cols (Cin*K*K, B*OH*OW), one GEMM into the
/// channel-major (Cout, B*OH*OW), then one pass to y (B, Cout, OH, OW) that adds the bias; or,
/// with `outputChannelMajor`, that product is the output (the bias added in place, or left to
/// the next layer: `biasUse`), for layers that take channel-major maps (`DeviceTensor.channelMajor`).
/// The input may be laid out either way.
/// (A GEMM per image straight into y, batched, saves that pass but ran a third as fast on an
/// H200: an image's product is too small to fill the GPU.) The columns are kept for the
/// backward pass (recomputing them, as the CPU does to stay in cache, would cost a launch and
/// the same memory traffic). Backward: dy to channel-major
/// (Cout, B*OH*OW) once (unless it is already), then one GEMM each for dW (summing over the batch)
/// and the columns' gradient, and col2im into dx laid out as x.
public final class DeviceConv2d {
    public let layer: Conv2d
    let parameters: DeviceWeights
    var weight: DeviceTensor { parameters.weight }
    var weightGradient: DeviceTensor { parameters.weightGradient }
    var bias: DeviceTensor? { parameters.bias }
    var biasGradient: DeviceTensor? { parameters.biasGradient }
    private var input: DeviceTensor?
    private var output: DeviceTensor?, cols: DeviceTensor?, channelMajor: DeviceTensor?, inputGradient: DeviceTensor?
    /// Partial sums of the bias gradient (see `addChannelBiasGradient`).
    private var biasScratch: DeviceTensor?

    /// Whether `forward` returns its maps channel-major (the next layers take them so).
    public var outputChannelMajor = false

    /// Where the bias goes, with `outputChannelMajor` (an image-by-image output adds it in its
    /// layout pass).
    public enum BiasUse: Sendable {
        /// Added to the output here; its gradient summed.
        case added
        /// Left out of the output for the next layer to add in its own pass (a LeakyReLU,
        /// `deferredBias`); its gradient summed here.
        case addedByNextLayer
        /// Left out, the next layer being a BatchNorm, whose normalising cancels it: only the
        /// running mean takes it (`deferredBias`, the model's statistic of x + bias). Its true
        /// gradient is 0 (the CPU's is rounding noise), so none is summed and Adam leaves it
        /// where it is.
        case cancelledByBatchNorm
    }
    public var biasUse = BiasUse.added
    /// The bias the output left out for the next layer (`biasUse`), or nil.
    public var deferredBias: DeviceTensor? { outputChannelMajor && biasUse != .added ? bias : nil }

    public init(_ layer: Conv2d, arena: some ParameterSource) {
        self.layer = layer
        parameters = DeviceWeights(weight: layer.weight, bias: layer.bias, arena: arena)
    }

    var device: any KernelDevice { parameters.device }

    func geometry(_ x: DeviceTensor) -> ConvGeometry {
        ConvGeometry(batch: x.shape[0], channels: layer.inChannels, height: x.shape[2], width: x.shape[3],
                     kernelHeight: layer.kernelSize, kernelWidth: layer.kernelSize, stride: layer.stride, padding: layer.padding,
                     gridHeight: layer.outputSize(x.shape[2]), gridWidth: layer.outputSize(x.shape[3]))
    }

    /// x (B, Cin, H, W) -> y (B, Cout, OH, OW).
    public func forward(_ x: DeviceTensor) throws(CUDAError) -> DeviceTensor {
        precondition(x.shape.count == 4 && x.shape[1] == layer.inChannels, "Conv2d expects (B, \(layer.inChannels), H, W), got \(x.shape)")
        let g = geometry(x), outputs = layer.outChannels
        input = x
        let cols = try DeviceTensor.reuse(self.cols, shape: [g.patchSize, g.columnCount], on: device)
        self.cols = cols
        let y = try DeviceTensor.reuse(output, shape: [g.batch, outputs, g.gridHeight, g.gridWidth], on: device,
                                       channelMajor: outputChannelMajor)
        output = y
        try device.im2col(x, into: cols, g)
        if outputChannelMajor {
            // y (Cout, B*OH*OW in memory) = W . cols, + bias per channel: each channel one row.
            try device.multiply(MatrixProduct(m: outputs, n: g.columnCount, k: g.patchSize, a: weight.address, lda: g.patchSize,
                                              b: cols.address, ldb: g.columnCount, c: y.address, ldc: g.columnCount))
            if let bias, biasUse == .added { try device.addChannelBias(y, bias, batch: 1, channels: outputs, spatial: g.columnCount) }
            return y
        }
        // ycm (Cout, B*OH*OW) = W (Cout, Cin*K*K) . cols; the backward pass reuses its memory.
        let ycm = try DeviceTensor.reuse(channelMajor, shape: [outputs, g.columnCount], on: device)
        channelMajor = ycm
        try device.multiply(MatrixProduct(m: outputs, n: g.columnCount, k: g.patchSize, a: weight.address, lda: g.patchSize,
                                          b: cols.address, ldb: g.columnCount, c: ycm.address, ldc: g.columnCount))
        try device.fromChannelMajor(ycm, into: y, bias: bias, batch: g.batch, channels: outputs, inner: g.gridArea)
        return y
    }

    /// dy (B, Cout, OH, OW) -> the parameter gradients (added, when `parameterGradients`) and
    /// dx (B, Cin, H, W) when `inputGradient`.
    @discardableResult
    public func backward(_ dy: DeviceTensor, inputGradient wantInput: Bool = true,
                         parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        guard let x = input, let cols else { preconditionFailure("Conv2d.backward before forward") }
        let g = geometry(x), outputs = layer.outChannels
        let dycm = try dy.channelMajorMatrix(scratch: &channelMajor)
        if parameterGradients {
            // dW (Cout, Cin*K*K) += dycm (Cout, B*OH*OW) . cols^T
            try device.multiply(MatrixProduct(transB: true, m: outputs, n: g.patchSize, k: g.columnCount, a: dycm.address,
                                              lda: g.columnCount, b: cols.address, ldb: g.columnCount, beta: 1,
                                              c: weightGradient.address, ldc: g.patchSize))
            if let biasGradient, biasUse != .cancelledByBatchNorm {
                // From the channel-major copy: each channel's values in one contiguous row
                // (coalesced reads), summed in the same order as over dy.
                try device.addChannelBiasGradient(dycm, into: biasGradient, batch: 1, channels: outputs, spatial: g.columnCount,
                                                  scratch: &biasScratch)
            }
        }
        guard wantInput else { return nil }
        // dcols (Cin*K*K, B*OH*OW) = W^T . dycm, into the kept columns (the weight gradient has read them).
        try device.multiply(MatrixProduct(transA: true, m: g.patchSize, n: g.columnCount, k: outputs, a: weight.address,
                                          lda: g.patchSize, b: dycm.address, ldb: g.columnCount, c: cols.address, ldc: g.columnCount))
        let dx = try DeviceTensor.reuse(inputGradient, shape: x.shape, on: device, channelMajor: x.channelMajor)
        inputGradient = dx
        try device.col2im(cols, into: dx, g)
        return dx
    }
}
