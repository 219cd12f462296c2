@testable import Daemon
import Engine
import Foundation
import GAN
import Logging
import LogTestSupport
import Testing

/// What synthd keeps of a dataset that left the spool, deleted by `synthd forget` or after
/// `[service] forget_removed_after_days`.
@Suite struct ForgettingTests {
    struct Folders {
        let root = NSTemporaryDirectory() + "synthd-forget-\(UUID().uuidString)"
        var spool: String { root + "/spool" }
        var state: String { root + "/state" }
        var out: String { root + "/out" }
        var tree: OutputTree { OutputTree(root: out, keep: 2) }

        /// A trained and published dataset's files, as the daemon leaves them.
        func makeDataset(_ name: String, removedAt: Date? = nil) throws {
            let folder = state + "/datasets/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(count: 4096).write(to: URL(fileURLWithPath: folder + "/checkpoint.ckpt"))
            var runtime = DatasetRuntime()
            runtime.phase = removedAt == nil ? .done : .removed
            runtime.updatedAt = removedAt ?? Date()
            try Data(RuntimeStore.encode(runtime)).write(to: URL(fileURLWithPath: folder + "/daemon.json"))
            let generation = tree.generationPath(name, "step-10-abc")
            try FileManager.default.createDirectory(atPath: generation + "/cat", withIntermediateDirectories: true)
            try Data(count: 2048).write(to: URL(fileURLWithPath: generation + "/cat/0.png"))
            try FileManager.default.createSymbolicLink(atPath: tree.linkPath(name), withDestinationPath: ".synthd-generations/\(name)/step-10-abc")
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        }

        func exists(_ path: String) -> Bool { var s = stat(); return lstat(path, &s) == 0 }
    }

