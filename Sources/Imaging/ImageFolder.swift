import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The ImageFolder layout that PyTorch and Keras read: `<root>/<class>/<image files>`.
public enum ImageFolder {
    /// What a scan found.
    public struct Scan: Sendable, Equatable {
        public let root: String
        /// Class folder name -> image file paths: the class folder's entries sorted by name,
        /// each folder below it read where its name sorts (`cat/2019/a.png` before `cat/b.png`).
        public let files: [String: [String]]
        /// Entries passed over quietly: hidden, temporary, or not an image by name.
        public let ignored: [String]
        /// Entries that look like data but are not read, and why: a symbolic link out of the
        /// confinement, a FIFO, socket or device, an unsafe name, a class name that clashes
        /// with another one. A user should hear about these like about a corrupt image.
        public let skipped: [Skipped]

        /// Classes with at least one image, sorted by name.
        public var classNames: [String] { files.keys.filter { !(files[$0]!.isEmpty) }.sorted() }
        public var emptyClasses: [String] { files.keys.filter { files[$0]!.isEmpty }.sorted() }
        public var imageCount: Int { files.values.reduce(0) { $0 + $1.count } }
    }

    /// An entry not read, with the reason in words.
    public struct Skipped: Sendable, Equatable {
        public let path: String
        public let reason: String

        public init(path: String, reason: String) {
            self.path = path
            self.reason = reason
        }
    }

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case notAFolder(path: String)
        case unreadable(path: String, reason: String)
        case outside(path: String, boundary: String)

