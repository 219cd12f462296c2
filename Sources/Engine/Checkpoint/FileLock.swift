#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock (flock(2)) on a lock file, held until `release` or until the
/// process ends, whichever comes first: the kernel drops it when the process dies, kill -9
/// included, so a stale lock file never keeps anyone out.
///
/// Used for "one owner per state folder": `synthd run` holds `<state>/synthd.lock` for its
/// life, and whoever trains or generates with a dataset's state folder (the daemon's job, or
/// `synthd train` / `generate`) holds `<folder>/.lock` meanwhile. The file holds a line naming
/// the holder, for the message the next one gets.
public final class FileLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32

    /// Why a lock could not be taken.
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        /// Someone holds it; `holder` is what they wrote in the file (pid and purpose).
        case held(path: String, holder: String)
        case io(path: String, operation: String, errno: Int32)

        /// Whether another process holds the lock (a read-only folder is not a busy one: it
        /// stays so until a person acts).
        public var isHeld: Bool { if case .held = self { true } else { false } }

        /// Whether the lock file could not be made because its folder takes no writes (a
        /// read-only mount, permissions).
        public var folderIsNotWritable: Bool {
            if case .io(_, "open", let code) = self { [EROFS, EACCES, EPERM].contains(code) } else { false }
        }

        public var description: String {
            switch self {
            case .held(let path, let holder):
                return "\(path) is locked by \(holder.isEmpty ? "another process" : holder)"
            case .io(let path, let operation, let code):
                return "\(path): failed to \(operation): \(errorString(code))"
            }
        }
    }

    /// The exit status of a command refused because another process holds its lock
    /// (EX_TEMPFAIL in sysexits.h: try again later). The unit keeps systemd from restarting on it.
    public static let busyExitStatus: Int32 = 75

    /// Takes the lock without waiting, writing `holder` (what this process is doing) into the
    /// file. Throws `.held` with the holder's own line when another process has it.
    public init(_ path: String, holder: String) throws(Error) {
        self.path = path
        fd = retryingOnInterrupt { open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644) }
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        guard retryingOnInterrupt({ flock(fd, LOCK_EX | LOCK_NB) }) == 0 else {
            let code = errno
            let current = Self.holder(fd: fd)
            close(fd)
            if code == EWOULDBLOCK { throw .held(path: path, holder: current) }
            throw .io(path: path, operation: "lock", errno: code)
        }
        let line = Array("pid \(getpid()): \(holder)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = line.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { release() }

    /// Whether the file at `path` is still the one this lock holds: false once it was removed
    /// or replaced (with its folder, say), when another process could take a lock of the same
    /// name while this one holds a file nobody can see.
    public var isAtItsPath: Bool {
        guard fd >= 0 else { return false }
        var held = stat(), named = stat()
        guard fstat(fd, &held) == 0, lstat(path, &named) == 0 else { return false }
        return held.st_dev == named.st_dev && held.st_ino == named.st_ino
    }

    /// Lets the lock go (the file stays: removing it would race with the next holder).
    public func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        close(fd)
        fd = -1
    }

    /// The line a holder wrote (empty when there is none).
    static func holder(fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "" }
        return String(decoding: buffer.prefix(n), as: UTF8.self).trimmingNewlines()
    }
}

private extension String {
    func trimmingNewlines() -> String {
        var text = Substring(self)
        while text.last == "\n" { text = text.dropLast() }
        return String(text)
    }
}
