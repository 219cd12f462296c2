/// What `--device` and `[service] device` ask for.
public enum DeviceRequest: Sendable, Equatable, CustomStringConvertible {
    /// The GPU when the driver loads and a device exists and this build can train on it, else the CPU.
    case auto
    case cpu
    /// GPU N (`cuda` alone is `cuda:0`).
    case cuda(Int)

    public init?(_ text: String) {
        switch text {
        case "auto": self = .auto
        case "cpu": self = .cpu
        case "cuda": self = .cuda(0)
        default:
            guard text.hasPrefix("cuda:"), let ordinal = Int(text.dropFirst(5)), ordinal >= 0 else { return nil }
            self = .cuda(ordinal)
        }
    }

    public static let help = "auto, cpu, cuda or cuda:N"

    public var description: String {
        switch self {
        case .auto: return "auto"
        case .cpu: return "cpu"
        case .cuda(let ordinal): return "cuda:\(ordinal)"
        }
    }
}

/// Where a job runs, and why there.
public struct DeviceChoice: Sendable, Equatable {
    public enum Device: Sendable, Equatable {
        case cpu
        case cuda(CUDADeviceInfo)
    }

    public let device: Device
    /// Why, in words, for the log and `synthd status` ("no NVIDIA driver: ...").
    public let reason: String

    public var label: String {
        switch device {
        case .cpu: return "cpu"
        case .cuda(let info): return "cuda:\(info.ordinal) (\(info.name))"
        }
    }
}

/// What this machine offers for CUDA: the driver, its GPUs, NVRTC and cuBLAS, each found or
/// with the reason it was not. Loading is cheap (dlopen); nothing is allocated on a GPU.
public struct CUDAProbe: Sendable {
    public let driver: Result<CUDADriver, CUDAError>
    public let nvrtc: Result<NVRTC, CUDAError>
    public let cublas: Result<CUBLASLibrary, CUDAError>

    public init(search: CUDALibrarySearch = CUDALibrarySearch()) {
        driver = Result { () throws(CUDAError) in try CUDADriver(search: search) }
        nvrtc = Result { () throws(CUDAError) in try NVRTC(search: search) }
        cublas = Result { () throws(CUDAError) in try CUBLASLibrary(search: search) }
    }

    /// Whether this build trains and generates on a GPU. The CUDA engine is being built in
    /// steps (loading, kernels, then layers and the captured training step); until the last
    /// step lands, `auto` stays on the CPU and `cuda` says so.
    public static let trainsOnGPU = false

    /// The GPU `ordinal` with everything a job needs, or the first thing missing.
    public func gpu(_ ordinal: Int) throws(CUDAError) -> CUDADeviceInfo {
        let info = try driver.get().device(ordinal)
        _ = try nvrtc.get()
        _ = try cublas.get()
        return info
    }

    /// Lines for `synthd info`: each library found (with its path) or why not, and the GPUs.
    public var report: [String] {
        var lines: [String] = []
        switch driver {
        case .success(let driver):
            let version = "\(driver.version / 1000).\(driver.version % 1000 / 10)"
            lines.append("cuda driver: \(driver.libraryPath), CUDA \(version), \(driver.deviceCount) GPUs")
            for ordinal in 0..<driver.deviceCount {
                if let info = try? driver.device(ordinal) {
                    lines.append("  cuda:\(ordinal): \(info.name), sm_\(info.architecture), \(info.totalMemory >> 30) GiB, \(info.multiprocessors) SMs")
                }
            }
        case .failure(let error): lines.append("cuda driver: \(error)")
        }
        switch nvrtc {
        case .success(let nvrtc): lines.append("nvrtc: \(nvrtc.libraryPath), version \(nvrtc.version.major).\(nvrtc.version.minor)")
        case .failure(let error): lines.append("nvrtc: \(error)")
        }
        switch cublas {
        case .success(let cublas): lines.append("cublas: \(cublas.libraryPath)")
        case .failure(let error): lines.append("cublas: \(error)")
        }
        return lines
    }
}

public enum DeviceSelectionError: Error, Equatable, CustomStringConvertible {
    /// `cuda` was asked for and something it needs is missing.
    case unavailable(request: DeviceRequest, because: CUDAError)
    /// The GPU is there, but this build cannot train on it yet.
    case notSupported(request: DeviceRequest, gpu: String)

    public var description: String {
        switch self {
        case .unavailable(let request, let error):
            return "--device \(request): no usable GPU: \(error). Use --device cpu or auto."
        case .notSupported(let request, let gpu):
            return "--device \(request): \(gpu) is usable, but this build of synthd does not yet train or generate on a GPU "
                + "(its CUDA engine loads, compiles and checks kernels only: synthd info). Use --device cpu or auto."
        }
    }
}

extension DeviceChoice {
    /// The exit status of a command whose GPU request cannot be met (EX_UNAVAILABLE in sysexits.h).
    public static let unavailableExitStatus: Int32 = 69

    /// Decides where work runs. `auto` never fails: it falls back to the CPU with the reason.
    public static func choose(_ request: DeviceRequest, probe: @autoclosure () -> CUDAProbe) throws(DeviceSelectionError) -> DeviceChoice {
        switch request {
        case .cpu:
            return DeviceChoice(device: .cpu, reason: "asked for the CPU")
        case .cuda(let ordinal):
            let gpu: CUDADeviceInfo
            do { gpu = try probe().gpu(ordinal) } catch { throw .unavailable(request: request, because: error) }
            guard CUDAProbe.trainsOnGPU else { throw .notSupported(request: request, gpu: "cuda:\(ordinal) (\(gpu.name))") }
            return DeviceChoice(device: .cuda(gpu), reason: "asked for cuda:\(ordinal)")
        case .auto:
            let found = probe()
            do {
                let gpu = try found.gpu(0)
                guard CUDAProbe.trainsOnGPU else {
                    return DeviceChoice(device: .cpu, reason: "found cuda:0 (\(gpu.name)), but this build does not train on GPUs yet")
                }
                return DeviceChoice(device: .cuda(gpu), reason: "found cuda:0 (\(gpu.name))")
            } catch {
                return DeviceChoice(device: .cpu, reason: "no usable GPU: \(error)")
            }
        }
    }
}
