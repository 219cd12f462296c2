import Foundation

/// This process's command line, also where the Swift runtime captured none: a library
/// preloaded ahead of it can leave `CommandLine.arguments` empty (libfaketime does; `synthd run`
/// under it ran `synthd info` instead, and a re-exec would have lost every argument). The
/// kernel keeps the command line in `/proc/self/cmdline` whatever the runtime saw.
public enum ProcessArguments {
    /// The program's name, then its arguments: the runtime's, else the kernel's (empty where
    /// neither has any).
    public static var all: [String] {
        if !CommandLine.arguments.isEmpty { return CommandLine.arguments }
        guard let raw = FileManager.default.contents(atPath: "/proc/self/cmdline") else { return [] }
        return fields(ofCommandLine: Array(raw))
    }

    /// The arguments after the program's name when the runtime has none, for
    /// `ParsableCommand.main(_:)`; nil when the runtime has them (the usual case).
    public static func whereTheRuntimeHasNone() -> [String]? {
        guard CommandLine.arguments.isEmpty else { return nil }
        let fields = all
        return fields.isEmpty ? nil : Array(fields.dropFirst())
    }

    /// `/proc/self/cmdline`'s layout: each argument NUL-terminated, so an empty argument is an
    /// empty field between two NULs and the last NUL ends the last argument, not a new one.
    public static func fields(ofCommandLine raw: [UInt8]) -> [String] {
        guard !raw.isEmpty else { return [] }
        var fields = raw.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if raw.last == 0 { fields.removeLast() }
        return fields
    }
}
