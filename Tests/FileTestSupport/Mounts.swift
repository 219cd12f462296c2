import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Mounts for tests of a spool whose file system comes and goes. They need the right to mount
/// (root, outside a container that forbids it); `isAllowed` says whether this process has it,
/// for `.enabled(if:)`.
public enum TestMounts {
    /// Bind-mounts `source` on `target` (both folders); whether it did. Unmounting a bind mount
    /// leaves its file system mounted elsewhere, so its watches stay and get no `IN_UNMOUNT`.
    @discardableResult
    public static func bind(_ source: String, on target: String) -> Bool {
        mount(source, target, nil, UInt(MS_BIND), nil) == 0
    }

    /// Mounts a new, empty tmpfs on `target`; whether it did. Unmounted, the file system ends:
    /// every watch on it gets `IN_UNMOUNT`.
    @discardableResult
    public static func temporaryFileSystem(on target: String) -> Bool {
        mount("synthd-test", target, "tmpfs", 0, "size=4m") == 0
    }

    /// Unmounts what is mounted on `target` (detached if it is busy); whether it did.
    @discardableResult
    public static func unmount(_ target: String) -> Bool {
        umount2(target, 0) == 0 || umount2(target, Int32(MNT_DETACH)) == 0
    }

    /// Whether this process may bind-mount (tried once, on two temporary folders).
    public static let isAllowed: Bool = {
        let base = NSTemporaryDirectory() + "synthd-mount-probe-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        guard (try? FileManager.default.createDirectory(atPath: base + "/a", withIntermediateDirectories: true)) != nil,
              (try? FileManager.default.createDirectory(atPath: base + "/b", withIntermediateDirectories: true)) != nil,
              bind(base + "/a", on: base + "/b") else { return false }
        return unmount(base + "/b")
    }()
}
