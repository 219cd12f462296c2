import CLinux
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a file could not be read or written.
public enum FileError: Error, Equatable, CustomStringConvertible {
    case io(path: String, operation: String, errno: Int32)
    case tooLarge(path: String, bytes: Int, limit: Int)
    /// Not a regular file (a FIFO, socket or device named like an image or a configuration):
    /// reading it could block forever or never end, so it is refused unread.
    case notRegular(path: String, kind: String)

    public var description: String {
        switch self {
        case .io(let path, let operation, let code): return "\(path): failed to \(operation): \(errorString(code))"
        case .tooLarge(let path, let bytes, let limit): return "\(path): \(bytes) bytes, over the limit of \(limit)"
        case .notRegular(let path, let kind): return "\(path): a \(kind), not a regular file; not read"
        }
    }

    /// The description without the path (for messages that name the file themselves).
    public var reason: String {
        switch self {
        case .io(_, let operation, let code): return "failed to \(operation): \(errorString(code))"
        case .tooLarge(_, let bytes, let limit): return "\(bytes) bytes, over the limit of \(limit)"
        case .notRegular(_, let kind): return "a \(kind), not a regular file; not read"
        }
    }

    /// The errno, for callers that treat some (ENOSPC) specially.
    public var errno: Int32? {
        if case .io(_, _, let code) = self { return code }
        return nil
    }
}

/// Replaces `path` with `bytes` so that a reader, or a crash at any moment, sees either the
/// old contents or the new ones, never a mix: write a temporary file in the same folder,
/// fsync it, rename it over `path`, fsync the folder. A new file is written unnamed and
/// linked in instead (see `writeUnnamedThenLink`).
///
/// `durable: false` skips both fsyncs: readers and a killed process still never see a partial
/// file (the rename is atomic and the kernel holds the data), but a power loss may lose the
/// latest files. Bulk writers (thousands of small PNGs) use it and call `syncFileSystem` once.
public func writeFileAtomically(path: String, bytes: [UInt8], durable: Bool = true) throws(FileError) {
    if try writeUnnamedThenLink(path: path, bytes: bytes, durable: durable) { return }
    let temporary = AtomicTemporary.path(for: path)
    let fd = retryingOnInterrupt { open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    guard fd >= 0 else { throw .io(path: temporary, operation: "create", errno: errno) }
    var failure = writeAll(fd, bytes).map { FileError.io(path: temporary, operation: "write", errno: $0) }
    if failure == nil, durable, fsync(fd) != 0 { failure = .io(path: temporary, operation: "fsync", errno: errno) }
    if close(fd) != 0, failure == nil { failure = .io(path: temporary, operation: "close", errno: errno) }
    if failure == nil, rename(temporary, path) != 0 { failure = .io(path: path, operation: "rename into place", errno: errno) }
    if let failure {
        unlink(temporary)
        throw failure
    }
    if durable { syncFolder(of: path) }  // the rename itself
}

/// The name a write in progress goes under, `<name>.tmp.<pid>`: written by
/// `writeFileAtomically` and by other writers that rename into place (a forgotten dataset's
/// folders renamed aside), read by whoever clears what a killed writer left.
public enum AtomicTemporary {
    /// This process's temporary name for `path`.
    public static func path(for path: String, pid: Int32 = getpid()) -> String { "\(path).tmp.\(pid)" }

    /// The writer's pid in such a name (or path), nil for any other name. `.tmp.` must follow
    /// something: a file named `.tmp.5` is a user's.
    public static func writer(of name: String) -> Int32? {
        guard let dot = name.lastIndex(of: "."), let pid = Int32(name[name.index(after: dot)...]), pid > 0 else { return nil }
        let stem = name[..<dot].dropLast(4)
        guard name[..<dot].hasSuffix(".tmp"), let last = stem.last, last != "/" else { return nil }
        return pid
    }
}

/// Linux's `O_TMPFILE` (Glibc's macro does not reach Swift): an unnamed file in a folder.
private let openUnnamed = Int32(0o20000000) | O_DIRECTORY

/// Writes a new file as an unnamed file in its folder (`O_TMPFILE`) and links it in under its
/// name once complete: no temporary name ever shows in the folder, a process killed midway
/// leaves nothing behind (the kernel frees the unnamed file), and the folder is changed once
/// instead of twice (create, then rename; a C loop of 20,000 small files here: 22-25k -> 27-28k
/// files/s).
/// Returns false where this cannot be used, for the caller to take a named temporary file:
/// a file already at `path` (linkat does not replace), a file system without `O_TMPFILE`, no
/// /proc to link from, or an open that fails (whose reason the fallback then reports).
private func writeUnnamedThenLink(path: String, bytes: [UInt8], durable: Bool) throws(FileError) -> Bool {
    let fd = retryingOnInterrupt { open(parentFolder(of: path), openUnnamed | O_WRONLY | O_CLOEXEC, 0o644) }
    guard fd >= 0 else { return false }
    defer { close(fd) }
    if let code = writeAll(fd, bytes) { throw .io(path: path, operation: "write", errno: code) }
    if durable, fsync(fd) != 0 { throw .io(path: path, operation: "fsync", errno: errno) }
    guard linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 else { return false }
    if durable { syncFolder(of: path) }
    return true
}

/// Writes all of `bytes` to `fd`, retrying short writes and interruptions; the errno of a
/// failure, or nil.
private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
    bytes.withUnsafeBytes { raw in
        var written = 0
        while written < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            written += n
        }
        return nil
    }
}

