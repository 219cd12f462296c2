import CUDA
import Engine

/// Class labels in device memory (Int32 per image), from `offset` on (a batch's part of a
/// chunk's labels, uploaded at once).
public struct DeviceLabels: @unchecked Sendable {
    public let storage: DeviceBuffer
    /// In labels from the allocation's start.
    public let offset: Int
    public let count: Int

    public init(_ labels: [Int32], on device: any KernelDevice) throws(CUDAError) {
        storage = try device.upload(labels)
        offset = 0
        count = labels.count
    }

    public init(storage: DeviceBuffer, offset: Int = 0, count: Int) {
        precondition((offset + count) * 4 <= storage.bytes, "\(count) labels from \(offset) past their allocation")
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    public var address: UInt64 { storage.address + UInt64(offset * 4) }
    public var argument: KernelArgument { .address(address) }
    public func values() throws(CUDAError) -> [Int32] { try storage.device.int32s(at: address, count: count) }
}

/// A class embedding on a device (`Engine/Layers/Embedding.swift`): rows of a (classes, dim)
/// table; its gradient sums the rows' gradients per class.
public final class DeviceEmbedding {
    public let layer: Embedding
    let weight: DeviceTensor, weightGradient: DeviceTensor
    private var labels: DeviceLabels?
    private var output: DeviceTensor?

    public init(_ layer: Embedding, arena: ParameterArena) {
        self.layer = layer
        weight = arena.value(layer.weight)
        weightGradient = arena.gradient(layer.weight)
    }

    public func forward(_ labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        let device = weight.device, dimension = layer.dimension
        let y = try DeviceTensor.reuse(output, shape: [labels.count, dimension], on: device)
        (output, self.labels) = (y, labels)
        try device.launchElementwise("embedding_forward", count: y.count, [weight.argument, labels.argument, y.argument,
                                                                           .int32(Int32(labels.count)), .int32(Int32(dimension))])
        return y
    }

    /// Adds dy's rows to their classes' gradients.
    public func backward(_ dy: DeviceTensor) throws(CUDAError) {
        guard let labels else { preconditionFailure("Embedding.backward before forward") }
        try weight.device.launchElementwise("embedding_backward", count: layer.count * layer.dimension,
                                            [dy.argument, labels.argument, weightGradient.argument, .int32(Int32(labels.count)),
                                             .int32(Int32(layer.count)), .int32(Int32(layer.dimension))])
    }
}

/// The projection discriminator's head on a device (`Engine/Layers/ProjectionHead.swift`):
/// logit = w . phi + b + <embed(y), phi>, the linear part and the class term in one kernel
/// forward and at most two backward. phi is (B, F), or the discriminator's last maps (B, C,
/// H, W) as they are, in either layout (channel-major as its convolutions leave them: no
/// flatten, no layout pass); the features are read as the CPU's flatten orders them.
public final class DeviceProjectionHead {
    public let layer: ProjectionHead
    let linear: DeviceWeights
    let table: DeviceTensor, tableGradient: DeviceTensor
    private var features: DeviceTensor?, labels: DeviceLabels?
    private var output: DeviceTensor?, inputGradient: DeviceTensor?

    public init(_ layer: ProjectionHead, arena: some ParameterSource) {
        self.layer = layer
        linear = DeviceWeights(weight: layer.linear.weight, bias: layer.linear.bias, arena: arena)
        table = arena.value(layer.embedding.weight)
        tableGradient = arena.gradient(layer.embedding.weight)
    }

    /// (batch, channels, area, channel_major) of features laid out as `phi`.
    private func geometry(_ phi: DeviceTensor) -> [KernelArgument] {
        precondition(phi.count / phi.shape[0] == layer.embedding.dimension,
                     "ProjectionHead of \(layer.embedding.dimension) features, got \(phi.shape)")
        precondition(phi.count < 1 << 31 && (layer.embedding.count + 1) * layer.embedding.dimension < 1 << 31,
                     "the head's kernels index in 32 bits: a smaller batch")
        let channels = phi.shape.count == 4 ? phi.shape[1] : phi.count / phi.shape[0]
        return [.int32(Int32(phi.shape[0])), .int32(Int32(channels)), .int32(Int32(phi.count / (phi.shape[0] * channels))),
                .int32(phi.channelMajor ? 1 : 0)]
    }

    /// phi (B, F) or (B, C, H, W), labels (B) -> logits (B).
    public func forward(_ phi: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        let batch = phi.shape[0], device = phi.device
        precondition(labels.count == batch, "ProjectionHead: \(labels.count) labels for batch \(batch)")
        let y = try DeviceTensor.reuse(output, shape: [batch], on: device)
        (features, self.labels, output) = (phi, labels, y)
        try device.launch("projection_head_forward", grid: Swift.min(batch, 4096), block: ConditioningKernels.reductionBlock,
                          [phi.argument, linear.weight.argument, linear.bias?.argument ?? .address(0), table.argument,
                           labels.argument, y.argument] + geometry(phi))
        return y
    }

    /// dlogits (B) -> dphi, shaped and laid out as phi, when `inputGradient`; the parameter
    /// gradients added when `parameterGradients`.
    public func backward(_ dy: DeviceTensor, inputGradient: Bool = true, parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        guard let phi = features, let labels else { preconditionFailure("ProjectionHead.backward before forward") }
        let device = phi.device
        if parameterGradients {
            try device.launchElementwise("projection_head_parameter_grad", count: (layer.embedding.count + 1) * layer.embedding.dimension + 1,
                                         [phi.argument, dy.argument, labels.argument, linear.weightGradient.argument,
                                          linear.biasGradient?.argument ?? .address(0), tableGradient.argument,
                                          .int32(Int32(phi.shape[0])), .int32(Int32(layer.embedding.count))]
                                         + geometry(phi).dropFirst())
        }
        guard inputGradient else { return nil }
        let dphi = try DeviceTensor.reuse(self.inputGradient, shape: phi.shape, on: device, channelMajor: phi.channelMajor)
        self.inputGradient = dphi
        try device.launchElementwise("projection_head_input_grad", count: phi.count,
                                     [dy.argument, linear.weight.argument, table.argument, labels.argument, dphi.argument]
                                     + geometry(phi))
        return dphi
    }
}
