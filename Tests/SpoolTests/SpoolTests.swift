import FileTestSupport
import Foundation
@testable import Spool
import Testing

@Suite struct SettleTrackerTests {
    @Test func datasetIsReadyAfterQuietTimeOrReadyFile() {
        var tracker = SettleTracker(settle: 10)
        let t0 = ContinuousClock.now
        tracker.note(.changed(dataset: "shoes"), at: t0)
        tracker.note(.changed(dataset: "shoes"), at: t0.advanced(by: .seconds(5)))  // still copying
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(14))).isEmpty)
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(15))) == ["shoes"])
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(30))).isEmpty, "reported once per burst")

        tracker.note(.ready(dataset: "bags"), at: t0)
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(2))) == ["bags"], ".ready needs no settle time")

        // A copy that brought its `.ready` file first: taken once the copy is over, not mid-copy.
        tracker.note(.changed(dataset: "copied"), at: t0)
        tracker.note(.ready(dataset: "copied"), at: t0.advanced(by: .milliseconds(10)))
        tracker.note(.changed(dataset: "copied"), at: t0.advanced(by: .seconds(1)))
        #expect(tracker.takeReady(at: t0.advanced(by: .milliseconds(2500))).isEmpty, "still being copied")
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(3))) == ["copied"])

        tracker.note(.changed(dataset: "gone"), at: t0)
        tracker.note(.removed(dataset: "gone"), at: t0)
        #expect(tracker.takeReady(at: t0.advanced(by: .seconds(100))).isEmpty)
    }

    @Test func datasetNames() {
        #expect(datasetName(of: "/spool/shoes/boot/1.png", spool: "/spool") == "shoes")
        #expect(datasetName(of: "/spool/shoes", spool: "/spool/") == "shoes")
        #expect(datasetName(of: "/elsewhere/x", spool: "/spool") == nil)
        #expect(datasetName(of: "/spool/", spool: "/spool") == nil)
    }
}

/// Collects events from the watcher's thread.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [SpoolEvent] = []
    func append(_ event: SpoolEvent) { lock.lock(); events.append(event); lock.unlock() }
    var all: [SpoolEvent] { lock.lock(); defer { lock.unlock() }; return events }

    /// Waits up to `timeout` seconds for an event matching `predicate`.
    func wait(timeout: Double = 5, for predicate: (SpoolEvent) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if all.contains(where: predicate) { return true }
            usleep(20_000)
        }
        return false
    }

    /// Writes a one-byte file at `path` and waits for a change of `dataset` heard after it.
    func hears(_ dataset: String, writing path: String) throws -> Bool {
        let before = all.count
        try Data([1]).write(to: URL(fileURLWithPath: path))
        return wait { _ in self.all.dropFirst(before).contains(.changed(dataset: dataset)) }
    }
}

/// A new folder under the temporary directory with `folders` (relative paths) made in it.
func temporarySpool(_ folders: String...) throws -> String {
    let spool = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
    for folder in folders.isEmpty ? [""] : folders {
        try FileManager.default.createDirectory(atPath: spool + "/" + folder, withIntermediateDirectories: true)
    }
    return spool
}

/// One at a time: several watch the process's inotify descriptors.
@Suite(.serialized) struct SpoolWatcherTests {
    /// Starts `watcher` into `log` and returns its inotify descriptor: the one instance more
    /// than before (the suite runs one test at a time).
    func startFindingDescriptor(_ watcher: SpoolWatcher, into log: EventLog) throws -> Int32 {
        let others = KernelWatches.inotifyDescriptors()
        try watcher.start { log.append($0) }
        let mine = KernelWatches.inotifyDescriptors().subtracting(others)
        if mine.count != 1 { watcher.stop() }
        try #require(mine.count == 1, "\(mine)")
        return mine.first!
    }

    @Test func seesArrivalsInNewFoldersReadyFilesAndRemovals() throws {
        let spool = try temporarySpool()
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }

