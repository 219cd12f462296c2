import CUDA
import Engine
import GPUEngine

/// `Generator` on a `KernelDevice`: the same layers in the same order, built from the CPU
/// model (which keeps the names, the shapes and, after `download`, the trained values).
/// BatchNorm and ReLU run fused, with class-conditional norm the class's scale and shift
/// between them, as the CPU's `BatchNormActivation`.
public final class DeviceGenerator {
    public let model: Generator
    public let arena: ParameterArena
    let embedding: DeviceEmbedding
    let projection: DeviceLinear
    let norms: [DeviceBatchNorm]
    let upsamplers: [DeviceConvTranspose2d]
    let tanh = DeviceActivation(.tanh)

    public init(_ model: Generator, on device: any KernelDevice) throws(CUDAError) {
        self.model = model
        let arena = try ParameterArena(model.parameters, on: device)
        self.arena = arena
        embedding = DeviceEmbedding(model.embedding, arena: arena)
        projection = DeviceLinear(model.projection, arena: arena)
        var norms: [DeviceBatchNorm] = []
        for (stage, norm) in model.norms.enumerated() {
            let classAffine = model.classNorms.isEmpty ? nil : model.classNorms[stage]
            norms.append(try DeviceBatchNorm(norm, classAffine: classAffine, activation: .relu, arena: arena))
        }
        self.norms = norms
        upsamplers = model.upsamplers.map { DeviceConvTranspose2d($0, arena: arena) }
        // Between two upsamplers the maps stay channel-major (BatchNorm, the class affine and
        // ReLU take them so): no layout pass each way; the last one writes the images. Each but
        // the last feeds a BatchNorm, which cancels its bias: no gradient to sum.
        for upsampler in upsamplers.dropLast() {
            upsampler.outputChannelMajor = true
            upsampler.biasCancelledByBatchNorm = true
        }
    }

    public var configuration: ModelConfiguration { model.configuration }

    /// The labels the BatchNorms take: the batch's with class-conditional norm, else none.
    private func classLabels(_ labels: DeviceLabels) -> DeviceLabels? {
        configuration.classConditionalNorm ? labels : nil
    }

    /// z (B, latent), labels (B) -> images (B, C, R, R) in [-1, 1].
    public func forward(_ z: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        let batch = z.shape[0]
        let e = try embedding.forward(labels)
        var x = try projection.forward(parts: [z, e]).reshaped([batch, configuration.channels(atStage: 0), 4, 4])
        for stage in 0..<configuration.stages {
            x = try norms[stage].forward(x, labels: classLabels(labels))
            x = try upsamplers[stage].forward(x)
        }
        return try tanh.forward(x)
    }

    /// Images for generation (`Generator.sample`'s maths with Float products): each BatchNorm
    /// with `statistics` (one per BatchNorm, e.g. `Sampler`'s standing statistics) or with the
    /// batch's own, the running averages untouched; nothing kept for a backward pass.
    public func sample(_ z: DeviceTensor, labels: DeviceLabels, statistics: [DeviceStatistics]? = nil) throws(CUDAError) -> DeviceTensor {
        precondition(statistics.map { $0.count == norms.count } ?? true, "statistics for \(statistics?.count ?? 0) of \(norms.count) BatchNorms")
        let batch = z.shape[0]
        let e = try embedding.forward(labels)
        var x = try projection.forward(parts: [z, e]).reshaped([batch, configuration.channels(atStage: 0), 4, 4])
        for stage in 0..<configuration.stages {
            x = try norms[stage].sample(x, labels: classLabels(labels), given: statistics?[stage])
            x = try upsamplers[stage].forward(x)
        }
        return try tanh.forward(x)
    }

    /// The BatchNorm statistics the last `sample` used, one per BatchNorm.
    public func lastSamplingStatistics() throws(CUDAError) -> [ChannelStatistics] {
        var result: [ChannelStatistics] = []
        for norm in norms { result.append(try norm.lastStatistics()) }
        return result
    }

    /// The CPU model's weights and running statistics to the device again (it trained, or a
    /// checkpoint was loaded, since this was built).
    public func upload() throws(CUDAError) {
        try arena.upload()
        for norm in norms {
            try norm.runningMean.upload(norm.layer.runningMean.values)
            try norm.runningVar.upload(norm.layer.runningVar.values)
        }
    }

    /// d loss / d images -> parameter gradients (added to the arena's).
    public func backward(_ dImages: DeviceTensor) throws(CUDAError) {
        var dx = try tanh.backward(dImages)
        for stage in (0..<configuration.stages).reversed() {
            dx = try upsamplers[stage].backward(dx)!
            dx = try norms[stage].backward(dx)
        }
        let batch = dx.shape[0]
        let parts = try projection.backward(dx.reshaped([batch, projection.layer.outFeatures]), inputGradient: [false, true])
        try embedding.backward(parts[1]!)
    }

    /// Parameters and running statistics into the CPU model.
    public func download() throws(CUDAError) {
        try arena.download()
        for norm in norms { try norm.downloadBuffers() }
    }
}
