import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The kernel's side of this process's inotify instances and watches, read from `/proc/self`:
/// whether a descriptor number is still the watcher's inotify instance (checked before each
/// read), and, for tests to hold the watcher's records against, each instance's live watches
/// (`/proc/self/fdinfo/<fd>`: one `inotify wd:<hex> ...` line each, stable since Linux 3.8).
enum KernelWatches {
    /// The file descriptors of this process that are inotify instances.
    static func inotifyDescriptors() -> Set<Int32> {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return [] }
        var found: Set<Int32> = []
        var target = [CChar](repeating: 0, count: 64)
        for name in names {
            guard let fd = Int32(name) else { continue }
            let length = readlink("/proc/self/fd/" + name, &target, target.count)
            guard length > 0 else { continue }
            let link = String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link == "anon_inode:inotify" { found.insert(fd) }
        }
        return found
    }

    /// What a descriptor number is now: an inotify instance, nothing (closed), or another file.
    /// Another part of the process that closes a number twice can close an inotify descriptor
    /// under its owner, and the next file opened anywhere may take the number.
    enum Descriptor: Equatable { case inotify, closed, other }

    /// What `/proc/self/fd/<fd>` links to for an inotify instance.
    private static let inotifyLink = Array("anon_inode:inotify".utf8)

    /// Checked before every read of events: one `readlink`, one `fcntl` when that fails.
    static func descriptor(_ fd: Int32) -> Descriptor {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { target in
            let length = readlink("/proc/self/fd/\(fd)", target.baseAddress!, target.count)
            guard length >= 0 else { return fcntl(fd, F_GETFD) == -1 && errno == EBADF ? .closed : .other }
            guard length == inotifyLink.count else { return .other }
            for index in 0..<length where UInt8(bitPattern: target[index]) != inotifyLink[index] { return .other }
            return .inotify
        }
    }

    /// The watch descriptors the kernel holds for the inotify instance `fd`; nil when they
    /// cannot be read.
    static func watchDescriptors(of fd: Int32) -> [Int32]? {
        guard let text = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("inotify wd:"), let field = line.dropFirst("inotify wd:".count).split(separator: " ").first
            else { return nil }
            return Int32(field, radix: 16)
        }
    }
}
