import Foundation

/// The command line as the kernel keeps it (`/proc/self/cmdline`), for when the Swift runtime
/// captured none: a library preloaded ahead of it can leave that capture empty (libfaketime
/// does, and `synthd run` under it ran `synthd info` instead).
enum KernelArguments {
    /// The arguments after the program's name, or nil when the runtime has them.
    static func whereTheRuntimeHasNone() -> [String]? {
        guard CommandLine.arguments.isEmpty,
              let raw = FileManager.default.contents(atPath: "/proc/self/cmdline"), !raw.isEmpty else { return nil }
        // NUL-terminated strings, an empty argument an empty string between two NULs.
        var fields = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if raw.last == 0 { fields.removeLast() }
        return Array(fields.dropFirst())
    }
}
