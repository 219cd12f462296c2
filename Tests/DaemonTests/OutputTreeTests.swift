import Daemon
import Engine
import Foundation
import Testing

@Suite struct OutputTreeTests {
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func fill(_ folder: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: folder + "/cat", withIntermediateDirectories: true)
        try writeFileAtomically(path: folder + "/cat/1.png", bytes: Array(text.utf8))
    }

    func published(_ tree: OutputTree) -> String? {
        try? String(contentsOfFile: tree.linkPath("pets") + "/cat/1.png", encoding: .utf8)
    }

    @Test func publishesWholeGenerationsAndKeepsTheNewest() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = OutputTree(root: root, keep: 2)
        let first = try tree.publish("pets", generation: "step-10") { try fill($0, "ten") }
        #expect(first.published && first.movedAside == nil)
        #expect(tree.current("pets") == "step-10" && published(tree) == "ten")
        #expect(try !tree.publish("pets", generation: "step-10") { _ in Issue.record("written twice") }.published, "already published")

        try tree.publish("pets", generation: "step-20") { try fill($0, "twenty") }
        try tree.publish("pets", generation: "step-30") { try fill($0, "thirty") }
        #expect(published(tree) == "thirty")
        let kept = try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets")).sorted()
        #expect(kept == ["step-20", "step-30"], "the current one and the newest earlier one")
    }

    @Test func aFailedWriteChangesNothingVisible() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = OutputTree(root: root, keep: 2)
        try tree.publish("pets", generation: "step-10") { try fill($0, "ten") }
        struct DiskFullError: Error {}
        #expect(throws: DiskFullError.self) {
            try tree.publish("pets", generation: "step-20") { folder in
                try fill(folder, "half")
                throw DiskFullError()
            }
        }
        #expect(tree.current("pets") == "step-10" && published(tree) == "ten")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets")) == ["step-10"],
                "the partial generation is removed")
        // Tried again, it completes.
        try tree.publish("pets", generation: "step-20") { try fill($0, "twenty") }
        #expect(published(tree) == "twenty")
    }

    @Test func aRealFolderInTheWayIsMovedAsideAndNeverPruned() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try fill(root + "/pets", "by hand")
        let tree = OutputTree(root: root, keep: 2)
        let publication = try tree.publish("pets", generation: "step-10") { try fill($0, "ten") }
        #expect(published(tree) == "ten")
        let kept = try #require(publication.movedAside)
        #expect(kept.hasPrefix(tree.generationsPath("pets") + "/moved-aside-"))
        #expect(try String(contentsOfFile: kept + "/cat/1.png", encoding: .utf8) == "by hand")
        // Not one of synthd's generations: kept however many are published after it.
        for step in [20, 30, 40] { try tree.publish("pets", generation: "step-\(step)") { try fill($0, "\(step)") } }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets")).sorted()
                == [(kept as NSString).lastPathComponent, "step-30", "step-40"])
        #expect(try String(contentsOfFile: kept + "/cat/1.png", encoding: .utf8) == "by hand")
    }
}