    @Test func aRemovedDatasetsModelAndOutputsAreDeleted() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("pets")
        try f.makeDataset("toys")
        let freed = try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree)
        #expect(freed.state && freed.generations == 1 && freed.bytes >= 4096 + 2048, "\(freed)")
        #expect(!f.exists(f.state + "/datasets/pets") && !f.exists(f.out + "/pets") && !f.exists(f.tree.generationsPath("pets")))
        #expect(f.exists(f.state + "/datasets/toys") && f.exists(f.out + "/toys"), "another dataset untouched")
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.state + "/datasets") == ["toys"], "nothing left aside")
        // Outputs kept when asked.
        let kept = try Forgetting.forget("toys", spool: f.spool, state: f.state, output: nil)
        #expect(kept.state && kept.generations == 0 && f.exists(f.out + "/toys"))
    }

    @Test func whatIsInUseOrStillInTheSpoolIsRefused() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("pets")
        try FileManager.default.createDirectory(atPath: f.spool + "/pets", withIntermediateDirectories: true)
        #expect {
            try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree)
        } throws: { error in
            "\(error)" == "\(f.spool)/pets is still in the spool: remove it from the spool first (the daemon would train it again)"
        }
        try FileManager.default.removeItem(atPath: f.spool + "/pets")
        let lock = try StateFolder(f.state + "/datasets/pets").lock(for: "synthd train")
        #expect {
            try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree)
        } throws: { error in "\(error)".contains("synthd train") && "\(error)".contains("wait for it to finish") }
        lock.release()
        #expect(f.exists(f.state + "/datasets/pets/checkpoint.ckpt") && f.exists(f.out + "/pets"), "nothing deleted")
        #expect(throws: Forgetting.Error.self) { try Forgetting.forget("../etc", spool: f.spool, state: f.state, output: f.tree) }
    }

    @Test func aFolderOfItsOwnAtTheOutputsPlaceIsLeftAlone() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("pets")
        try FileManager.default.removeItem(atPath: f.out + "/pets")
        try FileManager.default.createDirectory(atPath: f.out + "/pets/cat", withIntermediateDirectories: true)
        let freed = try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree)
        #expect(freed.keptFolder == f.out + "/pets" && f.exists(f.out + "/pets/cat"))
        #expect(freed.summary.contains("is a folder of its own"))
    }

    @Test func aDeletionCutShortIsSweptAtTheNextStart() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("pets")
        // What a kill midway leaves: the folders renamed aside by a process that is gone.
        let gone: Int32 = 999_999
        try FileManager.default.moveItem(atPath: f.state + "/datasets/pets", toPath: f.state + "/datasets/.pets.forgotten.tmp.\(gone)")
        try FileManager.default.moveItem(atPath: f.tree.generationsPath("pets"), toPath: f.out + "/.synthd-generations/.pets.forgotten.tmp.\(gone)")
        let removed = LeftoverSweep.sweep(state: f.state, output: f.out)
        #expect(removed == [f.out + "/.synthd-generations/.pets.forgotten.tmp.\(gone)", f.state + "/datasets/.pets.forgotten.tmp.\(gone)"].sorted())
    }

    /// A forget killed after it renamed the state folder aside, before the outputs: run again,
    /// it finishes the deletion (whatever the pid: the aside folder is no one's to read) and
    /// says so, where it used to find no such dataset and leave the folder until a daemon
    /// started. Another dataset's aside folder is not its business.
    @Test func aDeletionCutShortIsFinishedByTheNextForget() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("pets")
        try f.makeDataset("pets2")
        let aside = f.state + "/datasets/.pets.forgotten.tmp.\(getpid())", other = f.state + "/datasets/.pets2.forgotten.tmp.1"
        try FileManager.default.moveItem(atPath: f.state + "/datasets/pets", toPath: aside)
        try FileManager.default.moveItem(atPath: f.state + "/datasets/pets2", toPath: other)
        let freed = try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree)
        #expect(freed.finishedInterrupted && !freed.state && freed.generations == 1 && freed.bytes > 0)
        #expect(freed.summary.hasPrefix("what an interrupted deletion left and 1 output generation deleted"), "\(freed.summary)")
        #expect(!f.exists(aside) && !f.exists(f.tree.generationsPath("pets")))
        #expect(f.exists(other) && f.exists(f.tree.generationsPath("pets2")))
        // Nothing of it left: a third run finds no such dataset.
        #expect(try Forgetting.forget("pets", spool: f.spool, state: f.state, output: f.tree).isEmpty)
    }

    /// The daemon forgets datasets that left the spool long enough ago, and only those.
    @Test func theDaemonForgetsDatasetsRemovedLongAgo() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        try f.makeDataset("old", removedAt: Date().addingTimeInterval(-8 * 86_400))
        try f.makeDataset("recent", removedAt: Date().addingTimeInterval(-6 * 86_400))
        try f.makeDataset("present")
        try FileManager.default.createDirectory(atPath: f.spool + "/present/cat", withIntermediateDirectories: true)
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (f.spool, f.out, f.state)
        let quiet = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }
        try Scheduler(configuration: configuration, logger: quiet).forgetLongRemoved()
        #expect(f.exists(f.state + "/datasets/old"), "0 days: kept for ever")
        configuration.forgetRemovedAfterDays = 7
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in CapturingHandler(lines: lines) })
        scheduler.forgetLongRemoved()
        #expect(!f.exists(f.state + "/datasets/old") && !f.exists(f.out + "/old"))
        #expect(lines.all.contains { $0.contains("left the spool 8 days ago: its model and state and 1 output generation deleted")
            && $0.contains("forget_removed_after_days: after 7 days") }, "\(lines.all)")
        #expect(f.exists(f.state + "/datasets/recent") && f.exists(f.out + "/recent"))
        #expect(f.exists(f.state + "/datasets/present") && f.exists(f.out + "/present"))
    }

    /// The log's spans read right whatever the limit (a fraction of a day, as a soak sets,
    /// read "0.0 days ago").
    @Test func spansOfTimeAreSaidInTheirUnit() {
        #expect(Scheduler.duration(8 * 86_400) == "8 days" && Scheduler.duration(1.5 * 86_400) == "1.5 days")
        #expect(Scheduler.duration(86_400) == "1 day" && Scheduler.duration(3 * 3_600) == "3 hours")
        #expect(Scheduler.duration(0.5 * 3_600) == "30 minutes" && Scheduler.duration(61) == "1 minute")
        #expect(Scheduler.duration(0.0002314814814814815 * 86_400) == "20 s")
        // At a unit's edge the rounded figure decides: never "60 s" or "24 hours".
        #expect(Scheduler.duration(59.6) == "1 minute" && Scheduler.duration(59.4) == "59 s")
        #expect(Scheduler.duration(3_599) == "1 hour" && Scheduler.duration(86_399) == "1 day")
    }

    /// In a cluster the nodes share the records: the node that may look at a dataset forgets
    /// it, and its record goes with its files.
    @Test func inAClusterOneNodeForgetsAndTheRecordGoesWithTheFiles() throws {
        let f = Folders()
        defer { try? FileManager.default.removeItem(atPath: f.root) }
        let removedAt = Date().addingTimeInterval(-8 * 86_400)
        try f.makeDataset("old", removedAt: removedAt)
        let records = InMemoryRecords()
        _ = try records.update("old") { $0.phase = .removed; $0.updatedAt = removedAt }
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (f.spool, f.out, f.state)
        configuration.forgetRemovedAfterDays = 7
        let quiet = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }
        let a = try Scheduler(configuration: configuration, logger: quiet, shared: records)
        let b = try Scheduler(configuration: configuration, logger: quiet, shared: records)
        a.mayScan = { _ in false }
        b.mayScan = { _ in true }
        a.forgetLongRemoved()
        let kept = try records.datasets()
        #expect(f.exists(f.state + "/datasets/old") && kept == ["old"], "left to the node that may look at it")
        b.forgetLongRemoved()
        #expect(!f.exists(f.state + "/datasets/old") && !f.exists(f.out + "/old"))
        #expect(try records.datasets().isEmpty)
    }
}