/// Makes a new name in `path`'s folder durable.
private func syncFolder(of path: String) {
    let folderFD = open(parentFolder(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if folderFD >= 0 {
        _ = fsync(folderFD)
        close(folderFD)
    }
}

/// Flushes what non-durable writes left in the page cache of the file system holding `path`
/// (syncfs(2): a daemon that shares its machine should not flush every other file system's
/// writes, as sync(2) does, at every chunk of images). Where `path` cannot be opened, falls
/// back to sync(2). Returns whether syncfs flushed it.
@discardableResult
public func syncFileSystem(containing path: String) -> Bool {
    if synthd_syncfs(path) == 0 { return true }
    sync()
    return false
}

/// Reads a whole regular file, refusing one larger than `maxBytes` before reading it.
///
/// The file is opened with O_NONBLOCK and checked through the same descriptor (no race
/// between a check and the open): opening a FIFO for reading would otherwise wait for a
/// writer forever, and a device could be read without end. Anything but a regular file is
/// refused with `FileError.notRegular`.
public func readFile(path: String, maxBytes: Int = .max) throws(FileError) -> [UInt8] {
    let fd = retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }
    guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
    if let kind = nonRegularKind(mode: status.st_mode) { throw .notRegular(path: path, kind: kind) }
    let size = Int(status.st_size)
    guard size <= maxBytes else { throw .tooLarge(path: path, bytes: size, limit: maxBytes) }
    var bytes = [UInt8](repeating: 0, count: size)
    var total = 0
    var failure: Int32 = 0
    bytes.withUnsafeMutableBytes { raw in
        while total < size {
            let n = Glibc.read(fd, raw.baseAddress! + total, size - total)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            if n == 0 { break }
            total += n
        }
    }
    if failure != 0 { throw .io(path: path, operation: "read", errno: failure) }
    return Array(bytes[0..<total])
}

/// Reads a whole regular file as UTF-8 text (see `readFile`); invalid UTF-8 is repaired.
public func readTextFile(path: String, maxBytes: Int = 16 << 20) throws(FileError) -> String {
    String(decoding: try readFile(path: path, maxBytes: maxBytes), as: UTF8.self)
}

/// What a file of this mode is, in words, when it is not a regular file; nil for one.
public func nonRegularKind(mode: mode_t) -> String? {
    switch mode & S_IFMT {
    case S_IFREG: return nil
    case S_IFDIR: return "folder"
    case S_IFIFO: return "FIFO (named pipe)"
    case S_IFSOCK: return "socket"
    case S_IFCHR: return "character device"
    case S_IFBLK: return "block device"
    case S_IFLNK: return "symbolic link"
    default: return "special file"
    }
}

func parentFolder(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let parent = String(path[..<slash])
    return parent.isEmpty ? "/" : parent
}

@inline(__always)
func retryingOnInterrupt(_ call: () -> Int32) -> Int32 {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
