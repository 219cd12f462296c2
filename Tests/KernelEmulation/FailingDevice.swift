import CUDA
import Foundation

/// A `KernelDevice` that fails as a GPU does, for the tests of what a GPU failure leaves
/// behind: it passes everything to `inner` until its fault strikes, then throws the fault's
/// error. A lost context (an illegal address, a failed launch) is sticky, as on a GPU: every
/// call after it fails too; running out of memory fails that allocation only.
public final class FailingDevice: KernelDevice, @unchecked Sendable {
    public enum Fault: Sendable {
        /// The allocation after `allocations` successful ones finds the GPU full.
        case outOfMemory(afterAllocations: Int)
        /// The launch (or product, or replay) after `operations` successful ones loses the context.
        case lostContext(afterOperations: Int)
    }

    public let inner: any KernelDevice
    public let fault: Fault
    public var name: String { "failing \(inner.name)" }
    private let lock = NSLock()
    private var allocations = 0, operations = 0, lost = false
    private var innerBuffers: [UInt64: DeviceBuffer] = [:]
    /// Launches, products and replays passed on.
    public var operationsRun: Int { lock.withLock { lost ? operations - 1 : operations } }
    /// Calls refused after the fault struck (a retired GPU gets none).
    public private(set) var refusedCalls = 0

    public init(_ inner: any KernelDevice, fault: Fault) {
        self.inner = inner
        self.fault = fault
    }

    public static let lostContextError = CUDAError.driver(call: "cuLaunchKernel", code: 700,
                                                          message: "an illegal memory access was encountered")

    /// Throws if the context is lost, or if this call is the one the fault strikes.
    private func check(allocation: Bool = false, operation: Bool = false) throws(CUDAError) {
        let error: CUDAError? = lock.withLock {
            if lost { refusedCalls += 1; return Self.lostContextError }
            switch fault {
            case .outOfMemory(let after) where allocation:
                allocations += 1
                if allocations > after { refusedCalls += 1; return .outOfMemory(requestedBytes: 64 << 20, freeBytes: 3 << 20, totalBytes: 80 << 30) }
            case .lostContext(let after) where operation:
                operations += 1
                if operations > after { lost = true; return Self.lostContextError }
            default: break
            }
            return nil
        }
        if let error { throw error }
    }

    /// The layers reach the device through their buffers (`DeviceBuffer.device`): buffers are
    /// this device's, each holding the inner device's allocation until it is freed.
    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        try check(allocation: true)
        let held = try inner.allocate(bytes: bytes)
        lock.withLock { innerBuffers[held.address] = held }
        return DeviceBuffer(device: self, address: held.address, bytes: bytes)
    }

    public func free(_ address: UInt64) { _ = lock.withLock { innerBuffers.removeValue(forKey: address) } }

    public func write(_ bytes: UnsafeRawBufferPointer, to address: UInt64) throws(CUDAError) {
        try check()
        try inner.write(bytes, to: address)
    }

    public func read(_ address: UInt64, into bytes: UnsafeMutableRawBufferPointer) throws(CUDAError) {
        try check()
        try inner.read(address, into: bytes)
    }

    public func launch(_ kernel: String, grid: Int, block: Int, _ arguments: [KernelArgument]) throws(CUDAError) {
        try check(operation: true)
        try inner.launch(kernel, grid: grid, block: block, arguments)
    }

    public func multiply(_ product: MatrixProduct) throws(CUDAError) {
        try check(operation: true)
        try inner.multiply(product)
    }

    public func synchronize() throws(CUDAError) {
        try check()
        try inner.synchronize()
    }

    public func capture(_ body: () throws(CUDAError) -> Void) throws(CUDAError) -> any CapturedWork {
        try check()
        return try inner.capture(body)
    }

    public func replay(_ work: any CapturedWork) throws(CUDAError) {
        try check(operation: true)
        try inner.replay(work)
    }
}
