/// One GPU's primary context (the one PyTorch and the runtime API share), with what the engine
/// does with it: device memory, copies, modules of compiled kernels, launches.
///
/// Calls are synchronous in this first form (the default stream); streams and captured graphs
/// come with the training step.
public final class CUDAContext: @unchecked Sendable {
    public let driver: CUDADriver
    public let info: CUDADeviceInfo
    private let context: OpaquePointer?

    public init(driver: CUDADriver, ordinal: Int) throws(CUDAError) {
        self.driver = driver
        info = try driver.device(ordinal)
        var context: OpaquePointer?
        try driver.check("cuDevicePrimaryCtxRetain", driver.primaryContextRetain(&context, Int32(ordinal)))
        self.context = context
        try makeCurrent()
    }

    deinit { _ = driver.primaryContextRelease(Int32(info.ordinal)) }

    /// Binds the context to the calling thread (each worker thread must before its first call).
    public func makeCurrent() throws(CUDAError) {
        try driver.check("cuCtxSetCurrent", driver.contextSetCurrent(context))
    }

    public func synchronize() throws(CUDAError) { try driver.check("cuCtxSynchronize", driver.contextSynchronize()) }

    /// Free and total device memory, in bytes.
    public func memory() -> (free: Int, total: Int) {
        var free = 0, total = 0
        _ = driver.memoryInfo(&free, &total)
        return (free, total)
    }

    /// Device memory of `bytes`; running out is `.outOfMemory` with what the GPU had.
    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        var pointer: CUDADriver.DevicePointer = 0
        let status = driver.memoryAllocate(&pointer, max(bytes, 1))
        if status == 2 {  // CUDA_ERROR_OUT_OF_MEMORY
            let (free, total) = memory()
            throw .outOfMemory(requestedBytes: bytes, freeBytes: free, totalBytes: total)
        }
        try driver.check("cuMemAlloc", status)
        return DeviceBuffer(context: self, pointer: pointer, bytes: bytes)
    }

    public func upload(_ values: [Float]) throws(CUDAError) -> DeviceBuffer {
        let buffer = try allocate(bytes: values.count * 4)
        try buffer.copy(from: values)
        return buffer
    }

    /// Loads compiled kernels (a CUBIN from `KernelCache` or `NVRTC.compile`).
    public func load(_ cubin: [UInt8], functions: [String]) throws(CUDAError) -> KernelModule {
        var module: OpaquePointer?
        let status = cubin.withUnsafeBytes { driver.moduleLoadData(&module, $0.baseAddress!) }
        try driver.check("cuModuleLoadData", status)
        var table: [String: OpaquePointer] = [:]
        for name in functions {
            var function: OpaquePointer?
            try driver.check("cuModuleGetFunction(\(name))", driver.moduleGetFunction(&function, module, name))
            table[name] = function
        }
        return KernelModule(context: self, module: module, functions: table)
    }
}

/// A block of device memory, freed with the object.
public final class DeviceBuffer: @unchecked Sendable {
    public let context: CUDAContext
    public let pointer: CUDADriver.DevicePointer
    public let bytes: Int

    init(context: CUDAContext, pointer: CUDADriver.DevicePointer, bytes: Int) {
        self.context = context
        self.pointer = pointer
        self.bytes = bytes
    }

    deinit { _ = context.driver.memoryFree(pointer) }

    public func copy(from values: [Float]) throws(CUDAError) {
        precondition(values.count * 4 <= bytes, "\(values.count) floats into \(bytes) bytes")
        let status = values.withUnsafeBytes { context.driver.copyHostToDevice(pointer, $0.baseAddress!, $0.count) }
        try context.driver.check("cuMemcpyHtoD", status)
    }

    public func floats(_ count: Int? = nil) throws(CUDAError) -> [Float] {
        var values = [Float](repeating: 0, count: count ?? bytes / 4)
        let status = values.withUnsafeMutableBytes { context.driver.copyDeviceToHost($0.baseAddress!, pointer, $0.count) }
        try context.driver.check("cuMemcpyDtoH", status)
        return values
    }
}

/// A kernel argument as `cuLaunchKernel` takes it: a pointer to the value.
public enum KernelArgument: Sendable {
    case buffer(DeviceBuffer)
    case float(Float)
    case int32(Int32)
    case int64(Int)
    case uint64(UInt64)
    /// A struct of 32-bit integers passed by value (its fields in order, as C lays them out).
    case int32s([Int32])
}

/// Loaded kernels, launched by name.
public final class KernelModule: @unchecked Sendable {
    let context: CUDAContext
    private let module: OpaquePointer?
    private let functions: [String: OpaquePointer]

    init(context: CUDAContext, module: OpaquePointer?, functions: [String: OpaquePointer]) {
        self.context = context
        self.module = module
        self.functions = functions
    }

    deinit { _ = context.driver.moduleUnload(module) }

    /// Launches `name` on `grid` blocks of `block` threads with `arguments` in order.
    public func launch(_ name: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        guard let function = functions[name] else { throw .driver(call: "launch \(name)", code: 500, message: "no such kernel in the module") }
        // Each argument's value lives in its own allocation for the duration of the call.
        let storage = arguments.map { argument -> UnsafeMutableRawPointer in
            var bytes = 8
            if case .int32s(let fields) = argument { bytes = max(8, fields.count * 4) }
            let slot = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
            switch argument {
            case .buffer(let buffer): slot.storeBytes(of: buffer.pointer, as: UInt64.self)
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
        var pointers: [UnsafeMutableRawPointer?] = storage
        let status = pointers.withUnsafeMutableBufferPointer { list in
            context.driver.launchKernel(function, UInt32(grid), 1, 1, UInt32(block), 1, 1, 0, nil, list.baseAddress, nil)
        }
        try context.driver.check("cuLaunchKernel(\(name))", status)
    }
}
