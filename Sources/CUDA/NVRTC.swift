#if canImport(Glibc)
import Glibc
#endif

/// One CUDA C source of the engine's own kernels: `extern "C" __global__` functions, compiled
/// at run time by NVRTC (no CUDA toolkit at build time).
public struct KernelSource: Sendable, Equatable, CustomStringConvertible {
    /// Names the source in errors and in the cache (`elementwise.cu`).
    public let name: String
    public let code: String
    /// The `__global__` functions it defines (looked up after loading).
    public let functions: [String]

    /// The name (test logs and messages need no pages of CUDA C).
    public var description: String { name }

    public init(name: String, code: String, functions: [String]) {
        self.name = name
        self.code = code
        self.functions = functions
    }
}

/// NVRTC, loaded at run time: compiles kernel sources to a CUBIN for one GPU architecture.
///
/// A CUBIN (machine code for `sm_XY`) rather than PTX: the driver loads it without its own
/// JIT, and a newer NVRTC than the driver does not produce PTX the driver cannot read.
public final class NVRTC: @unchecked Sendable {
    private let library: DynamicLibrary
    public let version: (major: Int, minor: Int)
    public var libraryPath: String { library.path }

    typealias Program = OpaquePointer?
    private let createProgram: @convention(c) (UnsafeMutablePointer<Program>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
                                               UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private let compileProgram: @convention(c) (Program, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    private let destroyProgram: @convention(c) (UnsafeMutablePointer<Program>) -> Int32
    private let getLogSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
    private let getLog: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32
    private let getCUBINSize: @convention(c) (Program, UnsafeMutablePointer<Int>) -> Int32
    private let getCUBIN: @convention(c) (Program, UnsafeMutablePointer<CChar>) -> Int32
    private let errorString: @convention(c) (Int32) -> UnsafePointer<CChar>?
    private let supportedCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    private let supported: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32

    /// The library names NVRTC has had (13 first: the GPU machines run CUDA 13).
    static let names = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"]

    public init(search: CUDALibrarySearch = CUDALibrarySearch()) throws(CUDAError) {
        library = try DynamicLibrary(search.candidates(Self.names), what: "NVRTC (libnvrtc.so, the CUDA run-time compiler)")
        Self.preloadBuiltins(besides: library.path)
        createProgram = try library.function("nvrtcCreateProgram", as: type(of: createProgram))
        compileProgram = try library.function("nvrtcCompileProgram", as: type(of: compileProgram))
        destroyProgram = try library.function("nvrtcDestroyProgram", as: type(of: destroyProgram))
        getLogSize = try library.function("nvrtcGetProgramLogSize", as: type(of: getLogSize))
        getLog = try library.function("nvrtcGetProgramLog", as: type(of: getLog))
        getCUBINSize = try library.function("nvrtcGetCUBINSize", as: type(of: getCUBINSize))
        getCUBIN = try library.function("nvrtcGetCUBIN", as: type(of: getCUBIN))
        errorString = try library.function("nvrtcGetErrorString", as: type(of: errorString))
        supportedCount = try library.function("nvrtcGetNumSupportedArchs", as: type(of: supportedCount))
        supported = try library.function("nvrtcGetSupportedArchs", as: type(of: supported))
        let versionCall = try library.function("nvrtcVersion", as: (@convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32).self)
        var major: Int32 = 0, minor: Int32 = 0
        _ = versionCall(&major, &minor)
        version = (Int(major), Int(minor))
    }

    /// NVRTC dlopens `libnvrtc-builtins.so.X.Y` by name when it compiles, which fails when
    /// NVRTC itself was found outside the loader's path (a toolkit folder, the PyPI wheel).
    /// Loading the builtins from NVRTC's own folder first makes the later lookup by name find
    /// them already loaded.
    static func preloadBuiltins(besides path: String) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let folder = String(path[..<slash])
        for name in directoryEntries(folder) where name.hasPrefix("libnvrtc-builtins.so") {
            _ = dlopen(folder + "/" + name, RTLD_NOW | RTLD_GLOBAL)
        }
    }

    /// The `sm_XY` architectures this NVRTC can compile for, as XY (90 for an H100/H200).
    public var supportedArchitectures: [Int] {
        var count: Int32 = 0
        guard supportedCount(&count) == 0, count > 0 else { return [] }
        var values = [Int32](repeating: 0, count: Int(count))
        _ = supported(&values)
        return values.map(Int.init)
    }

    /// The options every kernel is compiled with.
    static func options(architecture: Int) -> [String] {
        ["--gpu-architecture=sm_\(architecture)", "--std=c++17"]
    }

    /// Compiles `source` for `sm_<architecture>` and returns the CUBIN. A source that does not
    /// compile throws `.compilation` with NVRTC's log.
    public func compile(_ source: KernelSource, architecture: Int) throws(CUDAError) -> [UInt8] {
        var program: Program = nil
        try check("nvrtcCreateProgram", createProgram(&program, source.code, source.name, 0, nil, nil))
        defer { _ = destroyProgram(&program) }
        let options = Self.options(architecture: architecture).map { strdup($0) }
        defer { options.forEach { free($0) } }
        var pointers = options.map { UnsafePointer($0) }
        let status = compileProgram(program, Int32(pointers.count), &pointers)
        let log = programLog(program)
        guard status == 0 else {
            throw .compilation(kernel: source.name, log: log.isEmpty ? message(status) : log)
        }
        var size = 0
        try check("nvrtcGetCUBINSize", getCUBINSize(program, &size))
        var cubin = [CChar](repeating: 0, count: size)
        try check("nvrtcGetCUBIN", getCUBIN(program, &cubin))
        return cubin.map { UInt8(bitPattern: $0) }
    }

    private func programLog(_ program: Program) -> String {
        var size = 0
        guard getLogSize(program, &size) == 0, size > 1 else { return "" }
        var text = [CChar](repeating: 0, count: size)
        _ = getLog(program, &text)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func message(_ code: Int32) -> String { errorString(code).map { String(cString: $0) } ?? "NVRTC error \(code)" }

    private func check(_ call: String, _ code: Int32) throws(CUDAError) {
        guard code == 0 else { throw .nvrtc(call: call, code: code, message: message(code)) }
    }
}

/// Compiled kernels kept on disk, so that a start does not pay NVRTC's seconds again: one file
/// per source, named by a hash of the source, the NVRTC version and the architecture.
public struct KernelCache: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    /// The cache file of `source` compiled by NVRTC `version` for `sm_<architecture>`.
    public func path(for source: KernelSource, nvrtcVersion version: (Int, Int), architecture: Int) -> String {
        let key = "\(version.0).\(version.1) sm_\(architecture) \(NVRTC.options(architecture: architecture).joined(separator: " "))\n" + source.code
        let stem = source.name.hasSuffix(".cu") ? String(source.name.dropLast(3)) : source.name
        return folder + "/\(stem)-sm\(architecture)-\(Self.hash(key)).cubin"
    }

    /// The cached CUBIN, or a fresh compilation (stored for next time; a cache that cannot be
    /// written costs only the next start's compile time).
    public func cubin(for source: KernelSource, compiler: NVRTC, architecture: Int) throws(CUDAError) -> [UInt8] {
        let file = path(for: source, nvrtcVersion: compiler.version, architecture: architecture)
        if let cached = Self.read(file), !cached.isEmpty { return cached }
        let cubin = try compiler.compile(source, architecture: architecture)
        Self.write(cubin, to: file)
        return cubin
    }

    /// 64-bit FNV-1a, as hex: stable across runs and machines (Swift's Hasher is seeded).
    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value &*= 0x100_0000_01b3
        }
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer.prefix(n)
        }
        return bytes
    }

    /// Written under a temporary name and renamed: a reader sees a whole file or none.
    static func write(_ bytes: [UInt8], to path: String) {
        makeFolders(String(path[..<path.lastIndex(of: "/")!]))
        let temporary = path + ".tmp.\(getpid())"
        guard let file = fopen(temporary, "wb") else { return }
        let written = fwrite(bytes, 1, bytes.count, file)
        let closed = fclose(file)
        if written == bytes.count && closed == 0 { rename(temporary, path) } else { unlink(temporary) }
    }
}

/// mkdir -p, errors ignored (the write that follows reports them).
func makeFolders(_ path: String) {
    var prefix = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        prefix += "/" + part
        _ = mkdir(prefix, 0o755)
    }
}
