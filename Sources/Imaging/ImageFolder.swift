import Foundation

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

        public var description: String {
            switch self {
            case .notAFolder(let path): return "\(path): not a folder (a dataset is a folder of class folders of images)"
            case .unreadable(let path, let reason): return "\(path): cannot list: \(reason)"
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

    public static func scan(_ root: String) throws(Error) -> Scan {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
            throw .notAFolder(path: root)
        }
        var files: [String: [String]] = [:]
        var ignored: [String] = []
        for name in try list(root) {
            let path = root + "/" + name
            var isClassFolder: ObjCBool = false
            guard isVisible(name), FileManager.default.fileExists(atPath: path, isDirectory: &isClassFolder),
                  isClassFolder.boolValue else {
                ignored.append(path)
                continue
            }
            var images: [String] = []
            for file in try list(path) {
                if isImageName(file) { images.append(path + "/" + file) } else { ignored.append(path + "/" + file) }
            }
            files[name] = images
        }
        return Scan(root: root, files: files, ignored: ignored.sorted())
    }

    static func list(_ path: String) throws(Error) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
    }
}
