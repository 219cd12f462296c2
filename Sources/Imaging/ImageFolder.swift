import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The ImageFolder layout that PyTorch and Keras read: `<root>/<class>/<image files>`.
public enum ImageFolder {
    /// What a scan found.
    public struct Scan: Sendable, Equatable {
        public let root: String
        /// Class folder name -> image file paths, sorted by name.
        public let files: [String: [String]]
        /// Entries passed over: hidden, temporary, not an image by name, or not a folder at class level.
        public let ignored: [String]

        /// Classes with at least one image, sorted by name.
        public var classNames: [String] { files.keys.filter { !(files[$0]!.isEmpty) }.sorted() }
        public var emptyClasses: [String] { files.keys.filter { files[$0]!.isEmpty }.sorted() }
        public var imageCount: Int { files.values.reduce(0) { $0 + $1.count } }
    }

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case notAFolder(path: String)
        case unreadable(path: String, reason: String)
        case outside(path: String, boundary: String)

        public var description: String {
            switch self {
            case .notAFolder(let path): return "\(path): not a folder (a dataset is a folder of class folders of images)"
            case .unreadable(let path, let reason): return "\(path): cannot list: \(reason)"
            case .outside(let path, let boundary): return "\(path): a symbolic link that leads out of \(boundary); not followed"
            }
        }
    }

    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Whether a directory entry is worth looking at: not hidden, not a partial copy.
    public static func isVisible(_ name: String) -> Bool {
        !(name.hasPrefix(".") || name.hasSuffix(".tmp") || name.hasSuffix(".part") || name.hasSuffix("~"))
    }

    public static func isImageName(_ name: String) -> Bool {
        guard isVisible(name), let dot = name.lastIndex(of: ".") else { return false }
        return imageExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Lists the dataset at `root`. With `confinedTo`, symbolic links (of class folders or
    /// images) that lead outside that folder are not followed but ignored: a dataset dropped
    /// into the spool cannot make synthd read `/etc` (the daemon passes the spool).
    /// Class folders whose names are not safe path components (see `SafeName`) are ignored.
    public static func scan(_ root: String, confinedTo confinement: String? = nil) throws(Error) -> Scan {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw .notAFolder(path: root)
        }
        let boundary = confinement.map(resolvedPath)
        if let boundary, !isInside(resolvedPath(root), boundary) { throw .outside(path: root, boundary: confinement!) }
        var files: [String: [String]] = [:]
        var ignored: [String] = []
        for name in try list(root) {
            let path = root + "/" + name
            var isClassFolder: ObjCBool = false
            guard isVisible(name), SafeName.isSafe(name),
                  FileManager.default.fileExists(atPath: path, isDirectory: &isClassFolder), isClassFolder.boolValue,
                  boundary.map({ isInside(resolvedPath(path), $0) }) ?? true else {
                ignored.append(path)
                continue
            }
            var images: [String] = []
            for file in try list(path) {
                let filePath = path + "/" + file
                if isImageName(file), boundary.map({ isInside(resolvedPath(filePath), $0) }) ?? true {
                    images.append(filePath)
                } else {
                    ignored.append(filePath)
                }
            }
            files[name] = images
        }
        return Scan(root: root, files: files, ignored: ignored.sorted())
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

    static func list(_ path: String) throws(Error) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}
