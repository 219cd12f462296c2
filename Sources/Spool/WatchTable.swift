/// The spool watcher's record of its inotify watches: the folder each watch number stands for.
///
/// The kernel names an event's folder only by its watch number, so the watcher needs this
/// record to say which dataset changed. libinotifytools kept it until stop 70, and three of its
/// ways cost the daemon: renaming a folder re-sorted its tree of names while walking that tree,
/// so some subfolders of a renamed dataset kept their old names (12 of 60 with 20 datasets);
/// it never freed the record of a deleted folder's watch (the watcher renewed every watch now
/// and then to free them); and its state was one per process. Here a record goes when its
/// watch does (`IN_IGNORED`), a rename changes every path under the old one, and each watcher
/// has its own.
///
/// Paths are bytes, as the file system has them (a folder whose name is not UTF-8 is recorded
/// like any other), without a trailing slash.
struct WatchTable {
    private var paths: [Int32: [UInt8]] = [:]

    var count: Int { paths.count }

    /// The folder `wd` watches, if it is one of ours.
    func path(of wd: Int32) -> [UInt8]? { paths[wd] }

    /// Records `wd` as the watch of `path`; true when the number is new to the table. A number
    /// already there (a kernel before 4.18 hands out a folder's watch again) takes the path.
    @discardableResult
    mutating func add(_ wd: Int32, path: [UInt8]) -> Bool {
        paths.updateValue(Self.trimmed(path), forKey: wd) == nil
    }

    /// Forgets `wd` (its watch was removed, or the kernel dropped it).
    mutating func remove(_ wd: Int32) { paths[wd] = nil }

    /// The watches of `folder` and of every folder under it.
    func watches(under folder: [UInt8]) -> [Int32] {
        let folder = Self.trimmed(folder)
        return paths.compactMap { wd, path in Self.isSelfOrUnder(path, folder) ? wd : nil }
    }

    /// A folder renamed from `old` to `new`: its watch and those under it keep their numbers
    /// (the kernel's watches follow the folder) and take the new paths. Returns how many changed.
    @discardableResult
    mutating func rename(_ old: [UInt8], to new: [UInt8]) -> Int {
        let (old, new) = (Self.trimmed(old), Self.trimmed(new))
        var renamed = 0
        for (wd, path) in paths where Self.isSelfOrUnder(path, old) {
            paths[wd] = new + path.dropFirst(old.count)
            renamed += 1
        }
        return renamed
    }

    mutating func removeAll() { paths = [:] }

    /// `path` is `folder` or lies under it: "spool/set1/boot" is under "spool/set1", not under
    /// "spool/set" and not under "spool/set10".
    private static func isSelfOrUnder(_ path: [UInt8], _ folder: [UInt8]) -> Bool {
        guard path.count >= folder.count, path.starts(with: folder) else { return false }
        return path.count == folder.count || path[folder.count] == UInt8(ascii: "/") || folder.last == UInt8(ascii: "/")
    }

    /// Without trailing slashes ("/" itself stays).
    private static func trimmed(_ path: [UInt8]) -> [UInt8] {
        var path = path
        while path.count > 1, path.last == UInt8(ascii: "/") { path.removeLast() }
        return path
    }
}
