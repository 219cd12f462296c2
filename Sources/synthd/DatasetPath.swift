import Archives
import Foundation
import Imaging
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

    /// Refuses an output folder that a scan of the dataset would read (`placement`): `synthd
    /// generate shoes --out ~/data` where the real images are `~/data/shoes` wrote the synthetic
    /// images among the real ones (and a daemon watching them trained on both), and `--out shoes`
    /// made a class folder of them inside the dataset.
    static func refuseOutput(_ output: String, inside dataset: String) throws {
        guard let placement = placement(output, readWith: dataset) else { return }
        throw CommandFailure("\(output) \(placement): the synthetic images would be mixed with the real ones "
            + "(and read as real by whatever trains on them); give --out another folder (the daemon writes its outputs under [paths] output)")
    }

    /// Refuses a state folder that a scan of the dataset would read: `synthd train shoes --state
    /// shoes/model` trained its next run on its own samples.png and losses.png, as a class "model".
    static func refuseState(_ state: String, inside dataset: String) throws {
        guard let placement = placement(state, readWith: dataset) else { return }
        throw CommandFailure("\(state) \(placement): its pictures (samples.png, losses.png) would be read as images "
            + "of the dataset; give --state a folder outside it (or a hidden one in it, such as \(dataset)/.synthd, which is not read)")
    }

    /// Where `path` lies when a scan of the dataset would read it, in words ("is the dataset
    /// folder itself", "is inside the dataset folder shoes"); nil when it would not: outside the
    /// dataset, or below a hidden or otherwise passed-over folder in it (`shoes/.synthd`).
    static func placement(_ path: String, readWith dataset: String) -> String? {
        let real = resolved(dataset), target = resolved(path)
        if target == real { return "is the dataset folder itself" }
        guard target.hasPrefix(real + "/"),
              target.dropFirst(real.count + 1).split(separator: "/").allSatisfy({ ImageFolder.isVisible(String($0)) }) else { return nil }
        return "is inside the dataset folder \(dataset)"
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
