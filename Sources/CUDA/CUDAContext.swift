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
    func allocateAddress(bytes: Int) throws(CUDAError) -> UInt64 {
        var pointer: CUDADriver.DevicePointer = 0
        let status = driver.memoryAllocate(&pointer, max(bytes, 1))
        if status == 2 {  // CUDA_ERROR_OUT_OF_MEMORY
            let (free, total) = memory()
            throw .outOfMemory(requestedBytes: bytes, freeBytes: free, totalBytes: total)
        }
        try driver.check("cuMemAlloc", status)
        return pointer
    }

    func free(_ address: UInt64) { _ = driver.memoryFree(address) }

    /// Copies in order on `stream` (after the work queued there before it); returns when the
    /// host's bytes may be reused.
    func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64, on stream: OpaquePointer?) throws(CUDAError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try driver.check("cuMemcpyHtoDAsync", driver.copyHostToDeviceAsync(address, base, bytes.count, stream))
        // From pageable memory the copy is staged before the call returns, but a later write of
        // the same host bytes by the caller must not race the staging: wait for the stream.
        try driver.check("cuStreamSynchronize", driver.streamSynchronize(stream))
    }

    /// Copies once the work queued on `stream` before it is done; returns with the bytes there.
    func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer, on stream: OpaquePointer?) throws(CUDAError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try driver.check("cuMemcpyDtoHAsync", driver.copyDeviceToHostAsync(base, address, bytes.count, stream))
        try driver.check("cuStreamSynchronize", driver.streamSynchronize(stream))
    }

    /// Loads compiled kernels (a CUBIN from `KernelCache` or `NVRTC.compile`).
    func load(_ cubin: [UInt8], functions: [String]) throws(CUDAError) -> KernelModule {
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

    /// Launches `name` on `grid` blocks of `block` threads with `arguments` in order, on
    /// `stream` (nil: the default stream).
    public func launch(_ name: String, grid: Int, block: Int, _ arguments: [KernelArgument],
                       stream: OpaquePointer? = nil) throws(CUDAError) {
        guard let function = functions[name] else { throw .driver(call: "launch \(name)", code: 500, message: "no such kernel in the module") }
        let status = try KernelArgument.withParameterArray(arguments) { parameters in
            context.driver.launchKernel(function, UInt32(grid), 1, 1, UInt32(block), 1, 1, 0, stream, parameters, nil)
        }
        try context.driver.check("cuLaunchKernel(\(name))", status)
    }
}
