import CUDA
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `KernelDevice` on the CPU, for machines without a GPU (CI): each kernel source is compiled
/// by g++ as C++20 with an emulation of CUDA's thread model (`EmulationRuntime`) into a shared
/// library, loaded in this process; device memory is host memory; matrix products go to the
/// engine's BLAS. Everything written against `KernelDevice` — single kernels, the GPU layers,
/// the whole training step — runs here unchanged and is compared with the CPU engine.
///
/// What it cannot show (the GPU's memory model, launch limits, speed) the GPU tests do on the
/// device machine. Fresh allocations are filled with NaN bytes, so a kernel that reads memory
/// nobody wrote shows it, and end at an inaccessible page, so one that reads or writes past a
/// buffer's end stops there.
public final class EmulatedDevice: KernelDevice, @unchecked Sendable {
    public let name = "CPU emulation (g++)"

    public static var compilerPath: String? {
        ["/usr/bin/g++", "/usr/local/bin/g++"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    public init() {}

    /// Makes a test's own kernels launchable on every emulated device (the engine's are known
    /// from `AllKernels`).
    public static func register(_ source: KernelSource) { EmulationRuntime.shared.register(source) }

    /// What a capture records, in order.
    enum Operation {
        case launch(kernel: String, grid: Int, block: Int, arguments: [KernelArgument])
        case product(MatrixProduct)
    }

    public final class Recording: CapturedWork, @unchecked Sendable {
        let operations: [Operation]
        init(_ operations: [Operation]) { self.operations = operations }
        public var operationCount: Int { operations.count }
        /// What was recorded, in order: each launch's kernel name, "product" for each matrix product.
        public var operationNames: [String] {
            operations.map { operation in
                switch operation {
                case .launch(let kernel, _, _, _): kernel
                case .product: "product"
                }
            }
        }
    }

    /// Captures under way, by thread (as a CUDA capture records one stream, and each thread
    /// has its own: see `CUDADevice`'s lanes).
    private let recordingLock = NSLock()
    private var recordings: [UInt: [Operation]] = [:]

    private static var thread: UInt { UInt(pthread_self()) }

    /// Whether the calling thread is capturing (then `operation` is recorded instead of run).
    private func record(_ operation: Operation) -> Bool {
        recordingLock.withLock {
            guard recordings[Self.thread] != nil else { return false }
            recordings[Self.thread]!.append(operation)
            return true
        }
    }

    private func refuseWhileCapturing(_ call: String) throws(CUDAError) {
        if recordingLock.withLock({ recordings[Self.thread] != nil }) {
            throw .driver(call: call, code: 900, message: "operation not permitted when stream is capturing")
        }
    }

    public func capture(_ body: () throws(CUDAError) -> Void) throws(CUDAError) -> any CapturedWork {
        recordingLock.withLock { precondition(recordings[Self.thread] == nil, "captures do not nest"); recordings[Self.thread] = [] }
        var failure: CUDAError?
        do { try body() } catch { failure = error }
        let operations = recordingLock.withLock { recordings.removeValue(forKey: Self.thread)! }
        if let failure { throw failure }
        return Recording(operations)
    }

    public func replay(_ work: any CapturedWork) throws(CUDAError) {
        guard let recording = work as? Recording else { preconditionFailure("not this device's capture") }
        for operation in recording.operations {
            switch operation {
            case .launch(let kernel, let grid, let block, let arguments): try run(kernel, grid: grid, block: block, arguments)
            case .product(let product): compute(product)
            }
        }
    }

    /// Each allocation ends where an inaccessible page begins, so a kernel that reads or writes
    /// past a buffer's end stops the process there (SIGSEGV in the test that launched it) instead
    /// of reading a neighbour's values, as it may on a GPU without an error. The end is the
    /// size rounded up to 4 bytes (a float's), so the start stays aligned for every element type.
    /// The rest of the first page, before the start, is NaN bytes too (a kernel that reads
    /// before a buffer reads NaN), and is checked when the buffer is freed (one that wrote there
    /// fails then).
    private let mappingsLock = NSLock()
    private var mappings: [UInt64: (base: UnsafeMutableRawPointer, length: Int)] = [:]
    private static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        try refuseWhileCapturing("cuMemAlloc")
        let used = (max(bytes, 1) + 3) / 4 * 4
        let dataPages = (used + Self.page - 1) / Self.page, mapped = (dataPages + 1) * Self.page
        guard let base = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED,
              mprotect(base + dataPages * Self.page, Self.page, PROT_NONE) == 0 else {
            throw .outOfMemory(requestedBytes: bytes, freeBytes: 0, totalBytes: 0)
        }
        let pointer = base + dataPages * Self.page - used
        base.initializeMemory(as: UInt8.self, repeating: 0xFF, count: dataPages * Self.page)
        let address = UInt64(UInt(bitPattern: pointer))
        mappingsLock.withLock { mappings[address] = (base, mapped) }
        return DeviceBuffer(device: self, address: address, bytes: bytes)
    }

    public func free(_ address: UInt64) {
        guard let mapping = mappingsLock.withLock({ mappings.removeValue(forKey: address) }) else {
            fatalError("free of \(address), which this device did not allocate")
        }
        let before = UnsafeRawBufferPointer(start: mapping.base, count: Int(address) - Int(UInt(bitPattern: mapping.base)))
        // fatalError, not precondition: its message stays in a release build (the tests').
        if !before.allSatisfy({ $0 == 0xFF }) { fatalError("a kernel wrote before the start of the buffer at \(address) (freed now)") }
        munmap(mapping.base, mapping.length)
    }

    public func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws(CUDAError) {
        try refuseWhileCapturing("cuMemcpyHtoD")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        Self.pointer(address).copyMemory(from: base, byteCount: bytes.count)
    }

    public func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws(CUDAError) {
        try refuseWhileCapturing("cuMemcpyDtoH")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        base.copyMemory(from: Self.pointer(address), byteCount: bytes.count)
    }

    public func launch(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        if record(.launch(kernel: kernel, grid: grid, block: block, arguments: arguments)) { return }
        try run(kernel, grid: grid, block: block, arguments)
    }

    private func run(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        precondition(grid > 0 && block > 0 && block <= 1024, "launch \(kernel): grid \(grid), block \(block)")
        let compiled = try EmulationRuntime.shared.entry(kernel)
        try Self.check(arguments, against: compiled.parameterSizes, of: kernel)
        try KernelArgument.withParameterArray(arguments) { parameters in
            // The emulation's thread state is the library's globals: one launch at a time.
            EmulationRuntime.shared.launchLock.withLock { compiled.entry(UInt32(grid), UInt32(block), parameters) }
        }
    }

    /// Fails a launch whose arguments differ from the kernel's parameters in number or in
    /// size (see `EmulationRuntime`): on a GPU it would run on garbage.
    static func check(_ arguments: [KernelArgument], against sizes: [Int], of kernel: String) throws(CUDAError) {
        let given = arguments.map { argument -> Int in
            switch argument {
            case .buffer, .address, .int64, .uint64: 8
            case .float, .int32: 4
            case .int32s(let fields): 4 * fields.count
            }
        }
        guard given != sizes else { return }
        let message = given.count != sizes.count
            ? "\(given.count) arguments for \(sizes.count) parameters"
            : zip(given, sizes).enumerated().first { $1.0 != $1.1 }.map { "argument \($0) is \($1.0) bytes, its parameter \($1.1)" } ?? ""
        throw .driver(call: "cuLaunchKernel(\(kernel))", code: 1, message: "as emulated: \(message) (a GPU would read garbage)")
    }

    public func multiply(_ p: MatrixProduct) throws(CUDAError) {
        if record(.product(p)) { return }
        compute(p)
    }

    private func compute(_ p: MatrixProduct) {
        for index in 0..<p.count {
            let a = Self.floats(p.a) + index * p.strideA, b = Self.floats(p.b) + index * p.strideB
            BLAS.gemm(transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: a, lda: p.lda,
                      b: b, ldb: p.ldb, beta: p.beta, c: Self.floats(p.c) + index * p.strideC, ldc: p.ldc)
        }
    }

    public func synchronize() throws(CUDAError) {}

    static func pointer(_ address: UInt64) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(address))! }
    static func floats(_ address: UInt64) -> UnsafeMutablePointer<Float> { pointer(address).assumingMemoryBound(to: Float.self) }
}
