import Archives
import Foundation

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
}
