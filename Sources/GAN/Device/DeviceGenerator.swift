import CUDA
import Engine
import GPUEngine

/// `Generator` on a `KernelDevice`: the same layers in the same order, built from the CPU
/// model (which keeps the names, the shapes and, after `download`, the trained values).
/// BatchNorm and ReLU run fused; with class-conditional norm the class affine sits between
/// them, as on the CPU.
public final class DeviceGenerator {
    public let model: Generator
    public let arena: ParameterArena
    let embedding: DeviceEmbedding
    let projection: DeviceLinear
    let norms: [DeviceBatchNorm]
    let classNorms: [DeviceClassAffine]
    let relus: [DeviceActivation]   // only with class-conditional norm (else fused into the norms)
    let upsamplers: [DeviceConvTranspose2d]
    let tanh = DeviceActivation(.tanh)

    public init(_ model: Generator, on device: any KernelDevice) throws(CUDAError) {
        self.model = model
        let arena = try ParameterArena(model.parameters, on: device)
        self.arena = arena
        embedding = DeviceEmbedding(model.embedding, arena: arena)
        projection = DeviceLinear(model.projection, arena: arena)
        let fused = model.classNorms.isEmpty
        var norms: [DeviceBatchNorm] = []
        for norm in model.norms { norms.append(try DeviceBatchNorm(norm, activation: fused ? .relu : .none, arena: arena)) }
        self.norms = norms
        classNorms = model.classNorms.map { DeviceClassAffine($0, arena: arena) }
        relus = fused ? [] : model.norms.map { _ in DeviceActivation(.relu) }
        upsamplers = model.upsamplers.map { DeviceConvTranspose2d($0, arena: arena) }
    }

    public var configuration: ModelConfiguration { model.configuration }

    /// z (B, latent), labels (B) -> images (B, C, R, R) in [-1, 1].
    public func forward(_ z: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        let batch = z.shape[0]
        let e = try embedding.forward(labels)
        var x = try projection.forward(parts: [z, e]).reshaped([batch, configuration.channels(atStage: 0), 4, 4])
        for stage in 0..<configuration.stages {
            x = try norms[stage].forward(x)
            if !classNorms.isEmpty {
                x = try classNorms[stage].forward(x, labels: labels)
                x = try relus[stage].forward(x)
            }
            x = try upsamplers[stage].forward(x)
        }
        return try tanh.forward(x)
    }

    /// d loss / d images -> parameter gradients (added to the arena's).
    public func backward(_ dImages: DeviceTensor) throws(CUDAError) {
        var dx = try tanh.backward(dImages)
        for stage in (0..<configuration.stages).reversed() {
            dx = try upsamplers[stage].backward(dx)!
            if !classNorms.isEmpty {
                dx = try relus[stage].backward(dx)
                dx = try classNorms[stage].backward(dx)
            }
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
