import ArgumentParser
import CUDA
import Engine
import Foundation

/// `--device auto|cpu|cuda[:N]`, shared by the commands that train or generate (synthd's and
/// synthd-bench's).
public struct DeviceOption: ParsableArguments {
    @Option(help: ArgumentHelp("Where to compute: \(DeviceRequest.help). auto: the GPU when one is usable, else the CPU.",
                               valueName: "device"))
    public var device = "auto"

    @Option(help: "A folder to look for CUDA's libraries in first (libnvrtc, libcublas; also SYNTHD_CUDA_LIBRARIES).")
    public var cudaLibraries: String?

    @Flag(help: "Plain FP32 matrix products (default: on a GPU, TF32 tensor cores, 10-bit mantissas in and FP32 sums, as PyTorch's convolutions; on a CPU with AMX or AVX512-BF16, bfloat16, 8-bit mantissas in and FP32 sums; docs/cuda.md and docs/performance.md say what that changes).")
    public var fp32 = false

    @Flag(help: "On a GPU, bfloat16 tensor-core products (8-bit mantissas in, FP32 sums; twice TF32's peak) instead of TF32.")
    public var bf16 = false

    @Flag(help: "On a CPU, FP32 products with the 4/2/1 convolutions of training by Winograd F(4x4, 2x2): 39% of their multiplications, ~1e-5 relative rounding (the default where the CPU has neither a bfloat16 kernel faster than FP32 nor an AVX-512 faster than its AVX2, unless --fp32; elsewhere instead of bfloat16 or the FP32 columns path; docs/engine.md).")
    public var winograd = false

    public init() {}

    public func validate() throws {
        guard DeviceRequest(device) != nil else { throw ValidationError("--device must be \(DeviceRequest.help), not '\(device)'") }
        if fp32 && bf16 { throw ValidationError("--fp32 and --bf16 ask for different products: give one") }
        if winograd && bf16 { throw ValidationError("--winograd (FP32 on a CPU) and --bf16 ask for different products: give one") }
    }

    /// The GPU's products as asked: TF32 unless --fp32 or --bf16.
    public var gpuProducts: GPUProducts { fp32 ? .float32 : bf16 ? .bfloat16 : .tensorFloat32 }

    var search: CUDALibrarySearch { CUDALibrarySearch(explicitFolders: cudaLibraries.map { [$0] } ?? []) }

    /// The device for `work`, said on standard error with the reason; exits with
    /// EX_UNAVAILABLE (69) and what is missing when an explicit GPU request cannot be met.
    public func choose(for work: GPUWork = .training) throws -> DeviceChoice {
        do {
            let choice = try DeviceChoice.choose(DeviceRequest(device)!, for: work, probe: CUDAProbe(search: search))
            let products = choice.device == .cpu ? ", \(cpuContext().productsDescription)" : ", \(gpuProducts)"
            FileHandle.standardError.write(Data("device: \(choice.label) (\(choice.reason))\(products)\n".utf8))
            return choice
        } catch {
            FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
            throw ExitCode(DeviceChoice.unavailableExitStatus)
        }
    }

    /// The chosen GPU opened for `work` (nil: the CPU); a GPU that fails to open exits 69 naming why.
    public func open(for work: GPUWork = .training) throws -> (any KernelDevice)? {
        let choice = try choose(for: work)
        do {
            return try choice.open(search: search, kernelCache: Self.kernelCacheFolder, products: gpuProducts)
        } catch {
            FileHandle.standardError.write(Data("synthd: \(choice.label) could not be opened: \(error)\n".utf8))
            throw ExitCode(DeviceChoice.unavailableExitStatus)
        }
    }

    /// The context the command's CPU work runs in: `threads` (default every core), and bfloat16
    /// products (where the CPU has a kernel for them: AMX tiles, AVX512-BF16; elsewhere FP32 with
    /// Winograd convolutions) unless `--fp32` (exact FP32) or `--winograd` (FP32 with Winograd).
    public func cpuContext(threads: Int? = nil) -> ComputeContext {
        let threads = threads ?? ComputeContext.processDefault.threads
        if winograd { return ComputeContext(threads: threads, products: .float32, winogradConvolutions: true) }
        return ComputeContext(threads: threads, products: fp32 ? .float32 : .bfloat16)
    }

    /// Compiled kernels of the command-line tools: $XDG_CACHE_HOME/synthd/kernels, else ~/.cache/synthd/kernels.
    static var kernelCacheFolder: String? {
        let environment = ProcessInfo.processInfo.environment
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty { return cache + "/synthd/kernels" }
        return environment["HOME"].map { $0 + "/.cache/synthd/kernels" }
    }
}
