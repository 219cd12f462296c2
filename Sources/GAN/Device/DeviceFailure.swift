import CUDA

/// A GPU that failed in the middle of a dataset's work, in the words a user acts on: which
/// dataset, what was asked of which GPU, what the GPU said (for memory: what it had), and
/// what is safe. Training checkpoints from the CPU's model of record after the device has
/// synchronised, and generation publishes only a finished folder, so a failure never leaves a
/// half-written checkpoint or a partial output: the message says what is still there.
public struct DeviceFailure: Error, CustomStringConvertible {
    public let dataset: String
    public let work: GPUWork
    /// The GPU's label ("cuda:0 (NVIDIA H200)").
    public let device: String
    public let error: CUDAError
    /// What the failure left safe, in words ("the last checkpoint (step-1200) is intact").
    public let intact: String

    public init(dataset: String, work: GPUWork, device: String, error: CUDAError, intact: String) {
        self.dataset = dataset
        self.work = work
        self.device = device
        self.error = error
        self.intact = intact
    }

    /// What a training failure leaves: the checkpoint on disk (`id`, "step-1200"; nil: none yet).
    public static func checkpoint(_ id: String?) -> String {
        id.map { "the last checkpoint (\($0)) is intact" } ?? "no checkpoint had been written yet"
    }

    public var description: String {
        let what = work == .training ? "training '\(dataset)'" : "generating images of '\(dataset)'"
        let lost = error.losesContext ? " (the GPU's context is lost: synthd cannot use this GPU again until it restarts)" : ""
        return "\(what) on \(device) failed: \(error)\(lost); \(intact)"
    }
}

extension DeviceFailure {
    /// `body`'s result; a CUDA error from `device` comes out as a `DeviceFailure` naming the
    /// dataset and what is intact (asked only on failure).
    public static func naming<R>(dataset: String, work: GPUWork, on device: (any KernelDevice)?,
                                 intact: () -> String, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as CUDAError {
            guard let device else { throw error }
            throw DeviceFailure(dataset: dataset, work: work, device: device.name, error: error, intact: intact())
        }
    }
}
