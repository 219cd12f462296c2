#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Creates the folder `path` and any missing folders above it (as `mkdir -p`, mode 0755); a
/// folder already there is fine. A failure names the folder that could not be made and why
/// (`/srv/out: failed to create the folder: Permission denied`), where Foundation's
/// `createDirectory` reported `NSCocoaErrorDomain Code=513` and a URL.
public func createFolders(_ path: String) throws(FileError) {
    guard !path.isEmpty else { return }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/", omittingEmptySubsequences: true) {
        prefix += (prefix.isEmpty || prefix == "/" ? "" : "/") + component
        if mkdir(prefix, 0o755) == 0 { continue }
        let code = errno
        // EEXIST is fine only for a folder (or a link to one); a file in the way is ENOTDIR.
        guard code == EEXIST else { throw .io(path: prefix, operation: "create the folder", errno: code) }
        var status = stat()
        guard stat(prefix, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw .io(path: prefix, operation: "create the folder", errno: ENOTDIR)
        }
    }
}
