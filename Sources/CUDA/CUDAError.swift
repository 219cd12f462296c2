/// Why CUDA could not be used, in words that say what is missing or what went wrong.
public enum CUDAError: Error, Equatable, CustomStringConvertible {
    /// A library is not installed (or not where it was looked for).
    case libraryMissing(what: String, tried: [String], reasons: [String])
    /// A library loaded but lacks a function (too old a version).
    case symbolMissing(library: String, symbol: String)
    /// The driver loaded but reports no device (or the requested ordinal does not exist).
    case noDevice(requested: Int, available: Int)
    /// A driver call failed.
    case driver(call: String, code: Int32, message: String)
    /// NVRTC refused a kernel's source; `log` is its compiler output.
    case compilation(kernel: String, log: String)
    case nvrtc(call: String, code: Int32, message: String)
    case cublas(call: String, code: Int32)
    /// Device memory ran out: what was asked for and what the GPU had free.
    case outOfMemory(requestedBytes: Int, freeBytes: Int, totalBytes: Int)

    /// Whether the error leaves the process's CUDA context unusable: CUDA's "sticky" errors
    /// (a kernel that faulted or ran too long, an uncorrectable ECC error, a destroyed context)
    /// make every later call in the context fail the same way, so the GPU is of no more use to
    /// this process. Running out of memory or a kernel that does not compile is not one.
    public var losesContext: Bool {
        guard case .driver(_, let code, _) = self else { return false }
        return Self.contextLosingCodes.contains(code)
    }

    /// CUDA_ERROR_ECC_UNCORRECTABLE (214), _ILLEGAL_ADDRESS (700), _LAUNCH_TIMEOUT (702),
    /// _CONTEXT_IS_DESTROYED (709), _HARDWARE_STACK_ERROR (714) to _LAUNCH_FAILED (719),
    /// _UNKNOWN (999).
    static let contextLosingCodes: Set<Int32> = [214, 700, 702, 709, 714, 715, 716, 717, 718, 719, 999]

    public var description: String {
        switch self {
        case .libraryMissing(let what, let tried, let reasons):
            let first = reasons.first.map { " (\($0))" } ?? ""
            return "\(what) not found: tried \(tried.prefix(4).joined(separator: ", "))\(tried.count > 4 ? ", ..." : "")\(first)"
        case .symbolMissing(let library, let symbol):
            return "\(library) has no \(symbol): too old a CUDA version (synthd needs CUDA 12 or newer)"
        case .noDevice(let requested, let available):
            return available == 0 ? "the NVIDIA driver loaded but sees no GPU"
                : "no GPU \(requested): this machine has \(available) (cuda:0...cuda:\(available - 1))"
        case .driver(let call, let code, let message):
            return "CUDA driver call \(call) failed: \(message) (\(code))"
        case .compilation(let kernel, let log):
            return "NVRTC could not compile \(kernel):\n\(log)"
        case .nvrtc(let call, let code, let message):
            return "NVRTC call \(call) failed: \(message) (\(code))"
        case .cublas(let call, let code):
            return "cuBLAS call \(call) failed with status \(code)"
        case .outOfMemory(let requested, let free, let total):
            return "GPU memory exhausted: asked for \(requested >> 20) MiB with \(free >> 20) MiB free of \(total >> 20) MiB"
        }
    }
}
