import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// Flushes one file system's writes to disk and reports the write-back errors it met.
///
/// Bulk writers (thousands of small PNGs written without an fsync each) flush once at the end.
/// A write-back error (EIO, or ENOSPC on a file system that allocates late) is reported by
/// syncfs(2) only to descriptors opened before it happened, so open this before writing and
/// call `flush` after: a failed flush must fail the work instead of publishing files whose
/// data never reached the disk.
public final class FileSystemFlush: Sendable {
    public let path: String
    private let fd: Int32

    /// Opens `path` (a folder or file on the file system to flush; it must exist).
    public init(containing path: String) throws(FileError) {
        self.path = path
        fd = retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        guard fd >= 0 else { throw .io(path: path, operation: "open for flushing", errno: errno) }
    }

    deinit { close(fd) }

    /// Writes out everything dirty on the file system; throws the first write-back error since
    /// this was opened (or since the last `flush`).
    public func flush() throws(FileError) {
        guard synthd_syncfs_fd(fd) == 0 else { throw .io(path: path, operation: "flush to disk (syncfs)", errno: errno) }
    }
}
