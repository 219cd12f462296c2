import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A GPU as a `KernelDevice`: the driver's primary context, the engine's kernels compiled by
/// NVRTC at first use (one module per source, cached on disk by `KernelCache`), and cuBLAS
/// for the matrix products.
///
/// Each thread that computes gets a lane of its own: a stream and a cuBLAS handle bound to it.
/// Launches, products and copies go, in order, to the calling thread's lane, and `synchronize`
/// waits for that lane alone, so that the daemon's jobs on their
/// worker threads share the GPU without sharing a stream (a capture records everything issued
/// to its stream, from any thread) or a cuBLAS handle (not safe to use from two threads at
/// once); `capture` records a lane's work into a CUDA graph that `replay` launches at once.
/// The lanes' streams are non-blocking and nothing waits for the whole context: a copy or a
/// synchronisation on the legacy default stream would wait for every stream, a capturing one
/// too, and the driver then invalidates that capture (seen on an H200: another job's read
/// during a capture failed it with error 901).
public final class CUDADevice: KernelDevice, @unchecked Sendable {
    public let context: CUDAContext
    public let name: String
    private let compiler: NVRTC
    private let cache: KernelCache?
    private let cublas: CUBLASLibrary
    public let products: GPUProducts
    private let lanes = Mutex<[UInt: Lane]>([:])
    /// Which source defines each kernel, and the sources loaded so far.
    private let sourceOf: [String: KernelSource]
    private let modules = Mutex<[String: KernelModule]>([:])

    /// `products`: how the matrix products round their operands (`GPUProducts`).
    public init(ordinal: Int = 0, search: CUDALibrarySearch = CUDALibrarySearch(), cacheFolder: String? = nil,
                products: GPUProducts = .float32) throws(CUDAError) {
        context = try CUDAContext(driver: CUDADriver(search: search), ordinal: ordinal)
        name = "\(context.info.name) (sm_\(context.info.architecture))"
        compiler = try NVRTC(search: search)
        cache = cacheFolder.map { KernelCache(folder: $0) }
        cublas = try CUBLASLibrary(search: search)
        self.products = products
        var sourceOf: [String: KernelSource] = [:]
        for source in AllKernels.sources { for function in source.functions { sourceOf[function] = source } }
        self.sourceOf = sourceOf
    }

    /// A thread's stream, cuBLAS handle bound to it, and cuBLAS's workspace (set by us, so
    /// that nothing is allocated inside a capture). Kept for the device's life: the daemon's
    /// worker threads are few and long-lived.
    final class Lane: @unchecked Sendable {
        let stream: OpaquePointer?
        let handle: OpaquePointer?
        let workspace: UInt64

        init(stream: OpaquePointer?, handle: OpaquePointer?, workspace: UInt64) {
            self.stream = stream
            self.handle = handle
            self.workspace = workspace
        }
    }

    /// 32 MiB, what cuBLAS documents as enough on Hopper.
    static let workspaceBytes = 32 << 20

    /// The calling thread's lane, made at its first use.
    private func lane() throws(CUDAError) -> Lane {
        let thread = UInt(pthread_self())
        if let lane = lanes.withLock({ $0[thread] }) { return lane }
        let driver = context.driver
        var stream: OpaquePointer?
        try driver.check("cuStreamCreate", driver.streamCreate(&stream, 1))  // CU_STREAM_NON_BLOCKING
        var handle: OpaquePointer?
        let created = cublas.create(&handle)
        guard created == 0 else { throw .cublas(call: "cublasCreate", code: created) }
        let bound = cublas.setStream(handle, stream)
        guard bound == 0 else { throw .cublas(call: "cublasSetStream", code: bound) }
        let workspace = try context.allocateAddress(bytes: Self.workspaceBytes)
        let set = cublas.setWorkspace(handle, workspace, Self.workspaceBytes)
        guard set == 0 else { throw .cublas(call: "cublasSetWorkspace", code: set) }
        if products == .tensorFloat32 {
            let mode = cublas.setMathMode(handle, 3)  // CUBLAS_TF32_TENSOR_OP_MATH
            guard mode == 0 else { throw .cublas(call: "cublasSetMathMode", code: mode) }
        }
        let lane = Lane(stream: stream, handle: handle, workspace: workspace)
        lanes.withLock { $0[thread] = lane }
        return lane
    }

