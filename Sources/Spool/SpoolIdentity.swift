import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which folder the spool's path leads to, and whether a file system is mounted there.
///
/// inotify watches inodes, not paths: a file system mounted over the spool while it is watched
/// sends no event (the watches stay on the folder underneath, which nothing writes to any
/// more), and one unmounted under it takes every watch with it (`IN_UNMOUNT`). The watcher
/// compares the spool's identity with the one it watched, once a second, and says which of the
/// two happened.
struct SpoolIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    /// The folder at `path` (links followed, as the spool may be one); nil when there is none.
    static func of(_ path: String) -> SpoolIdentity? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { return nil }
        return SpoolIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// Whether a file system is mounted at `path` (a bind mount of a folder of the same file
    /// system included, which the device number cannot tell): its real path is a mount point
    /// in `/proc/self/mountinfo`. False when either cannot be read.
    static func isMountPoint(_ path: String) -> Bool {
        guard let real = realpath(path, nil) else { return false }
        let target = String(cString: real)
        free(real)
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ", maxSplits: 5)
            return fields.count > 4 && unescaped(fields[4]) == target
        }
    }

    /// mountinfo writes a space, a tab, a newline and a backslash in a path as octal escapes.
    static func unescaped(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "\\"), utf8.count >= 3,
               let value = UInt8(String(decoding: utf8.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                utf8 = utf8.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
