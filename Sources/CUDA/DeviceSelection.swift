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

    /// What this build's GPU engine does. It trains (every layer, loss, DiffAugment, Adam and
    /// the average on the device; checked against the CPU engine on its CPU emulation in CI)
    /// and generates (the generator, the images' bytes and the class check's judge on the
    /// device; the PNG files on the CPU's cores).
    public static let trainsOnGPU = true
    public static let generatesOnGPU = true
    /// Whether the GPU engine has passed its tests on a real GPU (scripts/device-check): it has,
    /// on an H200 (docs/cuda.md), so `auto` takes the GPU. False would keep `auto` on the CPU.
    public static let checkedOnGPU = true

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

/// What a command computes, for the device choice: the GPU engine may do one and not the other.
public enum GPUWork: Sendable, Equatable {
    case training, generation
}

public enum DeviceSelectionError: Error, Equatable, CustomStringConvertible {
    /// `cuda` was asked for and something it needs is missing.
    case unavailable(request: DeviceRequest, because: CUDAError)
    /// The GPU is there, but this build cannot do `work` on it yet.
    case notSupported(request: DeviceRequest, gpu: String, work: GPUWork)

    public var description: String {
        switch self {
        case .unavailable(let request, let error):
            return "--device \(request): no usable GPU: \(error). Use --device cpu or auto."
        case .notSupported(let request, let gpu, let work):
            return "--device \(request): \(gpu) is usable, but this build of synthd does not yet "
                + "\(work == .training ? "train" : "generate") on a GPU. Use --device cpu or auto."
        }
    }
}

extension DeviceChoice {
    /// The exit status of a command whose GPU request cannot be met (EX_UNAVAILABLE in sysexits.h).
    public static let unavailableExitStatus: Int32 = 69

    /// Decides where `work` runs. `auto` never fails: it falls back to the CPU with the reason.
    public static func choose(_ request: DeviceRequest, for work: GPUWork = .training,
                              probe: @autoclosure () -> CUDAProbe) throws(DeviceSelectionError) -> DeviceChoice {
        let supported = work == .training ? CUDAProbe.trainsOnGPU : CUDAProbe.generatesOnGPU
        switch request {
        case .cpu:
            return DeviceChoice(device: .cpu, reason: "asked for the CPU")
        case .cuda(let ordinal):
            let gpu: CUDADeviceInfo
            do { gpu = try probe().gpu(ordinal) } catch { throw .unavailable(request: request, because: error) }
            guard supported else { throw .notSupported(request: request, gpu: "cuda:\(ordinal) (\(gpu.name))", work: work) }
            return DeviceChoice(device: .cuda(gpu), reason: "asked for cuda:\(ordinal)")
        case .auto:
            let found = probe()
            do {
                let gpu = try found.gpu(0)
                guard supported else {
                    return DeviceChoice(device: .cpu, reason: "found cuda:0 (\(gpu.name)), but this build does not "
                                        + "\(work == .training ? "train" : "generate") on GPUs yet")
                }
                guard CUDAProbe.checkedOnGPU else {
                    return DeviceChoice(device: .cpu, reason: "found cuda:0 (\(gpu.name)), but the GPU engine has not passed its "
                                        + "checks on a GPU yet (--device cuda uses it)")
                }
                return DeviceChoice(device: .cuda(gpu), reason: "found cuda:0 (\(gpu.name))")
            } catch {
                return DeviceChoice(device: .cpu, reason: "no usable GPU: \(error)")
            }
        }
    }

    /// The GPU as a `KernelDevice` (kernels compiled once into `kernelCache`), or nil for the
    /// CPU. Products on TF32 tensor cores by default: on an H200 they make the reference step
    /// 1.4x as fast at batch 64 and 1.6x at 256 as FP32, and 20,000 steps trained with them gave
    /// the same per-class diversity as FP32 (docs/cuda.md).
    public func open(search: CUDALibrarySearch, kernelCache: String?, products: GPUProducts = .tensorFloat32) throws(CUDAError) -> (any KernelDevice)? {
        guard case .cuda(let info) = device else { return nil }
        return try CUDADevice(ordinal: info.ordinal, search: search, cacheFolder: kernelCache, products: products)
    }
}
