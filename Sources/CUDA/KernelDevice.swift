/// Where the engine's kernels run: a GPU (`CUDADevice`), or an emulation of one on the CPU
/// that the tests use where there is no GPU. The GPU layers are written against this and
/// nothing else, so that the whole GPU training step is checked on any machine and a device
/// session is spent on speed.
///
/// Memory is addressed by 64-bit device addresses (`DeviceBuffer` owns an allocation; a tensor
/// is an address inside one). Work is ordered as issued; `synchronize` waits for all of it.
public protocol KernelDevice: AnyObject, Sendable {
    /// Names the device in messages and reports ("NVIDIA H200 (sm_90)", "CPU emulation").
    var name: String { get }
    /// Device memory of `bytes` (contents undefined); running out is `.outOfMemory`.
    func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer
    /// Frees what `allocate` returned (a `DeviceBuffer` calls it when it goes).
    func free(_ address: UInt64)
    func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws(CUDAError)
    func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws(CUDAError)
    /// Runs the `__global__` function `kernel` of one of `AllKernels.sources` on `grid` blocks
    /// of `block` threads.
    func launch(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError)
    /// A (batched) matrix product, `MatrixProduct`'s row-major terms.
    func multiply(_ product: MatrixProduct) throws(CUDAError)
    /// Waits until everything issued has run.
    func synchronize() throws(CUDAError)
    /// Records the launches and products that `body` issues, without running them, as one
    /// unit that `replay` issues again with the same arguments (a CUDA graph on a GPU: one
    /// launch instead of one per kernel). Inside, memory must not be allocated, written or read.
    func capture(_ body: () throws(CUDAError) -> Void) throws(CUDAError) -> any CapturedWork
    func replay(_ work: any CapturedWork) throws(CUDAError)
}

/// Work recorded by `KernelDevice.capture`.
public protocol CapturedWork: AnyObject, Sendable {
    /// Kernel launches and matrix products in it (what one replay saves in launch overhead).
    var operationCount: Int { get }
}

extension KernelDevice {
    public func upload(_ values: [Float]) throws(CUDAError) -> DeviceBuffer { try upload(bytes: values) }
    public func upload(_ values: [Int32]) throws(CUDAError) -> DeviceBuffer { try upload(bytes: values) }
    public func upload(_ values: [UInt8]) throws(CUDAError) -> DeviceBuffer { try upload(bytes: values) }

    private func upload<T>(bytes values: [T]) throws(CUDAError) -> DeviceBuffer {
        let buffer = try allocate(bytes: values.count * MemoryLayout<T>.stride)
        try rethrowingCUDAError { try values.withUnsafeBytes { try write($0, to: buffer.address) } }
        return buffer
    }

    /// `count` floats at `address`.
    public func floats(at address: UInt64, count: Int) throws(CUDAError) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        try rethrowingCUDAError { try values.withUnsafeMutableBytes { try read(address, into: $0) } }
        return values
    }

    public func int32s(at address: UInt64, count: Int) throws(CUDAError) -> [Int32] {
        var values = [Int32](repeating: 0, count: count)
        try rethrowingCUDAError { try values.withUnsafeMutableBytes { try read(address, into: $0) } }
        return values
    }

    public func bytes(at address: UInt64, count: Int) throws(CUDAError) -> [UInt8] {
        var values = [UInt8](repeating: 0, count: count)
        try rethrowingCUDAError { try values.withUnsafeMutableBytes { try read(address, into: $0) } }
        return values
    }

    public func write(_ values: [Float], to address: UInt64) throws(CUDAError) {
        try rethrowingCUDAError { try values.withUnsafeBytes { try write($0, to: address) } }
    }

    public func write(_ values: [Int32], to address: UInt64) throws(CUDAError) {
        try rethrowingCUDAError { try values.withUnsafeBytes { try write($0, to: address) } }
    }
}

/// An allocation of device memory, freed with the object.
public final class DeviceBuffer: @unchecked Sendable {
    public let device: any KernelDevice
    public let address: UInt64
    public let bytes: Int

    public init(device: any KernelDevice, address: UInt64, bytes: Int) {
        self.device = device
        self.address = address
        self.bytes = bytes
    }

    deinit { device.free(address) }

