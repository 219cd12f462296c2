import Synchronization

/// A GPU as a `KernelDevice`: the driver's primary context, the engine's kernels compiled by
/// NVRTC at first use (one module per source, cached on disk by `KernelCache`), and cuBLAS
/// for the matrix products.
///
/// Calls are synchronous in this form (the default stream, `synchronize` before reading);
/// streams and captured graphs come with the training step.
public final class CUDADevice: KernelDevice, @unchecked Sendable {
    public let context: CUDAContext
    public let name: String
    private let compiler: NVRTC
    private let cache: KernelCache?
    private let cublas: CUBLASLibrary
    private let handle: OpaquePointer?
    /// Which source defines each kernel, and the sources loaded so far.
    private let sourceOf: [String: KernelSource]
    private let modules = Mutex<[String: KernelModule]>([:])

    /// `tensorFloat32`: products on TF32 tensor cores (10-bit mantissas in, FP32 sums), as
    /// PyTorch allows with `allow_tf32`; off, they are plain FP32.
    public init(ordinal: Int = 0, search: CUDALibrarySearch = CUDALibrarySearch(), cacheFolder: String? = nil,
                tensorFloat32: Bool = false) throws(CUDAError) {
        context = try CUDAContext(driver: CUDADriver(search: search), ordinal: ordinal)
        name = "\(context.info.name) (sm_\(context.info.architecture))"
        compiler = try NVRTC(search: search)
        cache = cacheFolder.map { KernelCache(folder: $0) }
        cublas = try CUBLASLibrary(search: search)
        var handle: OpaquePointer?
        let status = cublas.create(&handle)
        guard status == 0 else { throw .cublas(call: "cublasCreate", code: status) }
        self.handle = handle
        if tensorFloat32 {
            let mode = cublas.setMathMode(handle, 3)  // CUBLAS_TF32_TENSOR_OP_MATH
            guard mode == 0 else { throw .cublas(call: "cublasSetMathMode", code: mode) }
        }
        var sourceOf: [String: KernelSource] = [:]
        for source in AllKernels.sources { for function in source.functions { sourceOf[function] = source } }
        self.sourceOf = sourceOf
    }

    deinit { _ = cublas.destroy(handle) }

    // Every entry point binds the context to the calling thread first: the daemon's jobs run
    // on worker threads of their own (cuCtxSetCurrent costs well under a launch).

    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        try context.makeCurrent()
        return DeviceBuffer(device: self, address: try context.allocateAddress(bytes: bytes), bytes: bytes)
    }

    public func free(_ address: UInt64) { context.free(address) }

    public func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws(CUDAError) {
        try context.makeCurrent()
        try context.write(bytes, to: address)
    }

    public func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws(CUDAError) {
        try context.makeCurrent()
        try context.synchronize()
        try context.read(address, into: bytes)
    }

    public func launch(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        try context.makeCurrent()
        try module(defining: kernel).launch(kernel, grid: grid, block: block, arguments)
    }

    /// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first.
    public func multiply(_ p: MatrixProduct) throws(CUDAError) {
        try context.makeCurrent()
        var alpha = p.alpha, beta = p.beta
        let opB: Int32 = p.transB ? 1 : 0, opA: Int32 = p.transA ? 1 : 0
        let status: Int32
        if p.count == 1 {
            status = cublas.sgemm(handle, opB, opA, Int32(p.n), Int32(p.m), Int32(p.k), &alpha, p.b, Int32(p.ldb),
                                  p.a, Int32(p.lda), &beta, p.c, Int32(p.ldc))
        } else {
            status = cublas.sgemmStridedBatched(handle, opB, opA, Int32(p.n), Int32(p.m), Int32(p.k), &alpha,
                                                p.b, Int32(p.ldb), p.strideB, p.a, Int32(p.lda), p.strideA, &beta,
                                                p.c, Int32(p.ldc), p.strideC, Int32(p.count))
        }
        guard status == 0 else { throw .cublas(call: p.count == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched", code: status) }
    }

    public func synchronize() throws(CUDAError) {
        try context.makeCurrent()
        try context.synchronize()
    }

    private func module(defining kernel: String) throws(CUDAError) -> KernelModule {
        guard let source = sourceOf[kernel] else {
            throw .driver(call: "launch \(kernel)", code: 500, message: "no kernel source defines it")
        }
        if let loaded = modules.withLock({ $0[source.name] }) { return loaded }
        let architecture = context.info.architecture
        let cubin = if let cache { try cache.cubin(for: source, compiler: compiler, architecture: architecture) }
            else { try compiler.compile(source, architecture: architecture) }
        let module = try context.load(cubin, functions: source.functions)
        return modules.withLock { loaded in
            if let earlier = loaded[source.name] { return earlier }
            loaded[source.name] = module
            return module
        }
    }
}
