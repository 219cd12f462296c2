import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Unix socket bound to `path` (a file system entry of type socket), for tests of what
/// synthd does with files that are not regular files (`SOCK_STREAM`) and for playing
/// systemd's notify socket (`SOCK_DGRAM`, with `SOCK_NONBLOCK` to poll it). Close the
/// descriptor when done; a failure closes it and throws the system's error.
public func bindUnixSocket(at path: String, type: Int32 = Int32(SOCK_STREAM.rawValue)) throws -> Int32 {
    let fd = socket(AF_UNIX, type, 0)
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        let bytes = Array(path.utf8.prefix(raw.count - 1))
        raw.copyBytes(from: bytes + [0])
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else {
        let code = errno
        close(fd)
        throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
    }
    return fd
}

/// Makes a folder (`folder: true`) or an empty file at `parent` + "/" + `name`, where `name` is
/// raw bytes, UTF-8 or not (a Latin-1 `caf\xE9` cannot be a Swift string). Returns whether it did.
@discardableResult
public func makeEntry(in parent: String, rawName name: [UInt8], folder: Bool, contents: Data = Data()) -> Bool {
    let path = Array(parent.utf8) + [0x2F] + name + [0]
    return path.withUnsafeBufferPointer { raw in
        raw.withMemoryRebound(to: CChar.self) { path in
            if folder { return mkdir(path.baseAddress!, 0o755) == 0 }
            let fd = open(path.baseAddress!, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return contents.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == contents.count
        }
    }
}
