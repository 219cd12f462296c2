import Foundation
import Engine
import GAN
#if canImport(Glibc)
import Glibc
#endif

/// What a kill -9 (or a power loss) can leave in the state and output trees, removed at
/// start-up: temporary files of atomic writes (`<name>.tmp.<pid>` of a process that is gone),
/// unpublished `.partial` generation folders, stale temporaries of the output link swap, and
/// the folders of a forgotten dataset that a deletion cut short left renamed aside.
/// Never the spool: those files belong to the user. Runs while the daemon holds the state
/// folder's lock, so no other daemon is writing there; a live `synthd train` keeps its files
/// (its pid is alive).
public enum LeftoverSweep {
    /// Removes the leftovers and returns their paths (for the log).
    public static func sweep(state: String, output: String) -> [String] {
        // A forgotten dataset's folders renamed aside (`Forgetting`), whatever their pid.
        var removed = Forgetting.finishInterrupted(state: state, output: output).paths
        func remove(_ path: String) {
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        // State: <state>/<file>, <state>/datasets/<name>/<file>, and one level below that.
        for path in files(under: state, depth: 3) where isOrphanedTemporary(path) { remove(path) }
        // Output: the link swap's temporaries at the top, partial generations one level down.
        for name in entries(output) where OutputTree.isLinkTemporary(name) { remove(output + "/" + name) }
        let generations = output + "/" + OutputTree.generationsFolder
        for dataset in entries(generations) {
            for name in entries(generations + "/" + dataset) where name.hasSuffix(".partial") {
                remove(generations + "/" + dataset + "/" + name)
            }
        }
        // What `synthd generate` writes in place: `out/<dataset>/manifest.jsonl` and
        // `out/<dataset>/<class>/*.png` (temporaries only where the filesystem cannot write
        // unnamed files, NFS among them). A published `out/<dataset>` link is not followed.
        for path in files(under: output, depth: 3) where isOrphanedTemporary(path) { remove(path) }
        return removed.sorted()
    }

    /// A cluster node's start-up sweep, which cannot go by pids (another node's files may be in
    /// progress, its pids those of another machine): each dataset whose state folder no one
    /// holds, its lock taken for the moment. Every writer of a dataset's model and outputs
    /// (a job, `synthd train`, `generate`, `forget`) holds that lock, so what they write midway
    /// is a dead writer's: the state folder's interrupted writes
    /// (`StateFolder.removeInterruptedWrites`), the dataset's unpublished generations, its
    /// output link's temporary and the temporaries of a `synthd generate` writing in place. A dataset in use is its holder's; the next job that takes it
    /// clears its state folder, and its next publication the rest. And the folders of forgotten
    /// datasets renamed aside to be deleted (`Forgetting`), whoever renamed them: no one reads
    /// them, and a node deleting one at the same moment only shares the work. Returns the paths
    /// removed.
    public static func sweepIdleDatasets(state: String, output: String) -> [String] {
        let datasets = state + "/datasets", generationsRoot = output + "/" + OutputTree.generationsFolder
        var removed = Forgetting.finishInterrupted(state: state, output: output).paths
        func remove(_ path: String) {
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        for name in entries(datasets) where !name.hasPrefix(".") {
            let path = datasets + "/" + name
            var status = stat()
            guard lstat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR,
                  let folder = try? StateFolder(path), let lock = try? folder.lock(for: "synthd run: start-up sweep") else { continue }
            removed += folder.removeInterruptedWrites().map { path + "/" + $0 }
            let generations = generationsRoot + "/" + name
            for entry in entries(generations) where entry.hasSuffix(".partial") { remove(generations + "/" + entry) }
            remove(output + "/" + OutputTree.linkTemporaryName(name))
            for path in inPlaceOutput(output + "/" + name) where AtomicTemporary.writer(of: path) != nil { remove(path) }
            lock.release()
        }
        return removed.sorted()
    }

    /// The files `synthd generate` writes into `out/<dataset>/` (its manifest, the class folders'
    /// images), when that is a folder and not the daemon's published link.
    static func inPlaceOutput(_ folder: String) -> [String] {
        var status = stat()
        guard lstat(folder, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else { return [] }
        return files(under: folder, depth: 2)
    }

    /// `<name>.tmp.<pid>` whose process no longer exists.
    static func isOrphanedTemporary(_ path: String) -> Bool {
        guard let pid = AtomicTemporary.writer(of: path) else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    static func entries(_ folder: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    }

    /// Paths of everything under `folder` down to `depth` levels (links not followed).
    static func files(under folder: String, depth: Int) -> [String] {
        guard depth > 0 else { return [] }
        var result: [String] = []
        for name in entries(folder) {
            let path = folder + "/" + name
            result.append(path)
            var status = stat()
            if lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR { result += files(under: path, depth: depth - 1) }
        }
        return result
    }
}
