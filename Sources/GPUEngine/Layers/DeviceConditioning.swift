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
/// logit = Linear(phi) + <embed(y), phi>.
public final class DeviceProjectionHead {
    public let layer: ProjectionHead
    public let linear: DeviceLinear
    let table: DeviceTensor, tableGradient: DeviceTensor
    private var features: DeviceTensor?, labels: DeviceLabels?
    private var scratch: DeviceTensor?

    public init(_ layer: ProjectionHead, arena: some ParameterSource) {
        self.layer = layer
        linear = DeviceLinear(layer.linear, arena: arena)
        table = arena.value(layer.embedding.weight)
        tableGradient = arena.gradient(layer.embedding.weight)
    }

    /// phi (B, F), labels (B) -> logits (B).
    public func forward(_ phi: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        let batch = phi.shape[0], width = phi.shape[1]
        let y = try linear.forward(phi)
        (features, self.labels) = (phi, labels)
        try phi.device.launch("projection_forward", grid: Swift.min(batch, 4096), block: ConditioningKernels.reductionBlock,
                              [phi.argument, table.argument, labels.argument, y.argument, .int32(Int32(batch)), .int32(Int32(width))])
        return y.reshaped([batch])
    }

    /// dlogits (B) -> dphi (B, F) when `inputGradient`; the parameter gradients added when
    /// `parameterGradients`.
    public func backward(_ dy: DeviceTensor, inputGradient: Bool = true, parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        guard let phi = features, let labels else { preconditionFailure("ProjectionHead.backward before forward") }
        guard inputGradient || parameterGradients else { return nil }
        let batch = phi.shape[0], width = phi.shape[1], classes = layer.embedding.count
        let dphi = try linear.backward(dy.reshaped([batch, 1]), inputGradient: [inputGradient],
                                       parameterGradients: parameterGradients)[0]
        // The kernel adds to both dphi and the table's gradient; the one not wanted goes to scratch.
        var sink: DeviceTensor?
        if dphi == nil || !parameterGradients {
            sink = try DeviceTensor.reuse(scratch, shape: [max(batch, classes) * width], on: phi.device)
            scratch = sink
        }
        try phi.device.launchElementwise("projection_backward", count: max(batch, classes) * width,
                                         [phi.argument, table.argument, labels.argument, dy.argument, (dphi ?? sink!).argument,
                                          (parameterGradients ? tableGradient : sink!).argument,
                                          .int32(Int32(batch)), .int32(Int32(classes)), .int32(Int32(width))])
        return dphi
    }
}
