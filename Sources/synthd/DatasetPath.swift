import Archives
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the commands that take a dataset folder say when given an archive instead (the
/// download itself, `flowers.zip`): "not a folder" left the user guessing what to do.
enum DatasetPath {
    static func refuseArchive(_ path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue else { return }
        let name = (path as NSString).lastPathComponent
        guard let stem = ArchiveFormat.of(name: name)?.stem ?? ArchiveFormat.unreadReason(name: name).map({ _ in "dataset" }) else { return }
        let unpack = name.lowercased().hasSuffix(".zip") ? "unzip \(name) -d \(stem)" : "mkdir \(stem) && tar xf \(name) -C \(stem)"
        throw CommandFailure("\(path): an archive, not a dataset folder: unpack it first (`\(unpack)`), "
            + "or drop it into the spool of `synthd run`, which unpacks \(ArchiveFormat.unpackedList) archives itself")
    }

    /// Refuses an output folder that is the dataset itself or inside it: `synthd generate shoes
    /// --out ~/data` where the real images are `~/data/shoes` wrote the synthetic images among
    /// the real ones (and a daemon watching them trained on both), and `--out shoes` made a class
    /// folder of them inside the dataset.
    static func refuseOutput(_ output: String, inside dataset: String) throws {
        let real = resolved(dataset), written = resolved(output)
        guard written == real || written.hasPrefix(real + "/") else { return }
        let what = written == real ? "is the dataset folder itself" : "is inside the dataset folder \(dataset)"
        throw CommandFailure("\(output) \(what): the synthetic images would be mixed with the real ones (and read as real by "
            + "whatever trains on them); give --out another folder (the daemon writes its outputs under [paths] output)")
    }

    /// `path` with links and `..` resolved: its nearest existing ancestor's real path, the rest
    /// of it appended (an output folder is often not there yet).
    static func resolved(_ path: String) -> String {
        var head = path.isEmpty ? "." : path, rest: [String] = []
        while true {
            if let real = realpath(head, nil) {
                defer { free(real) }
                return ([String(cString: real)] + rest.reversed()).joined(separator: "/")
            }
            let parent = (head as NSString).deletingLastPathComponent
            if parent == head { return path }
            rest.append((head as NSString).lastPathComponent)
            head = parent.isEmpty ? "." : parent
        }
    }
}