    public func copy(from values: [Float]) throws(CUDAError) {
        precondition(values.count * 4 <= bytes, "\(values.count) floats into \(bytes) bytes")
        try device.write(values, to: address)
    }

    /// The first `count` floats (all by default).
    public func floats(_ count: Int? = nil) throws(CUDAError) -> [Float] {
        try device.floats(at: address, count: count ?? bytes / 4)
    }

    public func int32s(_ count: Int? = nil) throws(CUDAError) -> [Int32] {
        try device.int32s(at: address, count: count ?? bytes / 4)
    }
}

/// A kernel argument as `cuLaunchKernel` takes it: a pointer to the value.
public enum KernelArgument: Sendable {
    case buffer(DeviceBuffer)
    /// An address inside an allocation (a tensor in an arena).
    case address(UInt64)
    case float(Float)
    case int32(Int32)
    case int64(Int)
    case uint64(UInt64)
    /// A struct of 32-bit integers passed by value (its fields in order, as C lays them out).
    case int32s([Int32])

    /// Calls `body` with the array of pointers to each argument's value that `cuLaunchKernel`
    /// (and the CPU emulation, which unpacks it the same way) takes.
    public static func withParameterArray<R>(_ arguments: [KernelArgument],
                                             _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws(CUDAError) -> R)
        throws(CUDAError) -> R {
        // Each argument's value lives in its own allocation for the duration of the call.
        let storage = arguments.map { argument -> UnsafeMutableRawPointer in
            var bytes = 8
            if case .int32s(let fields) = argument { bytes = max(8, fields.count * 4) }
            let slot = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
            switch argument {
            case .buffer(let buffer): slot.storeBytes(of: buffer.address, as: UInt64.self)
            case .address(let address): slot.storeBytes(of: address, as: UInt64.self)
            case .float(let value): slot.storeBytes(of: value, as: Float.self)
            case .int32(let value): slot.storeBytes(of: value, as: Int32.self)
            case .int64(let value): slot.storeBytes(of: Int64(value), as: Int64.self)
            case .uint64(let value): slot.storeBytes(of: value, as: UInt64.self)
            case .int32s(let fields):
                for (index, field) in fields.enumerated() { slot.storeBytes(of: field, toByteOffset: 4 * index, as: Int32.self) }
            }
            return slot
        }
        defer { storage.forEach { $0.deallocate() } }
        var pointers: [UnsafeMutableRawPointer?] = storage + [nil]
        return try rethrowingCUDAError { try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!) } }
    }
}

/// C = alpha op(A) op(B) + beta C with row-major matrices, as `Engine/Core/BLAS.swift` says
/// it, repeated `count` times with each matrix `stride*` floats further on (a stride of 0
/// reuses one matrix, a convolution's weight for every image).
///
/// op(A) is (m, k): A stored (m, k) with leading dimension `lda`, or with `transA` the
/// transpose of A stored (k, m). Likewise B (k, n). C is (m, n) with `ldc`.
public struct MatrixProduct: Sendable, Equatable {
    public var transA: Bool, transB: Bool
    public var m: Int, n: Int, k: Int
    public var alpha: Float, beta: Float
    public var a: UInt64, lda: Int
    public var b: UInt64, ldb: Int
    public var c: UInt64, ldc: Int
    public var count: Int
    public var strideA: Int, strideB: Int, strideC: Int

    public init(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                a: UInt64, lda: Int, b: UInt64, ldb: Int, beta: Float = 0, c: UInt64, ldc: Int,
                count: Int = 1, strideA: Int = 0, strideB: Int = 0, strideC: Int = 0) {
        self.transA = transA
        self.transB = transB
        self.m = m
        self.n = n
        self.k = k
        self.alpha = alpha
        self.beta = beta
        self.a = a
        self.lda = lda
        self.b = b
        self.ldb = ldb
        self.c = c
        self.ldc = ldc
        self.count = count
        self.strideA = strideA
        self.strideB = strideB
        self.strideC = strideC
    }
}

/// The standard library's `rethrows` closures lose a typed error; the only error thrown
/// inside is a `CUDAError`.
func rethrowingCUDAError<R>(_ body: () throws -> R) throws(CUDAError) -> R {
    do { return try body() } catch let error as CUDAError { throw error } catch { fatalError("unexpected \(error)") }
}
