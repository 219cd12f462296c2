import CUDA
import Engine

/// BatchNorm in training mode (batch statistics, running averages updated) fused with the
/// activation that follows it and, in the class-conditional generator, the per-class scale and
/// shift between the two, as `Engine/Layers/BatchNormActivation.swift`: one kernel forward and
/// one backward (and one for the class table's gradients) where an eager framework runs three
/// to five each way. A channel too large for one block (see `slices`) is reduced by several,
/// in three kernels each way.
public final class DeviceBatchNorm {
    public enum FusedActivation: Int32, Sendable {
        case none = 0, relu = 1, leakyReLU = 2
    }

    public let layer: BatchNorm2d
    public let activation: FusedActivation
    public let slope: Float
    /// The per-class scale and shift after the normalisation (`ClassConditionalAffine`), if any.
    public let classAffine: ClassConditionalAffine?
    private let classTable: (scale: DeviceTensor, scaleGradient: DeviceTensor, shift: DeviceTensor, shiftGradient: DeviceTensor)?
    private var labels: DeviceLabels?
    let gamma: DeviceTensor, gammaGradient: DeviceTensor
    let beta: DeviceTensor, betaGradient: DeviceTensor
    /// The running statistics (the CPU layer's buffers, uploaded; `downloadBuffers` returns them).
    public let runningMean: DeviceTensor, runningVar: DeviceTensor
    private let mean: DeviceTensor, invStd: DeviceTensor
    private var output: DeviceTensor?, normalized: DeviceTensor?, inputGradient: DeviceTensor?
    /// The split reductions' partial sums and the backward pass's two means per channel.
    private var partials: DeviceTensor?, gradientMeans: DeviceTensor?
    /// Whether a large channel may be reduced by several blocks (`slices`); false keeps one
    /// block per channel, only to measure what the split is worth (`synthd-bench train-step
    /// --one-block-norms`: whether its two extra kernels each way pay at a given batch).
    public var splitsLargeChannels = true

    /// `classAffine`: the class-conditional generator's table for this BatchNorm (its parameters
    /// in `arena` too); forward and sample then take the batch's labels.
    public init(_ layer: BatchNorm2d, classAffine: ClassConditionalAffine? = nil, activation: FusedActivation = .none,
                slope: Float = 0.2, arena: ParameterArena) throws(CUDAError) {
        precondition(classAffine.map { $0.channels == layer.channels } ?? true, "the class table has other channels")
        self.layer = layer
        self.activation = activation
        self.slope = slope
        self.classAffine = classAffine
        classTable = classAffine.map {
            (arena.value($0.scale), arena.gradient($0.scale), arena.value($0.shift), arena.gradient($0.shift))
        }
        gamma = arena.value(layer.gamma)
        gammaGradient = arena.gradient(layer.gamma)
        beta = arena.value(layer.beta)
        betaGradient = arena.gradient(layer.beta)
        let device = arena.device
        runningMean = try DeviceTensor(layer.runningMean, on: device)
        runningVar = try DeviceTensor(layer.runningVar, on: device)
        mean = try DeviceTensor(on: device, shape: [layer.channels])
        invStd = try DeviceTensor(on: device, shape: [layer.channels])
    }

    var device: any KernelDevice { gamma.device }

    /// x (B, C, H, W) -> act(gamma * (x - mean) / std + beta), statistics of this batch (with a
    /// class table, act((gamma * xhat + beta) * scale[label] + shift[label])); y in x's layout
    /// (image by image or channel-major: the kernels see a channel as `channelRuns`).
    /// `inputBias`: a bias per channel the convolution before left out of x
    /// (`DeviceConv2d.biasUse`): normalising cancels it, so it only enters the
    /// running mean, which is the model's statistic of x + bias.
    public func forward(_ x: DeviceTensor, labels: DeviceLabels? = nil, inputBias: DeviceTensor? = nil) throws(CUDAError) -> DeviceTensor {
        precondition(x.shape.count == 4 && x.shape[1] == layer.channels, "BatchNorm2d expects (B, \(layer.channels), H, W), got \(x.shape)")
        precondition(x.count < 1 << 31, "the BatchNorm kernels index in 32 bits: a smaller batch")
        take(labels, batch: x.shape[0])
        let y = try DeviceTensor.reuse(output, shape: x.shape, on: device, channelMajor: x.channelMajor)
        let xhat = try DeviceTensor.reuse(normalized, shape: x.shape, on: device, channelMajor: x.channelMajor)
        (output, normalized) = (y, xhat)
        try normalize(x, into: y, xhat: xhat, momentum: layer.momentum, inputBias: inputBias)
        return y
    }

