import Engine
import Foundation
import GAN
import Imaging

/// Deletes what synthd keeps of a dataset that left the spool: its state folder (model,
/// checkpoints, pictures, records) and, unless asked to keep them, its published outputs and
/// earlier generations. A dataset that left the spool keeps all of these (a rename, or the
/// folder back, carries on from its model), so without this a daemon whose datasets come and
/// go fills its disk. `synthd forget` calls it, and the daemon after `[service]
/// forget_removed_after_days`.
///
/// Each folder is first renamed to `.<name>.forgotten.tmp.<pid>` beside it, so readers see it
/// there or gone, never half deleted. A process killed while deleting leaves that name; the
/// next `forget` of the dataset, and every start-up sweep (`LeftoverSweep`), finish the job
/// (`finishInterrupted`).
public enum Forgetting {
    public struct Error: Swift.Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// What was deleted.
    public struct Freed: Sendable, Equatable {
        public var state = false
        /// What an earlier deletion of the dataset, cut short, had left was removed.
        public var finishedInterrupted = false
        public var generations = 0
        public var bytes: UInt64 = 0
        /// A real folder at `out/<dataset>` (written by `synthd generate`, not a link of the
        /// daemon's): never deleted here.
        public var keptFolder: String?

        public init() {}

        /// Counts what `finishInterrupted` removed of the dataset.
        public mutating func add(finished earlier: (paths: [String], bytes: UInt64)) {
            finishedInterrupted = finishedInterrupted || !earlier.paths.isEmpty
            bytes += earlier.bytes
        }

        /// Nothing was there to delete (no such dataset).
        public var isEmpty: Bool { !state && !finishedInterrupted && generations == 0 && keptFolder == nil }

        public var summary: String {
            var parts: [String] = []
            if finishedInterrupted { parts.append("what an interrupted deletion left") }
            if state { parts.append("its model and state") }
            if generations > 0 { parts.append("\(generations) output generation" + (generations == 1 ? "" : "s")) }
            let what = parts.isEmpty ? "nothing to delete" : parts.joined(separator: " and ") + " deleted, \(ArchiveRecord.megabytes(bytes)) freed"
            return what + (keptFolder.map { "; \($0) is a folder of its own, not the daemon's outputs: left as it is" } ?? "")
        }
    }

    /// `outputs`: also the outputs (nil: none to look at, the output folder unknown).
    public static func forget(_ dataset: String, spool: String?, state: String, output: OutputTree?) throws(Error) -> Freed {
        try mayForget(dataset, spool: spool)
        var freed = Freed()
        freed.add(finished: finishInterrupted(dataset, state: state, output: output?.root))
        let folder = state + "/datasets/" + dataset
        if FileManager.default.fileExists(atPath: folder) {
            // No `synthd train` or daemon job may be writing it meanwhile.
            let lock: FileLock
            do { lock = try StateFolder(folder).lock(for: "synthd forget") } catch {
                throw Error(description: "\(folder): \(error); wait for it to finish, or stop it")
            }
            freed.bytes += bytes(under: folder)
            let aside = try moveAside(folder)
            lock.release()
            try? FileManager.default.removeItem(atPath: aside)
            freed.state = true
        }
        if let output {
            let link = output.linkPath(dataset)
            var status = stat()
            if lstat(link, &status) == 0 {
                if status.st_mode & S_IFMT == S_IFLNK { unlink(link) } else { freed.keptFolder = link }
            }
            let generations = output.generationsPath(dataset)
            if FileManager.default.fileExists(atPath: generations) {
                freed.generations = ((try? FileManager.default.contentsOfDirectory(atPath: generations)) ?? []).filter { !$0.hasPrefix(".") }.count
                freed.bytes += bytes(under: generations)
                try? FileManager.default.removeItem(atPath: try moveAside(generations))
            }
        }
        return freed
    }

    /// Refuses a name that is not a dataset's, and a dataset still in the spool.
    public static func mayForget(_ dataset: String, spool: String?) throws(Error) {
        if let problem = SafeName.problem(with: dataset) { throw Error(description: "'\(dataset)': not a dataset name (\(problem))") }
        if let spool, FileManager.default.fileExists(atPath: spool + "/" + dataset) {
            throw Error(description: "\(spool)/\(dataset) is still in the spool: remove it from the spool first (the daemon would train it again)")
        }
    }

    private static func moveAside(_ path: String) throws(Error) -> String {
        let parent = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        let aside = AtomicTemporary.path(for: parent + "/." + name + ".forgotten")
        guard rename(path, aside) == 0 else { throw Error(description: "\(path): cannot delete: \(String(cString: strerror(errno)))") }
        return aside
    }

    /// Removes the folders that deletions cut short left renamed aside
    /// (`.<name>.forgotten.tmp.<pid>`, in the state's datasets folder and the output's
    /// generations folder): `dataset`'s, or every dataset's when nil. Whatever the pid: nothing
    /// reads such a folder once it is renamed, so anyone may finish its deletion, and a process
    /// still deleting it (on this machine or another node) only shares the work. Returns the
    /// paths removed and the bytes they held.
    public static func finishInterrupted(_ dataset: String? = nil, state: String, output: String?) -> (paths: [String], bytes: UInt64) {
        var removed: [String] = [], bytes: UInt64 = 0
        for folder in [state + "/datasets"] + (output.map { [$0 + "/" + OutputTree.generationsFolder] } ?? []) {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where isAside(name, of: dataset) {
                let path = folder + "/" + name, size = self.bytes(under: path)
                if (try? FileManager.default.removeItem(atPath: path)) != nil {
                    removed.append(path)
                    bytes += size
                }
            }
        }
        return (removed.sorted(), bytes)
    }

    /// A folder renamed aside to be deleted: `dataset`'s, or any dataset's when nil.
    static func isAside(_ name: String, of dataset: String?) -> Bool {
        let marker = ".forgotten.tmp."
        guard name.hasPrefix("." + (dataset.map { $0 + marker } ?? "")), name.contains(marker) else { return false }
        return AtomicTemporary.writer(of: name) != nil
    }

    /// The bytes of the files under `path` (links not followed).
    static func bytes(under path: String) -> UInt64 {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: UInt64 = 0
        for case let relative as String in walker {
            var status = stat()
            if lstat(path + "/" + relative, &status) == 0, status.st_mode & S_IFMT == S_IFREG { total += UInt64(status.st_blocks) * 512 }
        }
        return total
    }
}

