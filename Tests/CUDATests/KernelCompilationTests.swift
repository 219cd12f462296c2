import CUDA
import Foundation
import Testing

/// NVRTC, when this machine has it: CI installs it from PyPI (the `nvidia-cuda-nvrtc` wheel,
/// no GPU needed; see scripts/setup) and scripts/test points `SYNTHD_CUDA_LIBRARIES` at it.
let compiler: Result<NVRTC, CUDAError> = Result { () throws(CUDAError) in try NVRTC() }
var compilerMissing: String {
    if case .failure(let error) = compiler { return "\(error)" }
    return ""
}

/// The H100/H200's architecture: what the GPU machine runs.
let hopper = 90

@Suite struct KernelCompilationTests {
    /// In CI a missing NVRTC is a failure, not a skip: every kernel must be compiled there.
    @Test func nvrtcIsAvailableInCI() {
        guard ProcessInfo.processInfo.environment["CI"] != nil else { return }
        if case .failure(let error) = compiler { Issue.record("CI must compile the CUDA kernels, but \(error)") }
    }

    /// Every kernel source compiles for the GPU machine's architecture and for the oldest one
    /// NVRTC supports, to machine code that defines each function the engine looks up.
    @Test(.enabled(if: (try? compiler.get()) != nil, "NVRTC not found (scripts/setup installs it): \(compilerMissing)"),
          arguments: AllKernels.sources)
    func everyKernelCompiles(_ source: KernelSource) throws {
        let nvrtc = try compiler.get()
        let architectures = Set([hopper, nvrtc.supportedArchitectures.min() ?? hopper])
        for architecture in architectures.sorted() {
            let cubin = try nvrtc.compile(source, architecture: architecture)
            #expect(cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "\(source.name) sm_\(architecture): an ELF file")
            for function in source.functions {
                #expect(cubin.contains(subsequence: Array(function.utf8) + [0]), "\(source.name) sm_\(architecture) lacks \(function)")
            }
        }
    }

    /// A source that does not compile is an error that names it and carries NVRTC's log.
    @Test(.enabled(if: (try? compiler.get()) != nil, "NVRTC not found: \(compilerMissing)"))
    func aBrokenKernelReportsNVRTCsLog() throws {
        let broken = KernelSource(name: "broken.cu", code: "extern \"C\" __global__ void f(float* x) { x[0] = undefined_name; }",
                                  functions: ["f"])
        do {
            _ = try compiler.get().compile(broken, architecture: hopper)
            Issue.record("a broken kernel compiled")
        } catch {
            #expect(error.description.hasPrefix("NVRTC could not compile broken.cu:"), "\(error)")
            #expect(error.description.contains("undefined_name"), "\(error)")
        }
    }

    /// Compiled once, then read from the cache; another architecture or source is another file.
    @Test(.enabled(if: (try? compiler.get()) != nil, "NVRTC not found: \(compilerMissing)"))
    func compiledKernelsAreCachedBySourceVersionAndArchitecture() throws {
        let nvrtc = try compiler.get()
        let folder = NSTemporaryDirectory() + "synthd-kernels-\(UUID().uuidString)/nested"
        defer { try? FileManager.default.removeItem(atPath: (folder as NSString).deletingLastPathComponent) }
        let cache = KernelCache(folder: folder)
        let source = ElementwiseKernels.source
        let path = cache.path(for: source, nvrtcVersion: nvrtc.version, architecture: hopper)
        #expect(path.hasPrefix(folder + "/elementwise-sm90-") && path.hasSuffix(".cubin"))
        #expect(cache.path(for: source, nvrtcVersion: nvrtc.version, architecture: 80) != path)
        #expect(cache.path(for: source, nvrtcVersion: (nvrtc.version.major, nvrtc.version.minor + 1), architecture: hopper) != path)
        let edited = KernelSource(name: source.name, code: source.code + "\n", functions: source.functions)
        #expect(cache.path(for: edited, nvrtcVersion: nvrtc.version, architecture: hopper) != path)

        let first = try cache.cubin(for: source, compiler: nvrtc, architecture: hopper)
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == first)
        // A cached file is what comes back (marked, to tell it from a fresh compilation).
        try Data(first + [42]).write(to: URL(fileURLWithPath: path))
        #expect(try cache.cubin(for: source, compiler: nvrtc, architecture: hopper) == first + [42])
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { start in self[start..<(start + subsequence.count)].elementsEqual(subsequence) }
    }
}