        // A file directly in the spool is not a dataset, only reported as a stray file.
        try Data("x".utf8).write(to: URL(fileURLWithPath: spool + "/README.txt"))
        #expect(log.wait { $0 == .strayFile(name: "README.txt") })
        // A new dataset with a new class folder: the class folder is watched as it appears,
        // so a file written into it afterwards is seen.
        try FileManager.default.createDirectory(atPath: spool + "/shoes/boot", withIntermediateDirectories: true)
        #expect(log.wait { $0 == .changed(dataset: "shoes") })
        usleep(300_000)  // the nested watch is added on the watcher's thread
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/late.png"))
        #expect(log.wait { _ in log.all.filter { $0 == .changed(dataset: "shoes") }.count >= 2 })

        try Data().write(to: URL(fileURLWithPath: spool + "/shoes/.ready"))
        #expect(log.wait { $0 == .ready(dataset: "shoes") })

        // Permissions changed (a dataset that could not be read, fixed): a change to look at.
        let beforeChmod = log.all.count
        #expect(chmod(spool + "/shoes/boot", 0o750) == 0)
        #expect(log.wait { _ in log.all.dropFirst(beforeChmod).contains(.changed(dataset: "shoes")) })

        try FileManager.default.removeItem(atPath: spool + "/shoes")
        #expect(log.wait { $0 == .removed(dataset: "shoes") })
        #expect(!log.all.contains { if case .changed(let name) = $0 { return name == "README.txt" } else { return false } })

