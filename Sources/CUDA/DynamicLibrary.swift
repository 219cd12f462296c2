#if canImport(Glibc)
import Glibc
#endif

/// A shared library opened at run time (dlopen), so that synthd builds and runs on machines
/// without CUDA: nothing of CUDA is linked, and a missing library is an error that names it.
final class DynamicLibrary: @unchecked Sendable {
    let path: String
    private let handle: UnsafeMutableRawPointer

    /// Opens the first of `candidates` that loads (names go through the loader's search path,
    /// paths are opened as they are). Throws `CUDAError.libraryMissing` with every reason.
    init(_ candidates: [String], what: String) throws(CUDAError) {
        var reasons: [String] = []
        for candidate in candidates {
            if let handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL) {
                self.handle = handle
                path = candidate
                return
            }
            reasons.append(dlerror().map { String(cString: $0) } ?? "\(candidate): not loadable")
        }
        throw .libraryMissing(what: what, tried: candidates, reasons: reasons)
    }

    /// A C function of this library as a Swift function type (`@convention(c)`).
    func function<T>(_ name: String, as type: T.Type) throws(CUDAError) -> T {
        guard let symbol = dlsym(handle, name) else { throw .symbolMissing(library: path, symbol: name) }
        return unsafeBitCast(symbol, to: type)
    }
}

/// Where CUDA's libraries are looked for: an explicit folder first (configuration or
/// `SYNTHD_CUDA_LIBRARIES`), then the loader's search path, then the toolkit's usual folders
/// (`/usr/local/cuda*/targets/x86_64-linux/lib`, where NVRTC and cuBLAS live on machines
/// whose loader path holds only the driver).
public struct CUDALibrarySearch: Sendable, Equatable {
    public var explicitFolders: [String]

    public init(explicitFolders: [String] = []) {
        var folders = explicitFolders.filter { !$0.isEmpty }
        if let value = getenv("SYNTHD_CUDA_LIBRARIES").map({ String(cString: $0) }), !value.isEmpty {
            folders += value.split(separator: ":").map(String.init)
        }
        self.explicitFolders = folders
    }

    /// Candidates for a library: `names` (e.g. `libnvrtc.so.13`) in each explicit folder, the
    /// bare names, then in the toolkit folders found on this machine (newest first).
    func candidates(_ names: [String]) -> [String] {
        var result: [String] = []
        for folder in explicitFolders { result += names.map { folder + "/" + $0 } }
        result += names
        for folder in Self.toolkitFolders() { result += names.map { folder + "/" + $0 } }
        return result
    }

    static func toolkitFolders() -> [String] {
        directoryEntries("/usr/local").filter { $0 == "cuda" || $0.hasPrefix("cuda-") }.map { "/usr/local/" + $0 }
            .sorted(by: >).flatMap { [$0 + "/targets/x86_64-linux/lib", $0 + "/lib64"] }
    }
}

/// The names in a folder (none when it cannot be read). Glibc only: this module has no Foundation.
func directoryEntries(_ folder: String) -> [String] {
    guard let directory = opendir(folder) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
    }
    return names
}
