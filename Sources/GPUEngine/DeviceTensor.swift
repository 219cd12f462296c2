import CUDA
import Engine

/// A float tensor in device memory: a shape over floats of an allocation, from `offset` on
/// (a parameter's view into its `ParameterArena`, or a layer's own output).
///
/// A batch of maps, shape (B, C, H, W), is stored image by image (NCHW) or, when
/// `channelMajor`, channel by channel: (C, B, H, W) in memory, the layout a convolution's one
/// GEMM over the whole batch reads and writes. Between two convolutions the layers that take
/// either (BatchNorm, the activations, the class affine) keep the channel-major layout, so
/// that no pass swaps it back and forth (docs/cuda.md, "What a step launches").
public struct DeviceTensor: @unchecked Sendable {
    public let storage: DeviceBuffer
    /// In floats from the allocation's start.
    public let offset: Int
    public let shape: [Int]
    /// (C, B, H, W) in memory for the logical shape (B, C, H, W).
    public let channelMajor: Bool

    public init(storage: DeviceBuffer, offset: Int = 0, shape: [Int], channelMajor: Bool = false) {
        precondition((offset + shape.reduce(1, *)) * 4 <= storage.bytes, "a view of \(shape) past its allocation")
        precondition(!channelMajor || shape.count == 4, "channel-major maps are (B, C, H, W), not \(shape)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        self.channelMajor = channelMajor
    }

    /// The same memory, its layout named (`channelMajor`).
    public func laidOut(channelMajor: Bool) -> DeviceTensor {
        DeviceTensor(storage: storage, offset: offset, shape: shape, channelMajor: channelMajor)
    }

    /// Per channel, what the per-channel kernels (BatchNorm) see: `n` runs of `hw` values,
    /// runs `channels * hw` apart. Channel-major maps are one run of B*H*W values a channel.
    public var channelRuns: (n: Int, hw: Int) {
        let area = shape[2] * shape[3]
        return channelMajor ? (1, shape[0] * area) : (shape[0], area)
    }

    /// Fresh device memory (contents undefined until written).
    public init(on device: any KernelDevice, shape: [Int]) throws(CUDAError) {
        self.init(storage: try device.allocate(bytes: shape.reduce(1, *) * 4), shape: shape)
    }

    /// A copy of a CPU tensor.
    public init(_ tensor: Tensor, on device: any KernelDevice) throws(CUDAError) {
        try self.init(on: device, shape: tensor.shape)
        try upload(tensor.values)
    }

    public var device: any KernelDevice { storage.device }
    public var count: Int { shape.reduce(1, *) }
    public var address: UInt64 { storage.address + UInt64(offset * 4) }
    /// As a kernel argument (a `float*`).
    public var argument: KernelArgument { .address(address) }

    public func reshaped(_ newShape: [Int]) -> DeviceTensor {
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) to \(newShape)")
        precondition(!channelMajor, "a channel-major \(shape) reshaped as if image by image")
        return DeviceTensor(storage: storage, offset: offset, shape: newShape)
    }

    public func values() throws(CUDAError) -> [Float] { try device.floats(at: address, count: count) }

    public func upload(_ values: [Float]) throws(CUDAError) {
        precondition(values.count == count, "\(values.count) values into \(shape)")
        try device.write(values, to: address)
    }

    /// As a CPU tensor (tests, checkpoints).
    public func tensor() throws(CUDAError) -> Tensor {
        precondition(!channelMajor, "a channel-major tensor read as NCHW")
        return Tensor(shape: shape, values: try values())
    }

    /// `existing` when it has `shape` (a layer's output between steps: the same addresses, as
    /// a captured graph needs), else new memory.
    public static func reuse(_ existing: DeviceTensor?, shape: [Int], on device: any KernelDevice,
                             channelMajor: Bool = false) throws(CUDAError) -> DeviceTensor {
        if let existing, existing.shape == shape { return existing.laidOut(channelMajor: channelMajor) }
        return try DeviceTensor(on: device, shape: shape).laidOut(channelMajor: channelMajor)
    }
}

extension KernelDevice {
    /// `held` when it has room for `bytes`, else a new buffer, kept in `held`: inputs and
    /// outputs reused from one batch to the next (freeing device memory waits for the GPU).
    public func buffer(_ held: inout DeviceBuffer?, bytes: Int) throws(CUDAError) -> DeviceBuffer {
        if let existing = held, existing.bytes >= bytes { return existing }
        let made = try allocate(bytes: bytes)
        held = made
        return made
    }

    /// Launches an element-wise (grid-stride) kernel over `count` elements.
    public func launchElementwise(_ kernel: String, count: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        try launch(kernel, grid: Swift.min(Swift.max(1, (count + 255) / 256), 4096), block: 256, arguments)
    }

    /// A 64-bit count in device memory (the kernels' `long` / `unsigned long long`).
    public func upload(count: Int) throws(CUDAError) -> DeviceBuffer {
        try upload([Int32(truncatingIfNeeded: count), Int32(truncatingIfNeeded: count >> 32)])
    }

    /// Sets every element of `tensor` to `value`.
    public func fill(_ tensor: DeviceTensor, _ value: Float) throws(CUDAError) {
        try launchElementwise("fill", count: tensor.count, [tensor.argument, .int64(tensor.count), .float(value)])
    }
}
