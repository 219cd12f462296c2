import CUDA
import Engine

extension ConvGeometry {
    /// The `Geometry` struct of `convolution.cu`, by value, for an image laid out as `image`.
    func kernelArgument(image: DeviceTensor) -> KernelArgument {
        .int32s([batch, channels, height, width, kernelHeight, kernelWidth, stride, padding, gridHeight, gridWidth,
                 image.channelMajor ? 1 : 0].map { Int32($0) })
    }
    var gridArea: Int { gridHeight * gridWidth }
    var imageCount: Int { batch * channels * height * width }
}

extension DeviceTensor {
    /// Maps (B, C, H, W) as the matrix (C, B*H*W) a convolution's product takes: these very
    /// maps when channel-major, else a swapped copy in `scratch` (the caller's, kept between
    /// steps so that a captured step allocates nothing).
    func channelMajorMatrix(scratch: inout DeviceTensor?) throws(CUDAError) -> DeviceTensor {
        let (batch, channels, area) = (shape[0], shape[1], shape[2] * shape[3])
        if channelMajor { return DeviceTensor(storage: storage, offset: offset, shape: [channels, batch * area]) }
        let matrix = try DeviceTensor.reuse(scratch, shape: [channels, batch * area], on: device)
        scratch = matrix
        try device.swapLeadingAxes(self, into: matrix, a: batch, b: channels, inner: area)
        return matrix
    }
}

/// Shared by the two convolutions: column matrices, the layout swap, the bias.
extension KernelDevice {
    func im2col(_ image: DeviceTensor, into cols: DeviceTensor, _ g: ConvGeometry) throws(CUDAError) {
        precondition(g.patchSize * g.columnCount < 1 << 31 && g.imageCount < 1 << 31, "im2col indexes in 32 bits: a smaller batch")
        // One thread per (channel, grid cell): all of the cell's taps.
        try launchElementwise("im2col", count: g.channels * g.columnCount, [image.argument, cols.argument, g.kernelArgument(image: image)])
    }

    /// image = the columns gathered back (+ bias per image channel, when given), in the
    /// image's layout.
    func col2im(_ cols: DeviceTensor, into image: DeviceTensor, _ g: ConvGeometry, bias: DeviceTensor? = nil) throws(CUDAError) {
        precondition(g.patchSize * g.columnCount < 1 << 31 && g.imageCount < 1 << 31, "col2im indexes in 32 bits: a smaller batch")
        try launchElementwise("col2im", count: g.imageCount, [cols.argument, image.argument, g.kernelArgument(image: image),
                                                               bias.map { $0.argument } ?? .address(0)])
    }

    /// destination (B, A, S) = source (A, B, S).
    func swapLeadingAxes(_ source: DeviceTensor, into destination: DeviceTensor, a: Int, b: Int, inner: Int) throws(CUDAError) {
        precondition(a * b * inner < 1 << 31, "swap_leading_axes indexes in 32 bits: a smaller batch")
        try launchElementwise("swap_leading_axes", count: a * b * inner, [source.argument, destination.argument, .int64(a), .int64(b), .int64(inner)])
    }

    /// y (B, C, S) = ycm (C, B, S) + bias per channel (nil: none), in one pass.
    func fromChannelMajor(_ ycm: DeviceTensor, into y: DeviceTensor, bias: DeviceTensor?, batch: Int, channels: Int,
                          inner: Int) throws(CUDAError) {
        precondition(y.count < 1 << 31, "from_channel_major indexes in 32 bits: a smaller batch")
        try launchElementwise("from_channel_major", count: y.count, [ycm.argument, y.argument, bias.map { $0.argument } ?? .address(0),
                                                                     .int32(Int32(batch)), .int32(Int32(channels)), .int32(Int32(inner))])
    }

    func addChannelBias(_ y: DeviceTensor, _ bias: DeviceTensor, batch: Int, channels: Int, spatial: Int) throws(CUDAError) {
        precondition(batch * channels * spatial < 1 << 31, "add_channel_bias indexes in 32 bits: a smaller batch")
        try launchElementwise("add_channel_bias", count: y.count, [y.argument, bias.argument, .int64(batch), .int32(Int32(channels)), .int64(spatial)])
    }

    /// db += dy summed per channel over the batch and the spatial positions. A large channel is
    /// split over several blocks whose partial sums go to `scratch` (kept by the caller, so
    /// that a captured step allocates nothing) and are then added in a fixed order.
    func addChannelBiasGradient(_ dy: DeviceTensor, into db: DeviceTensor, batch: Int, channels: Int, spatial: Int,
                                scratch: inout DeviceTensor?) throws(CUDAError) {
        precondition(batch * channels * spatial < 1 << 31, "channel_bias_gradient indexes in 32 bits: a smaller batch")
        let slices = ChannelReduction.slices(channels: channels, count: batch * spatial)
        var partials: KernelArgument = .address(0)
        if slices > 1 {
            let buffer = try DeviceTensor.reuse(scratch, shape: [channels * slices], on: self)
            scratch = buffer
            partials = buffer.argument
        }
        try launch("channel_bias_gradient", grid: channels * slices, block: ConvolutionKernels.reductionBlock,
                   [dy.argument, db.argument, partials, .int64(batch), .int32(Int32(channels)), .int64(spatial), .int32(Int32(slices))])
        if slices > 1 {
            try launch("sum_slices", grid: (channels + 255) / 256, block: 256,
                       [partials, db.argument, .int32(Int32(channels)), .int32(Int32(slices))])
        }
    }
}
