import CUDA
import Engine

/// Where layers find their parameters' device views: one arena, or several (`ParameterViews`).
public protocol ParameterSource {
    func value(_ parameter: Parameter) -> DeviceTensor
    func gradient(_ parameter: Parameter) -> DeviceTensor
}

/// Several arenas as one source: a spectrally normalised network's layers compute with W / sigma,
/// kept in an arena of their own beside the trained weights' (biases and the rest).
public struct ParameterViews: ParameterSource {
    public let arenas: [ParameterArena]

    public init(_ arenas: [ParameterArena]) { self.arenas = arenas }

    private func arena(holding parameter: Parameter) -> ParameterArena {
        guard let arena = arenas.first(where: { $0.holds(parameter) }) else { preconditionFailure("\(parameter.name) is in no arena") }
        return arena
    }

    public func value(_ parameter: Parameter) -> DeviceTensor { arena(holding: parameter).value(parameter) }
    public func gradient(_ parameter: Parameter) -> DeviceTensor { arena(holding: parameter).gradient(parameter) }
}

/// A network's parameters in one flat device buffer, and their gradients in another of the
/// same layout, so that one launch updates a whole network (`DeviceAdam`) and zeroes its
/// gradients. Each parameter keeps a view by the CPU model's `Parameter`: the CPU model stays
/// the source of names and shapes, and a checkpoint is the CPU format (`download` into the
/// CPU parameters, then the usual save): device-independent.
public final class ParameterArena: ParameterSource, @unchecked Sendable {
    public let device: any KernelDevice
    public let parameters: [Parameter]
    public let values: DeviceTensor
    public let gradients: DeviceTensor
    /// Where each parameter starts, in floats (each aligned to 64 floats: 256 bytes).
    private let offsets: [ObjectIdentifier: Int]

    public init(_ parameters: [Parameter], on device: any KernelDevice) throws(CUDAError) {
        self.device = device
        self.parameters = parameters
        var offsets: [ObjectIdentifier: Int] = [:]
        var total = 0
        for parameter in parameters {
            offsets[ObjectIdentifier(parameter)] = total
            total += (parameter.value.count + 63) / 64 * 64
        }
        self.offsets = offsets
        values = try DeviceTensor(on: device, shape: [max(total, 1)])
        gradients = try DeviceTensor(on: device, shape: [max(total, 1)])
        try device.fill(values, 0)
        try upload()
        try zeroGradients()
    }

    public func holds(_ parameter: Parameter) -> Bool { offsets[ObjectIdentifier(parameter)] != nil }

    /// Floats in each buffer, alignment gaps included (they stay zero).
    public var count: Int { values.count }

    public func value(_ parameter: Parameter) -> DeviceTensor { view(values, parameter) }
    public func gradient(_ parameter: Parameter) -> DeviceTensor { view(gradients, parameter) }

    /// `parameter`'s part of `buffer`, a buffer laid out as this arena (its values, its
    /// gradients, an optimiser's moments, an average's shadows).
    public func view(_ buffer: DeviceTensor, _ parameter: Parameter) -> DeviceTensor {
        guard let offset = offsets[ObjectIdentifier(parameter)] else { preconditionFailure("\(parameter.name) is not in this arena") }
        return DeviceTensor(storage: buffer.storage, offset: buffer.offset + offset, shape: parameter.shape)
    }

    /// The CPU parameters' values to the device (after a checkpoint load).
    public func upload() throws(CUDAError) {
        for parameter in parameters { try value(parameter).upload(parameter.value.values) }
    }

    /// The device's values into the CPU parameters (before a checkpoint save).
    public func download() throws(CUDAError) { try download(values, into: parameters.map(\.value)) }

    /// The device's gradients into the CPU parameters' `grad` (tests compare them).
    public func downloadGradients() throws(CUDAError) { try download(gradients, into: parameters.map(\.grad)) }

    public func zeroGradients() throws(CUDAError) { try device.fill(gradients, 0) }

    /// A buffer laid out as this arena holding `tensors` (one per parameter, in order; the
    /// alignment gaps zero): an optimiser's moments, an average's shadows.
    public func buffer(holding tensors: [Tensor]) throws(CUDAError) -> DeviceTensor {
        precondition(tensors.count == parameters.count, "\(tensors.count) tensors for \(parameters.count) parameters")
        let buffer = try DeviceTensor(on: device, shape: [count])
        try device.fill(buffer, 0)
        for (parameter, tensor) in zip(parameters, tensors) { try view(buffer, parameter).upload(tensor.values) }
        return buffer
    }

    /// `buffer`'s parts into `tensors` (one per parameter, in order).
    public func download(_ buffer: DeviceTensor, into tensors: [Tensor]) throws(CUDAError) {
        for (parameter, tensor) in zip(parameters, tensors) {
            let values = try view(buffer, parameter).values()
            for i in values.indices { tensor[i] = values[i] }
        }
    }
}

/// A layer's weight and optional bias in an arena, with their gradients.
public struct DeviceWeights: @unchecked Sendable {
    public let weight: DeviceTensor, weightGradient: DeviceTensor
    public let bias: DeviceTensor?, biasGradient: DeviceTensor?

    public init(weight: Parameter, bias: Parameter?, arena: some ParameterSource) {
        self.weight = arena.value(weight)
        weightGradient = arena.gradient(weight)
        self.bias = bias.map(arena.value)
        biasGradient = bias.map(arena.gradient)
    }

    public var device: any KernelDevice { weight.device }
}
