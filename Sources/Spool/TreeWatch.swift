#if canImport(Glibc)
import Glibc
#endif

/// Watches a folder and every folder under it: the spool at start and at each renewal, and a
/// folder made in the spool.
///
/// libinotifytools' `inotifytools_watch_recursively` gave up on a whole folder when one of its
/// entries went between the folder's listing and the entry's `lstat` (ENOENT), and it watched
/// a folder only after all of its subfolders. A class folder deleted while the watches were
/// renewed left its dataset unwatched for good, and a dataset deleted while the spool was
/// walked left the spool unwatched (at start: the daemon refused to start). Seen in CI, where
/// a dataset's later files were never heard. This walk watches each folder before it lists
/// it, so that what is made in it afterwards has its event (and is walked from there), and
/// passes over folders that go or cannot be read while it walks: their own events, or their
/// dataset's scan, say what became of them.
///
/// Paths are bytes, as the file system has them: a folder whose name is not UTF-8 is watched
/// like any other.
struct TreeWatch {
    /// Adds one folder's watch, with these inotify flags besides the watcher's events; returns
    /// 0, or the errno of the failure.
    var addWatch: (_ path: UnsafePointer<CChar>, _ flags: Int32) -> Int32
    /// Called with each folder after its entries were read and before any is watched. Tests
    /// change the tree there.
    var afterListing: (String) -> Void = { _ in }

    struct Failure: Equatable {
        var path: String
        var code: Int32
    }

    /// Failures under the root that the walk passes over without a word: the folder went, was
    /// replaced by a file or a link, or cannot be read (the daemon's scan reports that).
    static let passedOver: Set<Int32> = [ENOENT, ENOTDIR, ELOOP, EACCES, EPERM]

    /// Watches `root` and the folders under it, not following links. Returns the failure to
    /// watch `root` itself, or the watch limit's (ENOSPC: the walk stops there, as every
    /// further watch would fail), or else the first failure under `root` that is not passed
    /// over (the walk goes on past it); nil when every folder is watched.
    func watch(_ root: String) -> Failure? {
        let slash = CChar(UInt8(ascii: "/"))
        var rootPath = Array(root.utf8CString.dropLast())
        // The root with its slash: followed if it is a link (a spool may be one).
        if rootPath.last != slash { rootPath.append(slash) }
        if let code = Self.failure(addWatch, rootPath, flags: 0) { return Failure(path: root, code: code) }
        var pending = [Array(rootPath.dropLast())], firstOther: Failure?
        while let folder = pending.popLast() {
            let subfolders = Self.subfolders(of: folder)
            afterListing(Self.string(folder))
            for name in subfolders {
                let path = folder + [slash] + name
                // No slash (which would follow a link made in the folder's place meanwhile).
                guard let code = Self.failure(addWatch, path, flags: Int32(IN_DONT_FOLLOW | IN_ONLYDIR)) else {
                    pending.append(path)
                    continue
                }
                if code == ENOSPC { return Failure(path: Self.string(path), code: code) }
                if !Self.passedOver.contains(code) && firstOther == nil { firstOther = Failure(path: Self.string(path), code: code) }
            }
        }
        return firstOther
    }

    private static func failure(_ addWatch: (UnsafePointer<CChar>, Int32) -> Int32, _ path: [CChar], flags: Int32) -> Int32? {
        let code = (path + [0]).withUnsafeBufferPointer { addWatch($0.baseAddress!, flags) }
        return code == 0 ? nil : code
    }

    /// The names of the folders in `folder` (links and files left out); none when it cannot
    /// be read.
    private static func subfolders(of folder: [CChar]) -> [[CChar]] {
        guard let directory = (folder + [0]).withUnsafeBufferPointer({ opendir($0.baseAddress!) }) else { return [] }
        defer { closedir(directory) }
        var names: [[CChar]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.bindMemory(to: CChar.self).prefix { $0 != 0 })
            }
            if name == [46] || name == [46, 46] { continue }  // "." and ".."
            switch Int(entry.pointee.d_type) {
            case Int(DT_DIR): names.append(name)
            case Int(DT_UNKNOWN):
                // File systems that do not fill in the type: ask (gone meanwhile: passed over).
                var status = stat()
                let path = folder + [CChar(UInt8(ascii: "/"))] + name + [0]
                if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { names.append(name) }
            default: continue
            }
        }
        return names
    }

    private static func string(_ path: [CChar]) -> String {
        String(decoding: path.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