        public var description: String {
            switch self {
            case .notAFolder(let path): return "\(path): not a folder (a dataset is a folder of class folders of images)"
            case .unreadable(let path, let reason): return "\(path): cannot list: \(reason)"
            case .outside(let path, let boundary):
                return "\(path): a symbolic link that leads out of \(boundary); not followed (copy or move the dataset in: "
                    + "the daemon reads only what is inside the spool)"
            }
        }
    }

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "bmp", "ppm", "pgm", "pnm", "tif", "tiff"]

    /// The file beside the class folders of synthd's output trees that lists every written
    /// image; no class may take its name there.
    public static let manifestName = "manifest.jsonl"

    /// Whether a directory entry is worth looking at: not hidden, not a partial copy, not
    /// macOS's `__MACOSX` (a zip made on a Mac unpacks its resource forks, `._<name>` files,
    /// into that folder beside the content: a dataset or class of no images; PyTorch's
    /// ImageFolder takes it as a class and fails on its files).
    public static func isVisible(_ name: String) -> Bool {
        !(name.hasPrefix(".") || name.hasSuffix(".tmp") || name.hasSuffix(".part") || name.hasSuffix("~") || name == "__MACOSX")
    }

    public static func isImageName(_ name: String) -> Bool {
        guard isVisible(name), let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Image formats synthd does not decode, by extension, with their names: passed over like
    /// a README, a folder of them had "no images yet" (a dataset of WebP or TIFF files did,
    /// before they were read).
    static let unreadImageFormats: [String: String] = [
        "gif": "GIF",
        "pbm": "PBM", "heic": "HEIC", "heif": "HEIF", "avif": "AVIF", "jxl": "JPEG XL", "jp2": "JPEG 2000",
    ]

    /// Why a file of this name is not read, when its name says it is an image of a format
    /// synthd does not decode; nil otherwise.
    public static func unreadFormat(_ name: String) -> String? {
        guard isVisible(name), let dot = name.lastIndex(of: ".") else { return nil }
        let suffix = name[name.index(after: dot)...]
        guard let format = unreadImageFormats[suffix.lowercased()] else { return nil }
        return "a \(format) image, not read: synthd reads PNG, JPEG, WebP, BMP, PGM/PPM and TIFF (convert it, e.g. with ImageMagick's "
            + "`mogrify -format png *.\(suffix)`, and remove the original)"
    }

    /// Lists the dataset at `root`. With `confinedTo`, symbolic links (of class folders or
    /// images) that lead outside that folder are not followed but skipped: a dataset dropped
    /// into the spool cannot make synthd read `/etc` (the daemon passes the spool).
    /// Class folders whose names are not safe path components (see `SafeName`), and files
    /// that are not regular files (a FIFO named `x.png` would block its reader) are skipped
    /// with their reason. Nothing here opens a file: `stat` only.
    public static func scan(_ root: String, confinedTo confinement: String? = nil) throws(Error) -> Scan {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw .notAFolder(path: root)
        }
        let boundary = confinement.map(resolvedPath)
        if let boundary, !isInside(resolvedPath(root), boundary) { throw .outside(path: root, boundary: confinement!) }
        var files: [String: [String]] = [:]
        var ignored: [String] = []
        var skipped: [Skipped] = []
        /// Class names by their canonical (NFC) form: two folders whose names differ only in
        /// Unicode normalisation look the same to a person and are one class to most tools.
        var canonicalNames: [String: String] = [:]
        let outside = "a symbolic link that leads out of \(confinement ?? "the spool"); not followed"
        let listing = try list(root)
        for entry in listing.undecodable where entry.kind == S_IFDIR {
            skipped.append(Skipped(path: root + "/" + entry.escaped,
                                   reason: "a class folder whose name is not valid UTF-8; not read. \(FolderListing.renameAdvice)"))
        }
        for name in listing.names {
            let path = root + "/" + name
            guard isVisible(name) else { ignored.append(path); continue }
            guard let kind = fileKind(path) else { ignored.append(path); continue }  // vanished, or a dangling link
            let resolvedClass = boundary == nil ? path : resolvedPath(path)
            if let boundary, !isInside(resolvedClass, boundary) {
                skipped.append(Skipped(path: path, reason: outside))
                continue
            }
            guard kind == S_IFDIR else {
                if kind != S_IFREG { skipped.append(Skipped(path: path, reason: "a \(nonRegularKind(mode: kind) ?? "file") where a class folder was expected; not read")) }
                else { ignored.append(path) }  // a README or synthd.toml beside the classes
                continue
            }
            if let problem = SafeName.problem(with: name) {
                skipped.append(Skipped(path: path, reason: "class folder name not usable: \(problem)"))
                continue
            }
            if name == manifestName {
                skipped.append(Skipped(path: path, reason: "class folder name not usable: synthd's output trees keep their "
                    + "manifest under that name beside the class folders; rename the class"))
                continue
            }
            if let other = canonicalNames[name.precomposedStringWithCanonicalMapping] {
                skipped.append(Skipped(path: path, reason: "class name differs from '\(other)' only in Unicode normalisation "
                    + "(NFC/NFD); rename one of them"))
                continue
            }
            canonicalNames[name.precomposedStringWithCanonicalMapping] = name
            var images: [String] = []
            var visited: Set<FolderIdentity> = []
            /// `resolved`: the folder's path with its links resolved (with a boundary): a plain
            /// entry's is that and its name, so `realpath`, a system call per component of the
            /// path, is needed only for links (it was most of a scan: 60,000 images listed in
            /// 0.43 s, 0.17 s since).
            func collect(_ folder: String, resolved: String, depth: Int, entries listing: FolderListing) {
                guard let identity = FolderIdentity(folder), visited.insert(identity).inserted else {
                    if depth > 0 { skipped.append(Skipped(path: folder, reason: "a folder already read by another path (a symbolic link loop); not read again")) }
                    return
                }
                for entry in listing.undecodable {
                    let entryPath = folder + "/" + entry.escaped
                    if entry.kind == S_IFDIR {
                        skipped.append(Skipped(path: entryPath, reason: "a folder whose name is not valid UTF-8; not read. \(FolderListing.renameAdvice)"))
                    } else if isImageName(entry.lossy) {
                        skipped.append(Skipped(path: entryPath, reason: "an image whose name is not valid UTF-8; not read. \(FolderListing.renameAdvice)"))
                    } else {
                        ignored.append(entryPath)
                    }
                }
                for entry in listing.names {
                    let entryPath = folder + "/" + entry
                    guard isVisible(entry) else { ignored.append(entryPath); continue }
                    var link = stat()
                    let found = lstat(entryPath, &link) == 0
                    let isLink = found && link.st_mode & S_IFMT == S_IFLNK
                    let kind = isLink ? fileKind(entryPath) : found ? link.st_mode & S_IFMT : nil
                    // Images in folders below a class folder belong to the class, as PyTorch's
                    // ImageFolder and Keras's image_dataset_from_directory read them.
                    guard isImageName(entry) || kind == S_IFDIR else {
                        if kind == S_IFREG, let reason = unreadFormat(entry) { skipped.append(Skipped(path: entryPath, reason: reason)) }
                        else { ignored.append(entryPath) }
                        continue
                    }
                    let resolvedEntry = isLink && boundary != nil ? resolvedPath(entryPath) : resolved + "/" + entry
                    if let boundary, isLink, !isInside(resolvedEntry, boundary) {
                        skipped.append(Skipped(path: entryPath, reason: outside))
                        continue
                    }
                    switch kind {
                    case S_IFDIR:
                        guard depth < maxDepth else {
                            skipped.append(Skipped(path: entryPath, reason: "a folder more than \(maxDepth) levels below its class folder; not read"))
                            continue
                        }
                        do { collect(entryPath, resolved: resolvedEntry, depth: depth + 1, entries: try list(entryPath)) } catch {
                            guard case .unreadable(_, let reason) = error else { continue }
                            skipped.append(Skipped(path: entryPath, reason: "a folder that cannot be listed (\(reason)); not read"))
                        }
                    case S_IFREG: images.append(entryPath)
                    case nil: skipped.append(Skipped(path: entryPath, reason: "a dangling symbolic link, or gone while listed; not read"))
                    case let kind?: skipped.append(Skipped(path: entryPath, reason: "a \(nonRegularKind(mode: kind) ?? "file"), not a regular file; not read"))
                    }
                }
            }
            collect(path, resolved: resolvedClass, depth: 0, entries: try list(path))
            files[name] = images
        }
        return Scan(root: root, files: files, ignored: ignored.sorted(), skipped: skipped.sorted { $0.path < $1.path })
    }

    /// How deep image folders below a class folder are read.
    public static let maxDepth = 16

    /// A folder's device and inode: the same folder reached twice (through a link) is read once.
    struct FolderIdentity: Hashable {
        let device: UInt64, inode: UInt64
        init?(_ path: String) {
            var status = stat()
            guard stat(path, &status) == 0 else { return nil }
            (device, inode) = (UInt64(status.st_dev), UInt64(status.st_ino))
        }
    }

    /// The file type bits (`S_IFREG`, `S_IFDIR`, ...) of what `path` leads to, links followed;
    /// nil when it does not exist. `stat` never blocks on a FIFO.
    static func fileKind(_ path: String) -> mode_t? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    /// The path with every symbolic link resolved (the path itself when it cannot be resolved,
    /// a dangling link say, which then fails to read with its own error).
    static func resolvedPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func isInside(_ path: String, _ folder: String) -> Bool {
        path == folder || path.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    static func list(_ path: String) throws(Error) -> FolderListing {
        do {
            return try FolderListing.of(path)
        } catch {
            throw .unreadable(path: path, reason: error.reason)
        }
    }
}
