import CUDA
import Foundation

/// Where the daemon's jobs compute, shared by its workers: a GPU, or the CPU; and what a GPU
/// failure changes for the jobs after it.
///
/// A job whose GPU fails (memory runs out, a kernel does not compile on this driver, the
/// context is lost) is retried at once on the CPU when the configuration says `auto` (the user
/// asked for the work, not for a GPU), and fails, to be retried later, when it names `cuda`.
/// A failure that loses the context (see `CUDAError.losesContext`) would fail every later call
/// too: under `auto` the GPU is retired and the remaining jobs run on the CPU until synthd
/// restarts, instead of each failing on it first.
public final class ComputeDevice: @unchecked Sendable {
    /// What the configuration asked for.
    public let request: DeviceRequest
    private let lock = NSLock()
    private var gpu: (any KernelDevice)?
    private var label: String

    /// `label`: how `synthd status` names it ("cuda:0 (NVIDIA H200)", "cpu").
    public init(_ gpu: (any KernelDevice)?, label: String, request: DeviceRequest) {
        self.gpu = gpu
        self.label = label
        self.request = request
    }

    public static func cpu() -> ComputeDevice { ComputeDevice(nil, label: "cpu", request: .cpu) }

    /// The device for the next job (nil: the CPU) and its label.
    public var current: (gpu: (any KernelDevice)?, label: String) { lock.withLock { (gpu, label) } }

    /// Whether a job whose GPU failed is retried on the CPU.
    public var retriesOnCPU: Bool { request == .auto }

    /// Notes that a job's GPU failed with `error`. Returns whether the GPU is retired (a lost
    /// context under `auto`): the next jobs get the CPU.
    @discardableResult
    public func failed(_ error: CUDAError) -> Bool {
        guard error.losesContext, retriesOnCPU else { return false }
        return lock.withLock {
            guard gpu != nil else { return false }
            gpu = nil
            label = "cpu (the GPU failed: \(error))"
            return true
        }
    }
}
