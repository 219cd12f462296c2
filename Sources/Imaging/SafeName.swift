/// Rules for the names synthd turns into paths of its own (output and state folders).
///
/// A dataset or class name comes from a folder someone else made. It becomes one path
/// component under the output and state roots, so it must be exactly one ordinary component:
/// not empty, not `.` or `..`, no `/`, no NUL or other control characters (which also keeps
/// log lines and manifests readable), not hidden, and at most 255 bytes.
public enum SafeName {
    /// nil when `name` is safe, else why not.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "empty name" }
        if name == "." || name == ".." || name.hasPrefix(".") { return "hidden or relative name" }
        if name.utf8.count > 255 { return "name longer than 255 bytes" }
        if name.contains("/") { return "name contains '/'" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "name contains control characters" }
        if name.unicodeScalars.contains("\u{FFFD}") { return "name is not valid UTF-8 (or holds U+FFFD); \(FolderListing.renameAdvice)" }
        return nil
    }

    public static func isSafe(_ name: String) -> Bool { problem(with: name) == nil }
}