    /// Blocks per channel for `n` images of `hw` values: one unless a channel is large and
    /// the channels few (`ChannelReduction`).
    public func slices(n: Int, hw: Int) -> Int {
        splitsLargeChannels ? ChannelReduction.slices(channels: layer.channels, count: n * hw,
                                                      splitFrom: ChannelReduction.batchNormSplitFrom) : 1
    }

    /// Keeps the labels a class table needs (checked against the batch).
    private func take(_ labels: DeviceLabels?, batch: Int) {
        precondition((labels != nil) == (classAffine != nil), classAffine == nil ? "labels for a BatchNorm without a class table"
                     : "the class-conditional BatchNorm needs the batch's labels")
        precondition(labels.map { $0.count == batch } ?? true, "\(labels?.count ?? 0) labels for \(batch) images")
        self.labels = labels
    }

    /// The class table's kernel arguments (null pointers without one): scale, shift, labels
    /// and the maps' area, by which the kernels find a value's batch entry.
    private func classArguments(_ x: DeviceTensor, shift withShift: Bool = true) -> [KernelArgument] {
        let plane = KernelArgument.int32(Int32(x.count / (x.shape[0] * x.shape[1])))
        guard let classTable, let labels else { return [.address(0)] + (withShift ? [.address(0)] : []) + [.address(0), plane] }
        return [classTable.scale.argument] + (withShift ? [classTable.shift.argument] : []) + [labels.argument, plane]
    }

    /// y and xhat from this batch's statistics (running averages moved by `momentum`).
    private func normalize(_ x: DeviceTensor, into y: DeviceTensor, xhat: DeviceTensor, momentum: Float,
                           inputBias: DeviceTensor? = nil) throws(CUDAError) {
        let bias = inputBias?.argument ?? .address(0)
        let ((n, hw), c) = (x.channelRuns, layer.channels)
        let shape: [KernelArgument] = [.int32(Int32(n)), .int32(Int32(c)), .int32(Int32(hw))]
        let split = slices(n: n, hw: hw)
        guard split > 1 else {
            try device.launch("batchnorm_forward_training", grid: c, block: 256,
                              [x.argument, y.argument, xhat.argument, gamma.argument, beta.argument, mean.argument, invStd.argument,
                               runningMean.argument, runningVar.argument] + shape
                              + [.float(layer.eps), .float(momentum), .int32(activation.rawValue), .float(slope), bias]
                              + classArguments(x))
            return
        }
        let partials = try DeviceTensor.reuse(self.partials, shape: [2 * c * split], on: device)
        self.partials = partials
        try device.launch("batchnorm_partial_stats", grid: c * split, block: 256, [x.argument, partials.argument] + shape + [.int32(Int32(split))])
        try device.launch("batchnorm_finish_stats", grid: (c + 255) / 256, block: 256,
                          [x.argument, partials.argument, mean.argument, invStd.argument, runningMean.argument, runningVar.argument,
                           .int32(Int32(c)), .int32(Int32(split)), .int32(Int32(n)), .int32(Int32(hw)), .float(layer.eps), .float(momentum),
                           bias])
        try device.launchElementwise("batchnorm_normalize", count: x.count,
                                     [x.argument, y.argument, xhat.argument, gamma.argument, beta.argument, mean.argument,
                                      invStd.argument] + shape + [.int32(activation.rawValue), .float(slope)] + classArguments(x))
    }