@Suite struct LeftoverSweepTests {
    /// What a kill -9 leaves is removed from the state and output trees, and nothing else:
    /// not a live process's temporary file, not published generations, not the spool.
    @Test func removesWhatAnInterruptedRunLeftAndNothingElse() throws {
        let root = NSTemporaryDirectory() + "synthd-sweep-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = root + "/state", out = root + "/out", generations = out + "/.synthd-generations/pets"
        for folder in [state + "/datasets/pets", generations + "/step-10-aa/cat", generations + "/step-20-bb.partial/cat", root + "/spool/pets/cat",
                       out + "/books/shirt"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        // A pid that cannot be running (above pid_max) and this process's own.
        let dead = "4194305", alive = "\(getpid())"
        let leftovers = [state + "/queue.json.tmp." + dead, state + "/datasets/pets/checkpoint.ckpt.tmp." + dead,
                         generations + "/step-20-bb.partial", out + "/.pets.link.tmp",
                         // `synthd generate` writing in place (`out/books/`), killed.
                         out + "/books/manifest.jsonl.tmp." + dead, out + "/books/shirt/3.png.tmp." + dead]
        let kept = [state + "/queue.json", state + "/datasets/pets/model.json.tmp." + alive, generations + "/step-10-aa/cat/1.png",
                    root + "/spool/pets/cat/1.png.tmp." + dead, state + "/datasets/pets/notes.tmp.x",
                    out + "/books/shirt/3.png", out + "/books/shirt/4.png.tmp." + alive]
        for path in leftovers + kept where !path.hasSuffix(".partial") {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])), "could not create \(path)")
        }
        try FileManager.default.createSymbolicLink(atPath: out + "/pets", withDestinationPath: ".synthd-generations/pets/step-10-aa")

        let removed = LeftoverSweep.sweep(state: state, output: out)
        #expect(removed == leftovers.sorted())
        for path in leftovers { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        for path in kept { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/pets")) == ".synthd-generations/pets/step-10-aa")
    }

    /// A cluster node cannot go by pids (another machine's may be writing): at start-up it
    /// clears only what the writers of datasets whose lock it can take left (state
    /// temporaries whatever their pids, unpublished generations, the link's temporary), and
    /// leaves a held dataset's files, the state's top and other outputs to their owners.
    @Test func aClusterNodeSweepsOnlyTheDatasetsNoOneHolds() throws {
        let root = NSTemporaryDirectory() + "synthd-sweep-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = root + "/state", out = root + "/out", generations = out + "/.synthd-generations"
        for name in ["idle", "busy"] {
            for folder in [state + "/datasets/" + name, generations + "/" + name + "/step-5-aa", generations + "/" + name + "/step-9-bb.partial",
                           out + "/" + name + "/cat"] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
        }
        // `out/<name>/` is where a `synthd generate` killed midway wrote in place.
        let leftovers = [state + "/datasets/idle/checkpoint.ckpt.tmp.1", generations + "/idle/step-9-bb.partial", out + "/.idle.link.tmp",
                         out + "/idle/manifest.jsonl.tmp.1", out + "/idle/cat/2.png.tmp.1"]
        let kept = [state + "/datasets/busy/checkpoint.ckpt.tmp.1", state + "/queue.json.tmp.4194305", state + "/datasets/idle/model.json",
                    generations + "/busy/step-9-bb.partial", out + "/.busy.link.tmp", generations + "/idle/step-5-aa",
                    out + "/busy/manifest.jsonl.tmp.1", out + "/busy/cat/2.png.tmp.1", out + "/idle/cat/1.png"]
        for path in leftovers + kept where !path.contains("step-") {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])), "could not create \(path)")
        }
        // Forgotten datasets' folders renamed aside, by a process of this machine or another:
        // swept whatever the pid; a user's look-alike without one is not.
        let asides = [state + "/datasets/.gone.forgotten.tmp.\(getpid())", generations + "/.gone.forgotten.tmp.1"]
        for folder in asides + [state + "/datasets/.gone.forgotten"] {
            try FileManager.default.createDirectory(atPath: folder + "/inner", withIntermediateDirectories: true)
        }
        let held = try FileLock(state + "/datasets/busy/.lock", holder: "a job on another node")
        defer { held.release() }
        #expect(LeftoverSweep.sweepIdleDatasets(state: state, output: out) == (leftovers + asides).sorted())
        for path in asides { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        #expect(FileManager.default.fileExists(atPath: state + "/datasets/.gone.forgotten/inner"))
        for path in leftovers { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
        for path in kept { #expect(FileManager.default.fileExists(atPath: path), "\(path)") }
        let again = try FileLock(state + "/datasets/idle/.lock", holder: "the next job")
        again.release()
    }
}