        // A dataset linked in (not a folder to inotify) is reported, so that the daemon can
        // say why it does not follow it; a link to a file is not a dataset.
        try FileManager.default.createSymbolicLink(atPath: spool + "/file-link", withDestinationPath: spool + "/README.txt")
        try FileManager.default.createSymbolicLink(atPath: spool + "/linked", withDestinationPath: NSTemporaryDirectory())
        #expect(log.wait { $0 == .changed(dataset: "linked") })
        #expect(!log.all.contains { if case .changed(let name) = $0 { return name == "file-link" } else { return false } })
    }

    /// A dataset prepared beside the spool, `.ready` included, and moved in whole: ready at once,
    /// though its `.ready` file has no event of its own.
    @Test func aDatasetMovedInWithItsReadyFileIsReadyAtOnce() throws {
        let spool = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let staged = NSTemporaryDirectory() + "synthd-staged-\(UUID().uuidString)"  // the spool's file system
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: staged + "/cat", withIntermediateDirectories: true)
        defer { for folder in [spool, staged] { try? FileManager.default.removeItem(atPath: folder) } }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: staged + "/cat/1.png"))
        try Data().write(to: URL(fileURLWithPath: staged + "/.ready"))
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }

        #expect(rename(staged, spool + "/moved") == 0)
        #expect(log.wait { $0 == .ready(dataset: "moved") }, "\(log.all)")
    }

    /// A dataset renamed inside the spool: its folders keep their watches, and their events
    /// carry the new name.
    @Test func aRenamedDatasetIsTrackedUnderItsNewName() throws {
        let spool = try temporarySpool("old/cat")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }

        #expect(rename(spool + "/old", spool + "/new") == 0)
        #expect(log.wait { $0 == .removed(dataset: "old") })
        #expect(log.wait { $0 == .changed(dataset: "new") })
        usleep(300_000)
        let before = log.all.count
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: spool + "/new/cat/1.png"))
        #expect(log.wait { _ in log.all.dropFirst(before).contains(.changed(dataset: "new")) })
        #expect(!log.all.dropFirst(before).contains(.changed(dataset: "old")), "\(log.all.dropFirst(before))")
    }

    /// Many datasets renamed inside the spool: every class folder's events carry its dataset's
    /// new name, and when the datasets leave the spool no watch of theirs is left behind.
    /// libinotifytools' `inotifytools_replace_filename` re-sorted its tree of names while it
    /// walked it and skipped records (here, with 50 datasets: some class folders' events went
    /// to the old name and their watches outlived the dataset), and the new datasets under the
    /// old names then met records of the same names.
    @Test func everyFolderOfManyRenamedDatasetsIsNamedAnew() throws {
        let base = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let spool = base + "/spool", outside = base + "/aside"
        let (datasets, classes) = (50, ["boot", "heel", "sandal"])
        for d in 0..<datasets {
            for name in classes { try FileManager.default.createDirectory(atPath: "\(spool)/set\(d)/\(name)", withIntermediateDirectories: true) }
        }
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        let mine = try startFindingDescriptor(watcher, into: log)
        defer { watcher.stop() }

        for d in 0..<datasets { #expect(rename("\(spool)/set\(d)", "\(spool)/renamed\(d)") == 0) }
        #expect(log.wait { $0 == .changed(dataset: "renamed\(datasets - 1)") })
        usleep(300_000)
        let before = log.all.count
        for d in 0..<datasets {
            for name in classes { try Data([1]).write(to: URL(fileURLWithPath: "\(spool)/renamed\(d)/\(name)/1.png")) }
        }
        #expect(log.wait { _ in log.all.dropFirst(before).contains(.changed(dataset: "renamed\(datasets - 1)")) })
        usleep(300_000)
        let heard = Set(log.all.dropFirst(before).compactMap { event -> String? in
            if case .changed(let name) = event { name } else { nil }
        })
        #expect(heard.isSuperset(of: (0..<datasets).map { "renamed\($0)" }), "\(heard.sorted())")
        #expect(heard == Set((0..<datasets).map { "renamed\($0)" }), "events under old names")

        for d in 0..<datasets { #expect(rename("\(spool)/renamed\(d)", "\(outside)/renamed\(d)") == 0) }
        usleep(1_500_000)  // the last move is taken as one out of the spool after a second
        #expect(watcher.watchRecordCount == 1, "the spool's own watch only")
        #expect(KernelWatches.watchDescriptors(of: mine)?.count == 1, "the kernel's watches too")

        // New datasets under the old names are watched and heard (records made and looked up
        // by name after all those renames and removals).
        let again = log.all.count
        for d in 0..<datasets { try FileManager.default.createDirectory(atPath: "\(spool)/set\(d)/boot", withIntermediateDirectories: true) }
        usleep(500_000)
        for d in 0..<datasets { try Data([1]).write(to: URL(fileURLWithPath: "\(spool)/set\(d)/boot/1.png")) }
        #expect(log.wait { _ in log.all.dropFirst(again).contains(.changed(dataset: "set\(datasets - 1)")) })
        #expect(watcher.watchRecordCount == 1 + 2 * datasets)
        #expect(KernelWatches.watchDescriptors(of: mine)?.count == 1 + 2 * datasets)
    }

    /// A dataset renamed while the watcher's walk is listing it (a staging folder renamed as
    /// soon as it is filled): the walk's watches of its subfolders fail under the old path.
    /// The rename's own event walks the folder again under its new name, so its class folders
    /// are watched; before, they went unheard until a rescan.
    @Test func aFolderRenamedWhileItIsWalkedHasItsSubfoldersWatched() throws {
        let spool = try temporarySpool("staging/boot", "staging/heel")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        watcher.afterListing = { folder in
            if folder == spool + "/staging" { rename(spool + "/staging", spool + "/shoes") }
        }
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        #expect(log.wait { $0 == .changed(dataset: "shoes") })
        usleep(300_000)
        #expect(watcher.watchRecordCount == 4, "the spool, shoes, boot and heel")
        #expect(try log.hears("shoes", writing: spool + "/shoes/heel/1.png"), "\(log.all)")
    }

    /// Folders whose names are not UTF-8 (a Latin-1 `caf\xE9` inside a class, or as a dataset):
    /// their names read as others (U+FFFD for the bytes), which cannot be watched; that failure
    /// asked for a rescan of the whole spool at every such folder. Now nothing is asked: the
    /// dataset's change is passed on (its scan reports the folder), and the top-level name goes
    /// to the daemon as it reads, to be reported there.
    @Test func foldersWhoseNamesAreNotUTF8AskForNoRescan() throws {
        let spool = try temporarySpool("tea/cup")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }

        #expect(makeEntry(in: spool + "/tea/cup", rawName: Array("2019-".utf8) + [0xE9], folder: true))
        #expect(log.wait { $0 == .changed(dataset: "tea") })
        #expect(makeEntry(in: spool, rawName: Array("caf".utf8) + [0xE9], folder: true))
        #expect(log.wait { $0 == .changed(dataset: "caf\u{FFFD}") })
        usleep(300_000)
        #expect(!log.all.contains { if case .rescan = $0 { return true } else { return false } }, "\(log.all)")
    }

    /// The spool folder removed and made again (`rm -rf spool; mkdir spool`), or moved away
    /// and replaced: the watcher says so, watches the new folder when it is there, asks for a
    /// rescan, and hears nothing more from the folder moved away. It used to go deaf.
    @Test func aSpoolRemovedOrMovedAwayIsWatchedAgainWhenItIsBack() throws {
        let base = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let spool = base + "/spool"
        try FileManager.default.createDirectory(atPath: spool + "/shoes/boot", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        func missing(_ event: SpoolEvent) -> Bool { if case .spoolMissing(let reason) = event { reason.hasPrefix(spool + ": ") } else { false } }
        func back(_ event: SpoolEvent) -> Bool { if case .rescan(let reason) = event { reason.contains("there again") } else { false } }

        try FileManager.default.removeItem(atPath: spool)
        #expect(log.wait(for: missing))
        #expect(log.all.contains(.removed(dataset: "shoes")))
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
        #expect(log.wait(for: back))
        try FileManager.default.createDirectory(atPath: spool + "/bags/tote", withIntermediateDirectories: true)
        #expect(log.wait { $0 == .changed(dataset: "bags") })
        usleep(300_000)
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/bags/tote/1.png"))
        #expect(log.wait { _ in log.all.filter { $0 == .changed(dataset: "bags") }.count >= 2 })

        // Moved away: the moved folder's watches are dropped, the new spool is watched.
        #expect(rename(spool, base + "/moved") == 0)
        #expect(log.wait { _ in log.all.filter(missing).count == 2 })
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
        #expect(log.wait { _ in log.all.filter(back).count == 2 })
        let before = log.all.count
        try Data([2]).write(to: URL(fileURLWithPath: base + "/moved/bags/tote/2.png"))
        try FileManager.default.createDirectory(atPath: spool + "/hats", withIntermediateDirectories: false)
        #expect(log.wait { $0 == .changed(dataset: "hats") })
        #expect(!log.all.dropFirst(before).contains(.changed(dataset: "bags")), "\(log.all.dropFirst(before))")

        // Removed again and not back: stopping does not wait for it.
        try FileManager.default.removeItem(atPath: spool)
        #expect(log.wait { _ in log.all.filter(missing).count == 3 })
    }

    /// A spool that is a mount point (a share, a bind mount): unmounted, its watches are gone
    /// with its file system, and the watcher went deaf for good, as it did when another file
    /// system was mounted over the spool (that sends no event at all). Now an unmount is said
    /// like a missing spool and waited out; a file system mounted there again, or over the
    /// spool while it was watched, is watched afresh and looked at whole.
    @Test(.enabled(if: TestMounts.isAllowed, "needs the right to bind-mount (root)"))
    func aSpoolWhoseFileSystemIsUnmountedOrMountedOverIsWatchedAgain() throws {
        let base = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let spool = base + "/spool", share = base + "/share", other = base + "/other"
        for folder in [spool, share + "/shoes/boot", other + "/bags/tote"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        try #require(TestMounts.bind(share, on: spool))
        defer {
            while TestMounts.unmount(spool) {}
            try? FileManager.default.removeItem(atPath: base)
        }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        func heard(_ file: String, as dataset: String) throws -> Bool { try log.hears(dataset, writing: spool + "/" + file) }
        func said(_ start: Int, _ text: String) -> Bool {
            log.wait { _ in
                log.all.dropFirst(start).contains {
                    switch $0 {
                    case .spoolMissing(let reason), .rescan(let reason): reason.contains(text)
                    default: false
                    }
                }
            }
        }
        #expect(try heard("shoes/boot/1.png", as: "shoes"))

        var count = log.all.count
        #expect(TestMounts.unmount(spool))
        #expect(said(count, "file system was unmounted"), "\(log.all.dropFirst(count))")
        // The empty folder underneath is not the spool: no rescan (which would take the
        // datasets for gone) while nothing is mounted.
        usleep(1_500_000)
        #expect(!log.all.dropFirst(count).contains { if case .rescan = $0 { true } else { false } }, "\(log.all.dropFirst(count))")
        count = log.all.count
        #expect(TestMounts.bind(share, on: spool))
        #expect(said(count, "file system is mounted again"), "\(log.all.dropFirst(count))")
        usleep(300_000)
        #expect(try heard("shoes/boot/2.png", as: "shoes"), "\(log.all.dropFirst(count))")

        count = log.all.count
        #expect(TestMounts.bind(other, on: spool))  // over the watched one
        #expect(said(count, "leads to another folder"), "\(log.all.dropFirst(count))")
        usleep(300_000)
        #expect(try heard("bags/tote/1.png", as: "bags"), "\(log.all.dropFirst(count))")
        #expect(watcher.watchRecordCount == 3, "the spool, bags and tote")
    }

    /// A spool inside a file system that is unmounted (`/mnt/disk/spool`, the disk unmounted):
    /// the spool's path leads nowhere, and only the watches' `IN_UNMOUNT` says what happened
    /// (a tmpfs here: a bind mount's file system outlives it, and sends none). Watched again
    /// once a file system with the spool in it is mounted there.
    @Test(.enabled(if: TestMounts.isAllowed, "needs the right to mount (root)"))
    func aSpoolInsideAnUnmountedFileSystemIsWatchedWhenItIsBack() throws {
        let base = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let disk = base + "/disk", spool = disk + "/spool"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        try #require(TestMounts.temporaryFileSystem(on: disk))
        defer {
            while TestMounts.unmount(disk) {}
            try? FileManager.default.removeItem(atPath: base)
        }
        try FileManager.default.createDirectory(atPath: spool + "/shoes/boot", withIntermediateDirectories: true)
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }

        #expect(TestMounts.unmount(disk))
        #expect(log.wait { if case .spoolMissing(let reason) = $0 { reason.contains("file system was unmounted") } else { false } }, "\(log.all)")
        #expect(TestMounts.temporaryFileSystem(on: disk))
        try FileManager.default.createDirectory(atPath: spool + "/bags/tote", withIntermediateDirectories: true)
        #expect(log.wait { if case .rescan(let reason) = $0 { reason.contains("mounted again") } else { false } }, "\(log.all)")
        usleep(300_000)
        #expect(try log.hears("bags", writing: spool + "/bags/tote/1.png"), "\(log.all)")
        #expect(watcher.watchRecordCount == 3, "the spool, bags and tote")
    }

    /// A dataset, or a class folder, moved out of the spool (`mv spool/shoes ~/done/`): the
    /// kernel's watches follow the folder, and their records named them by their old paths,
    /// so that a file written where it went read as a change of `shoes`, also of a new `shoes`
    /// dropped since, and the watches stayed until a restart. Now they are let go of.
    @Test func aFolderMovedOutOfTheSpoolIsNoLongerHeard() throws {
        let base = NSTemporaryDirectory() + "synthd-spool-\(UUID().uuidString)"
        let spool = base + "/spool", outside = base + "/done"
        for folder in ["/shoes/boot", "/shoes/heel", "/bags/tote"] {
            try FileManager.default.createDirectory(atPath: spool + folder, withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        #expect(watcher.watchRecordCount == 6)  // the spool, two datasets, three classes
        func heard(_ name: String, after index: Int) -> Bool { log.all.dropFirst(index).contains(.changed(dataset: name)) }
        // Let go of one by one, not by a rescan.
        func rescans() -> Int { log.all.filter { if case .rescan = $0 { true } else { false } }.count }

        #expect(rename(spool + "/shoes", outside + "/shoes") == 0)
        #expect(log.wait { $0 == .removed(dataset: "shoes") })
        #expect(rename(spool + "/bags/tote", outside + "/tote") == 0)
        #expect(log.wait { $0 == .changed(dataset: "bags") })
        usleep(1_500_000)  // an unanswered move is taken as one out of the spool after a second
        #expect(watcher.watchRecordCount == 2, "the moved folders' watches are kept")
        var before = log.all.count
        try Data([1]).write(to: URL(fileURLWithPath: outside + "/shoes/boot/1.png"))
        try Data([1]).write(to: URL(fileURLWithPath: outside + "/tote/1.png"))
        usleep(1_500_000)
        #expect(!heard("shoes", after: before) && !heard("bags", after: before), "\(log.all.dropFirst(before))")

        // A new dataset of the same name is heard, and only for its own files.
        try FileManager.default.createDirectory(atPath: spool + "/shoes/boot", withIntermediateDirectories: true)
        #expect(log.wait { _ in heard("shoes", after: before) })
        usleep(300_000)
        before = log.all.count
        try Data([2]).write(to: URL(fileURLWithPath: outside + "/shoes/boot/2.png"))
        usleep(1_500_000)
        #expect(!heard("shoes", after: before), "\(log.all.dropFirst(before))")
        try Data([2]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/2.png"))
        #expect(log.wait { _ in heard("shoes", after: before) })
        #expect(rescans() == 0, "\(log.all)")
    }

    /// A dataset deleted while the spool is walked at start (or a class folder while its
    /// dataset is, at a restart of the watches): libinotifytools' walk gave up on the folder
    /// being walked, so that the daemon refused to start, or a dataset went unheard for good
    /// (seen in CI). Now the rest is watched, and heard.
    @Test func aFolderDeletedWhileTheSpoolIsWalkedLeavesTheRestWatched() throws {
        let spool = try temporarySpool("gone/x", "shoes/boot", "shoes/old", "bags/tote")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        watcher.afterListing = { folder in
            if folder == spool { try? FileManager.default.removeItem(atPath: spool + "/gone") }
            if folder == spool + "/shoes" { try? FileManager.default.removeItem(atPath: spool + "/shoes/old") }
        }
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        #expect(watcher.watchRecordCount == 5, "the spool, shoes, boot, bags and tote")
        usleep(500_000)  // the deletions' own events first
        let before = log.all.count
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/1.png"))
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/bags/tote/1.png"))
        #expect(log.wait { _ in
            let after = log.all.dropFirst(before)
            return after.contains(.changed(dataset: "shoes")) && after.contains(.changed(dataset: "bags"))
        }, "\(log.all)")
    }

    /// A folder made and removed before the watcher read its event (a tool's scratch folder)
    /// has nothing to watch: that failure asked for a rescan of the whole spool, a walk of every
    /// dataset. Its removal has its own event. The handler holds the watcher meanwhile.
    @Test func aFolderGoneBeforeItsWatchAsksForNoRescan() throws {
        let spool = try temporarySpool("shoes/boot")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog(), gate = NSLock()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { event in
            gate.lock()
            gate.unlock()
            log.append(event)
        }
        defer { watcher.stop() }
        gate.lock()
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/held.png"))
        usleep(300_000)  // the watcher now waits in the handler
        try FileManager.default.createDirectory(atPath: spool + "/shoes/scratch/inner", withIntermediateDirectories: true)
        try FileManager.default.removeItem(atPath: spool + "/shoes/scratch")
        gate.unlock()
        #expect(log.wait { $0 == .changed(dataset: "shoes") })
        usleep(1_000_000)
        #expect(!log.all.contains { if case .rescan = $0 { true } else { false } }, "\(log.all)")
        #expect(watcher.watchRecordCount == 3)
    }

    /// A folder walked again, its permissions changed (IN_ATTRIB; or after lost events), is
    /// watched already: libinotifytools made a second record of each of its folders' watches,
    /// and never freed it. None is made now, and the folder is still heard.
    @Test func foldersWalkedAgainMakeNoSecondRecord() throws {
        let spool = try temporarySpool("shoes/boot", "shoes/sandal")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        #expect(watcher.recordsMadeCount == 4, "the spool, shoes, boot and sandal")
        for mode: mode_t in [0o750, 0o755, 0o750, 0o755] {
            #expect(chmod(spool + "/shoes", mode) == 0)
            usleep(100_000)
        }
        #expect(log.wait { _ in log.all.filter { $0 == .changed(dataset: "shoes") }.count >= 4 })
        usleep(500_000)
        #expect(watcher.recordsMadeCount == 4)
        #expect(watcher.watchRecordCount == 4)
        let before = log.all.count
        try FileManager.default.createDirectory(atPath: spool + "/shoes/clog", withIntermediateDirectories: false)
        usleep(300_000)
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/shoes/clog/1.png"))
        #expect(log.wait { _ in log.all.dropFirst(before).filter { $0 == .changed(dataset: "shoes") }.count >= 2 })
        #expect(watcher.recordsMadeCount == 5, "a new folder has its record")
    }

    /// A deleted folder's record goes with its watch (`IN_IGNORED`). libinotifytools kept its
    /// record for good (it freed one only when it removed the watch itself), so the watcher
    /// renewed every watch now and then to free them. 100 folders made, watched and deleted
    /// leave the records of the 3 left, and the spool is still heard.
    @Test func theRecordsOfDeletedFoldersDoNotPileUp() throws {
        let spool = try temporarySpool("shoes/boot")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        let mine = try startFindingDescriptor(watcher, into: log)
        defer { watcher.stop() }

        /// Waits (a busy machine's watcher may take a while) until the watcher records `count`.
        func records(_ count: Int) -> Bool {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline, watcher.watchRecordCount != count { usleep(20_000) }
            return watcher.watchRecordCount == count
        }
        for round in 0..<10 {
            for index in 0..<10 {
                try FileManager.default.createDirectory(atPath: spool + "/shoes/class-\(round)-\(index)", withIntermediateDirectories: false)
            }
            try #require(records(13), "round \(round): the new folders watched")
            for index in 0..<10 { try FileManager.default.removeItem(atPath: spool + "/shoes/class-\(round)-\(index)") }
            try #require(records(3), "round \(round): the deleted folders' records gone")
        }
        #expect(KernelWatches.watchDescriptors(of: mine)?.count == 3)
        #expect(!log.all.contains { if case .rescan = $0 { true } else { false } }, "\(log.all.suffix(5))")
        #expect(try log.hears("shoes", writing: spool + "/shoes/boot/1.png"))
    }

    /// 40 class folders deleted while the handler holds the watcher, so that their events come
    /// in one batch: each deletion is a change of its dataset, never a dataset leaving the
    /// spool or an unknown watch (a rescan), and the records left are the live folders'. (Under
    /// libinotifytools a renewal of the watches inside such a batch read the rest of it
    /// against the new watches' numbers.)
    @Test func foldersDeletedInOneBatchLeaveTheLiveRecordsOnly() throws {
        let spool = try temporarySpool("shoes/boot")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog(), gate = NSLock()
        let watcher = SpoolWatcher(spool: spool)
        try watcher.start { event in
            gate.lock()
            gate.unlock()
            log.append(event)
        }
        defer { watcher.stop() }
        for index in 0..<40 {
            try FileManager.default.createDirectory(atPath: spool + "/shoes/class-\(index)", withIntermediateDirectories: false)
        }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, watcher.watchRecordCount < 43 { usleep(20_000) }
        #expect(watcher.watchRecordCount == 43)
        usleep(300_000)
        let before = log.all.count
        gate.lock()
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/held.png"))
        usleep(300_000)  // the watcher now waits in the handler
        for index in 0..<40 { try FileManager.default.removeItem(atPath: spool + "/shoes/class-\(index)") }
        gate.unlock()
        usleep(1_500_000)
        let after = Array(log.all.dropFirst(before))
        #expect(after.contains(.changed(dataset: "shoes")), "\(after)")
        #expect(!after.contains { if case .rescan = $0 { true } else { false } }, "\(after)")
        #expect(!after.contains { if case .removed = $0 { true } else { false } }, "\(after)")
        #expect(!after.contains { if case .spoolMissing = $0 { true } else { false } }, "\(after)")
        #expect(watcher.watchRecordCount == 3)
        #expect(try log.hears("shoes", writing: spool + "/shoes/boot/1.png"))
    }

    /// Another part of the process that closes a number twice can close the watcher's inotify
    /// descriptor under it (seen once in CI, where Foundation's `Process` ran beside it, right
    /// after a renewal gave the watcher a number just freed): it went on answering and heard
    /// nothing. It now watches afresh; and where another file took the number meanwhile, that
    /// file is neither read as events nor closed.
    @Test func aDescriptorClosedUnderTheWatcherIsReplaced() throws {
        let spool = try temporarySpool("shoes/boot")
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let log = EventLog()
        let watcher = SpoolWatcher(spool: spool)
        let others = KernelWatches.inotifyDescriptors()
        try watcher.start { log.append($0) }
        defer { watcher.stop() }
        func watchersDescriptor() throws -> Int32 {
            let mine = KernelWatches.inotifyDescriptors().subtracting(others)
            try #require(mine.count == 1, "\(mine)")
            return mine.first!
        }
        func heard(_ file: String) throws -> Bool {
            try log.hears("shoes", writing: spool + "/shoes/boot/" + file)
        }
        func renewed(_ fd: Int32, after count: Int) -> Bool {
            log.wait { _ in
                log.all.dropFirst(count).contains {
                    // "was closed", or "failed" where the watcher's read met the other file
                    if case .rescan(let reason) = $0 { reason.hasPrefix("the spool watcher's inotify descriptor \(fd) ") } else { false }
                }
            }
        }

        let first = try watchersDescriptor(), count = log.all.count
        close(first)
        // Wakes the watcher's wait at once (its poll still holds the instance, which still hears
        // the spool), so the number stays free for about 20 ms (measured), not the wait's second, in
        // a process whose other suites open files meanwhile.
        try Data([1]).write(to: URL(fileURLWithPath: spool + "/shoes/boot/wake.png"))
        #expect(renewed(first, after: count), "\(log.all)")
        #expect(try heard("1.png"), "\(log.all)")

        let second = try watchersDescriptor(), secondCount = log.all.count
        let devNull = open("/dev/null", O_RDONLY)
        #expect(dup2(devNull, second) == second)
        close(devNull)
        defer { close(second) }
        #expect(renewed(second, after: secondCount), "\(log.all)")
        #expect(try heard("2.png"), "\(log.all)")
        #expect(KernelWatches.descriptor(second) == .other)
        var target = [CChar](repeating: 0, count: 64)
        #expect(readlink("/proc/self/fd/\(second)", &target, target.count) == 9)
        #expect(String(decoding: target.prefix(9).map { UInt8(bitPattern: $0) }, as: UTF8.self) == "/dev/null")
    }

    @Test func missingSpoolIsAClearError() {
        let watcher = SpoolWatcher(spool: "/nonexistent/spool")
        do {
            try watcher.start { _ in }
            watcher.stop()
            Issue.record("watching a missing folder succeeded")
        } catch {
            #expect("\(error)".contains("/nonexistent/spool"))
        }
    }
}