    /// dy of the activation's output -> dx, and gamma's and beta's gradients (and the class
    /// table's) added when `parameterGradients` (the kernel computes gamma's and beta's anyway:
    /// they are the sums dx needs).
    public func backward(_ dy: DeviceTensor, parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor {
        guard let y = output, let xhat = normalized else { preconditionFailure("BatchNorm2d.backward before forward") }
        precondition(dy.channelMajor == y.channelMajor && dy.shape == y.shape, "BatchNorm2d.backward: dy laid out as its output")
        let dx = try DeviceTensor.reuse(inputGradient, shape: y.shape, on: device, channelMajor: y.channelMajor)
        inputGradient = dx
        // Without parameter gradients the sums go to the scratch statistics (mean is no longer needed).
        let (dgamma, dbeta) = parameterGradients ? (gammaGradient, betaGradient) : (mean, mean)
        let ((n, hw), c) = (y.channelRuns, layer.channels)
        let shape: [KernelArgument] = [.int32(Int32(n)), .int32(Int32(c)), .int32(Int32(hw))]
        if parameterGradients, let classAffine, let classTable, let labels {
            try device.launch("batchnorm_class_grad", grid: classAffine.classes * c, block: 256,
                              [dy.argument, y.argument, xhat.argument, gamma.argument, beta.argument, labels.argument,
                               classTable.scaleGradient.argument, classTable.shiftGradient.argument, .int32(Int32(y.shape[0])),
                               .int32(Int32(c)), .int32(Int32(y.count / (y.shape[0] * c))), .int32(y.channelMajor ? 1 : 0),
                               .int32(activation.rawValue), .float(slope)])
        }
        let split = slices(n: n, hw: hw)
        guard split > 1 else {
            try device.launch("batchnorm_backward_training", grid: c, block: 256,
                              [dy.argument, y.argument, xhat.argument, gamma.argument, invStd.argument, dx.argument, dgamma.argument,
                               dbeta.argument] + shape + [.int32(activation.rawValue), .float(slope)] + classArguments(y, shift: false))
            return dx
        }
        let partials = try DeviceTensor.reuse(self.partials, shape: [2 * c * split], on: device)
        self.partials = partials
        let means = try DeviceTensor.reuse(gradientMeans, shape: [2 * c], on: device)
        gradientMeans = means
        try device.launch("batchnorm_partial_grad", grid: c * split, block: 256,
                          [dy.argument, y.argument, xhat.argument, partials.argument] + shape
                          + [.int32(activation.rawValue), .float(slope), .int32(Int32(split))] + classArguments(y, shift: false))
        try device.launch("batchnorm_finish_grad", grid: (c + 255) / 256, block: 256,
                          [partials.argument, gamma.argument, dgamma.argument, dbeta.argument, means.argument,
                           .int32(Int32(c)), .int32(Int32(split)), .int32(Int32(n)), .int32(Int32(hw))])
        try device.launchElementwise("batchnorm_input_grad", count: dx.count,
                                     [dy.argument, y.argument, xhat.argument, gamma.argument, invStd.argument, means.argument,
                                      dx.argument] + shape + [.int32(activation.rawValue), .float(slope)]
                                     + classArguments(y, shift: false))
        return dx
    }

    /// For sampling: normalised with `given` statistics, or else with this batch's own (the
    /// running averages untouched: the training kernel with momentum 0); nothing kept for a
    /// backward pass. `lastStatistics` then reads what was used. `labels` as `forward`'s.
    public func sample(_ x: DeviceTensor, labels: DeviceLabels? = nil, given: DeviceStatistics? = nil) throws(CUDAError) -> DeviceTensor {
        take(labels, batch: x.shape[0])
        let y = try DeviceTensor.reuse(output, shape: x.shape, on: device, channelMajor: x.channelMajor)
        output = y
        let shape = x.channelRuns
        if let given {
            precondition(x.count < 1 << 31, "batchnorm_apply indexes in 32 bits: a smaller batch")
            try device.launchElementwise("batchnorm_apply", count: x.count,
                                         [x.argument, y.argument, gamma.argument, beta.argument, given.mean.argument, given.invStd.argument,
                                          .int64(shape.n), .int32(Int32(layer.channels)), .int64(shape.hw),
                                          .int32(activation.rawValue), .float(slope)] + classArguments(x))
            lastGiven = given
        } else {
            let xhat = try DeviceTensor.reuse(normalized, shape: x.shape, on: device, channelMajor: x.channelMajor)
            normalized = xhat
            try normalize(x, into: y, xhat: xhat, momentum: 0)
            lastGiven = nil
        }
        return y
    }

    private var lastGiven: DeviceStatistics?

    /// The statistics the last `sample` used (a read from the device).
    public func lastStatistics() throws(CUDAError) -> ChannelStatistics {
        try (lastGiven ?? DeviceStatistics(mean: mean, invStd: invStd)).channelStatistics(eps: layer.eps)
    }

    /// The running statistics into the CPU layer (before a checkpoint save).
    public func downloadBuffers() throws(CUDAError) {
        let means = try runningMean.values(), variances = try runningVar.values()
        for c in 0..<layer.channels { layer.runningMean[c] = means[c]; layer.runningVar[c] = variances[c] }
    }
}

/// BatchNorm statistics on a device as the kernels take them: mean and 1 / sqrt(variance + eps)
/// per channel.
public struct DeviceStatistics: @unchecked Sendable {
    public let mean: DeviceTensor, invStd: DeviceTensor

    public init(mean: DeviceTensor, invStd: DeviceTensor) {
        self.mean = mean
        self.invStd = invStd
    }

    public init(_ statistics: ChannelStatistics, eps: Float, on device: any KernelDevice) throws(CUDAError) {
        mean = try DeviceTensor(on: device, shape: [statistics.mean.count])
        invStd = try DeviceTensor(on: device, shape: [statistics.mean.count])
        try mean.upload(statistics.mean.map { Float($0) })
        try invStd.upload(statistics.variance.map { 1 / (Float($0) + eps).squareRoot() })
    }

    public func channelStatistics(eps: Float) throws(CUDAError) -> ChannelStatistics {
        let means = try mean.values(), inverse = try invStd.values()
        return ChannelStatistics(mean: means.map(Double.init), variance: inverse.map { max(0, 1 / (Double($0) * Double($0)) - Double(eps)) })
    }
}