    deinit {
        for lane in lanes.withLock({ Array($0.values) }) {
            _ = cublas.destroy(lane.handle)
            _ = context.driver.streamDestroy(lane.stream)
            context.free(lane.workspace)
        }
    }

    // Every entry point binds the context to the calling thread first: the daemon's jobs run
    // on worker threads of their own (cuCtxSetCurrent costs well under a launch).

    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        try context.makeCurrent()
        return DeviceBuffer(device: self, address: try context.allocateAddress(bytes: bytes), bytes: bytes)
    }

    public func free(_ address: UInt64) { context.free(address) }

    public func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws(CUDAError) {
        try context.makeCurrent()
        try context.write(bytes, to: address, on: lane().stream)
    }

    public func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws(CUDAError) {
        try context.makeCurrent()
        try context.read(address, into: bytes, on: lane().stream)
    }

    public func launch(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        try context.makeCurrent()
        try module(defining: kernel).launch(kernel, grid: grid, block: block, arguments, stream: lane().stream)
    }

    /// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first.
    public func multiply(_ p: MatrixProduct) throws(CUDAError) {
        try context.makeCurrent()
        let handle = try lane().handle
        var alpha = p.alpha, beta = p.beta
        let opB: Int32 = p.transB ? 1 : 0, opA: Int32 = p.transA ? 1 : 0
        let status: Int32
        if products == .bfloat16 {
            let data = CUBLASLibrary.float32Data, compute = CUBLASLibrary.computeFast16BF, algorithm = CUBLASLibrary.defaultAlgorithm
            status = p.count == 1
                ? cublas.gemmEx(handle, opB, opA, Int32(p.n), Int32(p.m), Int32(p.k), &alpha, p.b, data, Int32(p.ldb),
                                p.a, data, Int32(p.lda), &beta, p.c, data, Int32(p.ldc), compute, algorithm)
                : cublas.gemmStridedBatchedEx(handle, opB, opA, Int32(p.n), Int32(p.m), Int32(p.k), &alpha,
                                              p.b, data, Int32(p.ldb), p.strideB, p.a, data, Int32(p.lda), p.strideA, &beta,
                                              p.c, data, Int32(p.ldc), p.strideC, Int32(p.count), compute, algorithm)
            guard status == 0 else { throw .cublas(call: p.count == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx", code: status) }
            return
        }
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

    /// Waits for the calling thread's work (its lane), not for other threads' (see above).
    public func synchronize() throws(CUDAError) {
        try context.makeCurrent()
        try context.driver.check("cuStreamSynchronize", context.driver.streamSynchronize(lane().stream))
    }

    public func capture(_ body: () throws(CUDAError) -> Void) throws(CUDAError) -> any CapturedWork {
        try context.makeCurrent()
        let driver = context.driver, stream = try lane().stream
        // Thread-local mode: only this thread's unsafe calls (allocations) break the capture.
        try driver.check("cuStreamBeginCapture", driver.streamBeginCapture(stream, 1))
        var failure: CUDAError?
        do { try body() } catch { failure = error }
        var graph: OpaquePointer?
        let ended = driver.streamEndCapture(stream, &graph)
        if let failure { if graph != nil { _ = driver.graphDestroy(graph) }; throw failure }
        try driver.check("cuStreamEndCapture", ended)
        defer { _ = driver.graphDestroy(graph) }
        var nodes = 0
        _ = driver.graphGetNodes(graph, nil, &nodes)
        var executable: OpaquePointer?
        try driver.check("cuGraphInstantiate", driver.graphInstantiate(&executable, graph, 0))
        return CUDAGraph(driver: driver, executable: executable, operationCount: nodes)
    }

    public func replay(_ work: any CapturedWork) throws(CUDAError) {
        guard let graph = work as? CUDAGraph else { preconditionFailure("not this device's capture") }
        try context.makeCurrent()
        try context.driver.check("cuGraphLaunch", context.driver.graphLaunch(graph.executable, lane().stream))
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

/// An instantiated CUDA graph, destroyed with the object.
final class CUDAGraph: CapturedWork, @unchecked Sendable {
    let driver: CUDADriver
    let executable: OpaquePointer?
    let operationCount: Int

    init(driver: CUDADriver, executable: OpaquePointer?, operationCount: Int) {
        self.driver = driver
        self.executable = executable
        self.operationCount = operationCount
    }

    deinit { _ = driver.graphExecDestroy(executable) }
}
