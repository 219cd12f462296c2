import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An open archive file. Readers share it: a zip reads its members by offset (`pread`), a
/// tar reads it from the start in order.
final class ArchiveFile {
    let path: String
    let descriptor: Int32
    let size: UInt64

    init(path: String) throws(ArchiveError) {
        self.path = path
        // O_NONBLOCK: a FIFO named `x.zip` is refused below instead of blocking the open.
        // O_NOFOLLOW: a link swapped in after the daemon looked is not followed either.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)
        guard fd >= 0 else { throw .unreadable(archive: path, reason: String(cString: strerror(errno))) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .unreadable(archive: path, reason: reason)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .unreadable(archive: path, reason: "not a regular file")
        }
        descriptor = fd
        size = UInt64(status.st_size)
    }

    deinit { close(descriptor) }

    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end of the file.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        while true {
            let n = pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw .unreadable(archive: path, reason: String(cString: strerror(errno)))
        }
    }

    /// Exactly `count` bytes at `offset`, or an error saying the archive ends first.
    func bytes(at offset: UInt64, count: Int, what: String) throws(ArchiveError) -> [UInt8] {
        guard offset <= size, UInt64(count) <= size - offset else {
            throw .malformed(archive: path, reason: "\(what) lies past the end of the file (\(size) bytes)")
        }
        var result = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = try result.withUnsafeMutableBytes { raw in
                Result { () throws(ArchiveError) -> Int in
                    try read(at: offset + UInt64(filled), into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
                }
            }.get()
            if n == 0 { throw .malformed(archive: path, reason: "\(what) lies past the end of the file") }
            filled += n
        }
        return result
    }
}

/// A run of an archive file's bytes, read in order: a whole tar, or one stored zip member.
final class FileRange: ByteStream {
    let file: ArchiveFile
    private var offset: UInt64
    private let end: UInt64

    init(_ file: ArchiveFile, from start: UInt64 = 0, count: UInt64? = nil) {
        self.file = file
        offset = start
        end = count.map { start + $0 } ?? file.size
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard offset < end else { return 0 }
        let want = Int(min(UInt64(buffer.count), end - offset))
        let n = try file.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        offset += UInt64(n)
        return n
    }
}

/// Counts the bytes read through it, readable from another thread: how far into a compressed
/// tar its decoder has come (the fraction `synthd status` shows), while a read-ahead thread
/// does the reading.
final class CountingStream: ByteStream {
    private let source: any ByteStream
    let total: UInt64
    private let counted = Atomic<UInt64>(0)

    init(_ source: any ByteStream, total: UInt64) {
        (self.source, self.total) = (source, total)
    }

    var count: UInt64 { counted.load(ordering: .relaxed) }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        let n = try source.read(into: buffer)
        counted.add(UInt64(n), ordering: .relaxed)
        return n
    }
}
