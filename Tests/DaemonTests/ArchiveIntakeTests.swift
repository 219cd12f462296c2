import Daemon
import Foundation
import LogTestSupport
import Logging
import Spool
import Testing

/// Archives dropped into the spool, through the scheduler as the daemon's loop drives it.
@Suite struct ArchiveIntakeTests {
    func makeScheduler(unpack: Bool = true) throws -> (Scheduler, root: String) { try makeTestScheduler { $0.unpackArchives = unpack } }

    /// A ustar archive of `files` (name -> bytes): the format is simple enough to write here,
    /// and its reader is checked against Python's tarfile in ArchivesTests.
    func tar(_ files: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, text) in files {
            let data = Array(text.utf8)
            var header = [UInt8](repeating: 0, count: 512)
            func put(_ string: String, at offset: Int) { for (i, byte) in string.utf8.enumerated() { header[offset + i] = byte } }
            put(name, at: 0)
            put("0000644", at: 100)
            put(String(data.count, radix: 8).leftPadded(to: 11), at: 124)
            put("00000000000", at: 136)
            header[156] = UInt8(ascii: "0")
            put("ustar", at: 257)
            put("00", at: 263)
            put("        ", at: 148)
            let sum = header.reduce(0) { $0 + Int($1) }
            put(String(sum, radix: 8).leftPadded(to: 6), at: 148)
            header[154] = 0
            out += header + data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
        return out + [UInt8](repeating: 0, count: 1024)
    }

    let pets = [("pets/cat/1.png", "one"), ("pets/dog/2.png", "two"), ("pets/notes.txt", "not an image")]

    /// Turns the loop until `done` or `seconds`.
    func turn(_ scheduler: Scheduler, seconds: Double = 10, until done: () -> Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while !done() && Date() < deadline {
            scheduler.takeArchives()
            usleep(10_000)
        }
    }

    func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    func queued(_ scheduler: Scheduler) -> [String] {
        (try! scheduler.queue.snapshot()).filter { $0.state == .queued }.map { "\($0.kind.rawValue) \($0.dataset)" }
    }

    @Test func anArchiveDroppedIntoTheSpoolBecomesADatasetAtOnce() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(tar(pets), to: root + "/spool/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { !scheduler.archives.isUnpacking && scheduler.archives.records["pets.tar"]?.state == .unpacked }
        let spool = root + "/spool"
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).sorted() == ["pets", "pets.tar"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool + "/pets").sorted() == ["cat", "dog"])
        #expect(try String(contentsOfFile: spool + "/pets/cat/1.png", encoding: .utf8) == "one")
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        let record = try #require(ArchiveRecords.read(stateFolder: root + "/state")["pets.tar"])
        #expect(record.state == .unpacked && record.files == 2 && record.dataset == "pets")
        #expect(record.line(name: "pets.tar", spool: spool).hasPrefix("pets.tar: unpacked into \(spool)/pets (2 images"))
    }

    @Test func anArchiveIsUnpackedOnceAndACopyNeverOverwritesItsFolder() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        try write(tar(pets), to: spool + "/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .unpacked }
        // A user's change to the unpacked folder, then a restart: not unpacked again.
        try FileManager.default.removeItem(atPath: spool + "/pets/dog")
        let lines = CapturedLines()
        let again = try Scheduler(configuration: scheduler.configuration, logger: .capturing(into: lines))
        again.reconcile()
        turn(again, seconds: 1) { false }
        #expect(again.archives.records["pets.tar"]?.state == .unpacked, "the same file is not looked at again")
        #expect(!FileManager.default.fileExists(atPath: spool + "/pets/dog"))
        // A new copy of the archive (another size): the folder is there, so it waits, and says so.
        try write(tar(pets + [("pets/dog/3.png", "three")]), to: spool + "/pets.tar")
        again.handle(.strayFile(name: "pets.tar"))
        turn(again) { again.archives.records["pets.tar"]?.state == .failed }
        let failed = try #require(again.archives.records["pets.tar"])
        #expect(failed.waitsForFolder)
        #expect(failed.error?.contains("unpacked from an earlier copy of it, is there already") == true)
        // A warning: it waits for the user, and nothing is lost (an error line it was, beside
        // the real failures a soak counts).
        #expect(lines.all.contains { $0.hasPrefix("warning ") && $0.contains("is there already") }, "\(lines.all)")
        #expect(!lines.all.contains { $0.hasPrefix("error ") }, "\(lines.all)")
        #expect(!FileManager.default.fileExists(atPath: spool + "/pets/dog"))
        // The folder moved away: the new copy is unpacked.
        try FileManager.default.moveItem(atPath: spool + "/pets", toPath: spool + "/old-pets")
        turn(again) { again.archives.records["pets.tar"]?.state == .unpacked }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool + "/pets/dog").sorted() == ["2.png", "3.png"])
    }

    /// A scheduler whose spool got `pets.tar`, now being unpacked: the loop takes the
    /// outcome at its next turn, however fast the unpacking thread is.
    func unpackingPets() throws -> (Scheduler, root: String) {
        let (scheduler, root) = try makeScheduler()
        try write(tar(pets), to: root + "/spool/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        scheduler.takeArchives()
        #expect(scheduler.archives.isUnpacking)
        return (scheduler, root)
    }

    /// A periodic scan (`poll_seconds`, a network spool) that looks at the spool while the
    /// archive is being unpacked: before the fix it noted the archive again, tried it once the
    /// unpacking ended, found its own folder there and recorded the archive as failed ("is
    /// there already"); and when the user later removed the dataset's folder, that failure's
    /// retry unpacked the archive again, bringing back a dataset the user had deleted. Found by
    /// a cluster test (poll_seconds = 1) under load.
    @Test func aScanDuringTheUnpackingDoesNotTryTheArchiveAgain() throws {
        let (scheduler, root) = try unpackingPets()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .unpacked }
        turn(scheduler, seconds: 0.5) { false }
        #expect(scheduler.archives.records["pets.tar"]?.state == .unpacked, "\(String(describing: scheduler.archives.records["pets.tar"]))")
        try FileManager.default.removeItem(atPath: spool + "/pets")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler, seconds: 0.5) { false }
        #expect(!FileManager.default.fileExists(atPath: spool + "/pets"), "a dataset the user removed is not unpacked again")
        #expect(scheduler.archives.records["pets.tar"]?.state == .unpacked)
    }

    /// A new copy written while the first is unpacked is still seen (its event is not lost):
    /// it waits for the folder, as any new copy of an unpacked archive does.
    @Test func aNewCopyWrittenDuringTheUnpackingIsLookedAt() throws {
        let (scheduler, root) = try unpackingPets()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        // Another size (two writes a millisecond apart may share a modification time), written
        // whole under its name (the unpacking reads one copy or the other, never half of one).
        try Data(tar(pets + [("pets/dog/3.png", String(repeating: "3", count: 600))])).write(to: URL(fileURLWithPath: spool + "/pets.tar"), options: .atomic)
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .failed }
        #expect(scheduler.archives.records["pets.tar"]?.waitsForFolder == true, "\(String(describing: scheduler.archives.records["pets.tar"]))")
        #expect(scheduler.archives.records["pets.tar"]?.error?.contains("is there already") == true)
    }

    /// An archive is never unpacked without its record on disk (a full disk): a kill then left
    /// a folder that the next start took for the user's, and the archive was unpacked again
    /// once the user removed it (a soak, twice). It waits until the record can be written.
    @Test func anArchiveIsUnpackedOnlyOnceItsRecordCanBeWritten() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        scheduler.archives.saveRetrySeconds = 0.2
        let file = root + "/state/" + ArchiveRecords.fileName
        try FileManager.default.createDirectory(atPath: file + "/in-the-way", withIntermediateDirectories: true)  // every write fails
        try write(tar(pets), to: root + "/spool/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler, seconds: 1) { false }
        #expect(!FileManager.default.fileExists(atPath: root + "/spool/pets"), "unpacked without its record")
        try FileManager.default.removeItem(atPath: file)
        turn(scheduler) { !scheduler.archives.isUnpacking && scheduler.archives.records["pets.tar"]?.state == .unpacked }
        #expect(FileManager.default.fileExists(atPath: root + "/spool/pets/cat/1.png"))
        #expect(ArchiveRecords.read(stateFolder: root + "/state")["pets.tar"]?.state == .unpacked)
    }

    /// A record the disk did not take once the archive was unpacked is kept in memory and
    /// written when it can be: a restart then knows the folder for the archive's.
    @Test func anUnpackedArchivesRecordIsWrittenOnceItCanBe() throws {
        let (scheduler, root) = try unpackingPets()
        defer { try? FileManager.default.removeItem(atPath: root) }
        scheduler.archives.saveRetrySeconds = 0.2
        let file = root + "/state/" + ArchiveRecords.fileName
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createDirectory(atPath: file + "/in-the-way", withIntermediateDirectories: true)
        turn(scheduler) { !scheduler.archives.isUnpacking }
        #expect(scheduler.archives.records["pets.tar"]?.state == .unpacked)
        #expect(FileManager.default.fileExists(atPath: root + "/spool/pets/cat/1.png"))
        turn(scheduler, seconds: 0.5) { false }
        #expect(scheduler.archives.records["pets.tar"]?.state == .unpacked, "kept in memory while the file cannot be written")
        try FileManager.default.removeItem(atPath: file)
        turn(scheduler) { ArchiveRecords.read(stateFolder: root + "/state")["pets.tar"]?.state == .unpacked }
        #expect(ArchiveRecords.read(stateFolder: root + "/state")["pets.tar"]?.state == .unpacked)
    }

    @Test func aDamagedArchiveSaysWhyAndLeavesNothingInTheSpool() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        let whole = tar(pets)
        try write(Array(whole[0..<700]), to: spool + "/pets.tar")  // a copy cut short in the first member's data
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .failed }
        let record = try #require(scheduler.archives.records["pets.tar"])
        #expect(record.error?.contains("ends in the middle of a member") == true, "\(record.error ?? "")")
        #expect(record.retryAt == nil && !record.waitsForFolder)
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool) == ["pets.tar"])
        // Copied again, whole: unpacked.
        try write(whole, to: spool + "/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .unpacked }
        #expect(FileManager.default.fileExists(atPath: spool + "/pets/cat/1.png"))
    }

    @Test func aKilledUnpackingIsSweptAndDoneAgainAtTheNextStart() throws {
        let (first, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        try write(tar(pets), to: spool + "/pets.tar")
        // What a kill -9 midway leaves: a hidden half folder and a record "unpacking".
        try FileManager.default.createDirectory(atPath: spool + "/.synthd-unpacking.99999.pets/pets/cat", withIntermediateDirectories: true)
        try write(Array("half".utf8), to: spool + "/.synthd-unpacking.99999.pets/pets/cat/1.png")
        var records = ArchiveRecords.read(stateFolder: root + "/state")
        records["pets.tar"] = ArchiveRecord(size: 10, modified: 1, state: .unpacking, dataset: "pets", updatedAt: Date())
        try ArchiveRecords.write(records, stateFolder: root + "/state")
        let scheduler = try Scheduler(configuration: first.configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        #expect(!FileManager.default.fileExists(atPath: spool + "/.synthd-unpacking.99999.pets"))
        scheduler.reconcile()
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .unpacked }
        #expect(try String(contentsOfFile: spool + "/pets/cat/1.png", encoding: .utf8) == "one")
        #expect(ArchiveRecord(size: 1, modified: 1, state: .unpacking, dataset: "pets", updatedAt: Date())
            .line(name: "pets.tar", spool: spool, daemonRuns: false).contains("interrupted while unpacking"))
    }


    /// In a cluster the spool is shared: a node's start removes the unpacking folders its own
    /// killed run left (named after the node) and no other node's, which may be in progress,
    /// even one whose name starts with this node's.
    @Test func aClusterNodeSweepsOnlyItsOwnUnpackingFolders() throws {
        let (first, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        let folders = [".synthd-unpacking.n1@99.pets", ".synthd-unpacking.n1.b@98.toys", ".synthd-unpacking.n2@97.cars",
                       ".synthd-unpacking.96.boats"]
        for folder in folders { try FileManager.default.createDirectory(atPath: spool + "/" + folder + "/x", withIntermediateDirectories: true) }
        var records = ArchiveRecords.read(stateFolder: root + "/state")
        records["toys.tar"] = ArchiveRecord(size: 10, modified: 1, state: .unpacking, dataset: "toys", updatedAt: Date())
        try ArchiveRecords.write(records, stateFolder: root + "/state")
        let node = ArchiveIntake(configuration: first.configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }, node: "n1")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).sorted() == Array(folders.dropFirst()).sorted())
        #expect(node.records["toys.tar"]?.state == .unpacking, "another node's unpacking is not voided")
        // On one machine every unpacking folder is this daemon's.
        let alone = ArchiveIntake(configuration: first.configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
        #expect(alone.records["toys.tar"] == nil)
    }
    /// Nodes of a cluster share the spool and the state folder: the node that may look at a
    /// dataset unpacks its archive, the other lets it be, and neither loses the other's record.
    @Test func clusterNodesUnpackEachArchiveOnceAndKeepEachOthersRecords() throws {
        let (a, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let b = try Scheduler(configuration: a.configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        a.archives.mayUnpack = { $0 == "pets" }
        b.archives.mayUnpack = { $0 == "toys" }
        let spool = root + "/spool"
        try write(tar(pets), to: spool + "/pets.tar")
        try write(tar([("toys/ball/1.png", "ball"), ("toys/kite/2.png", "kite")]), to: spool + "/toys.tar")
        for node in [a, b] { for name in ["pets.tar", "toys.tar"] { node.handle(.strayFile(name: name)) } }
        turn(a) { a.archives.records["pets.tar"]?.state == .unpacked }
        turn(b) { b.archives.records["toys.tar"]?.state == .unpacked }
        let shared = ArchiveRecords.read(stateFolder: root + "/state")
        #expect(shared["pets.tar"]?.state == .unpacked && shared["toys.tar"]?.state == .unpacked, "\(shared)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).sorted() == ["pets", "pets.tar", "toys", "toys.tar"])
    }

    /// A link named like an archive is not followed, as a dataset's links out of the spool are
    /// not: the daemon may read what the user who made the link may not.
    @Test func aLinkToAnArchiveIsNotFollowed() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(tar(pets), to: root + "/elsewhere.tar")
        try FileManager.default.createSymbolicLink(atPath: root + "/spool/pets.tar", withDestinationPath: root + "/elsewhere.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler, seconds: 0.5) { false }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/spool") == ["pets.tar"])
        #expect(scheduler.archives.records.isEmpty)
    }

    /// Status lists what is under way or failed, then the five latest unpacked, then a count.
    @Test func statusListsTheOpenArchivesAndTheLatestUnpacked() {
        var records: [String: ArchiveRecord] = [:]
        for k in 0..<8 {
            records["a\(k).zip"] = ArchiveRecord(size: 1, modified: 1, state: .unpacked, dataset: "a\(k)", updatedAt: Date(timeIntervalSince1970: Double(k)))
        }
        var failed = ArchiveRecord(size: 1, modified: 1, state: .failed, dataset: "z", updatedAt: Date(timeIntervalSince1970: 0))
        failed.error = "not unpacked: damaged"
        records["z.zip"] = failed
        let lines = ArchiveRecords.summary(records, spool: "/s", daemonRuns: true)
        #expect(lines.map { String($0.prefix { $0 != ":" }) } == ["z.zip", "a7.zip", "a6.zip", "a5.zip", "a4.zip", "a3.zip", "... and 3 more unpacked earlier (synthd status --archives lists them)"])
        #expect(lines[0] == "z.zip: not unpacked: damaged, tried again when the archive changes")
        let every = ArchiveRecords.summary(records, spool: "/s", daemonRuns: true, all: true)
        #expect(every.map { String($0.prefix { $0 != ":" }) } == ["z.zip"] + (0..<8).reversed().map { "a\($0).zip" })
    }

    /// A download's splits: only the training split became the dataset, and status says so.
    @Test func anArchiveOfSplitsBecomesItsTrainingSplit() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = root + "/spool"
        try write(tar([("pets/train/cat/1.png", "one"), ("pets/train/dog/2.png", "two"), ("pets/test/cat/3.png", "three")]),
                  to: spool + "/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler) { scheduler.archives.records["pets.tar"]?.state == .unpacked }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool + "/pets").sorted() == ["cat", "dog"])
        let record = try #require(scheduler.archives.records["pets.tar"])
        #expect(record.files == 2 && record.leftOutSplits == ["test"])
        #expect(record.line(name: "pets.tar", spool: spool).contains("(2 images, 0.0 MB)"))
        #expect(record.line(name: "pets.tar", spool: spool).hasSuffix("; its training split only (test left out)"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).sorted() == ["pets", "pets.tar"], "nothing else left in the spool")
    }

    /// An unpacking under way shows how far into the file it is and, once that says enough,
    /// when it should be done.
    @Test func anUnpackingShowsItsShareAndETA() {
        let now = Date()
        var record = ArchiveRecord(size: 1, modified: 1, state: .unpacking, dataset: "pets", updatedAt: now)
        record.files = 120
        record.bytes = 2_000_000
        #expect(record.line(name: "pets.tar.gz", spool: "/s", now: now) == "pets.tar.gz: unpacking into /s/pets (120 images so far, 2.0 MB)")
        record.fraction = 0.25
        #expect(record.line(name: "pets.tar.gz", spool: "/s", now: now).hasSuffix("(120 images so far, 2.0 MB, 25%)"), "no ETA without a start")
        record.startedAt = now.addingTimeInterval(-30)
        #expect(record.line(name: "pets.tar.gz", spool: "/s", now: now).hasSuffix("(120 images so far, 2.0 MB, 25%, ETA 1m30s)"))
        record.fraction = 0.004
        #expect(record.line(name: "pets.tar.gz", spool: "/s", now: now).hasSuffix("2.0 MB)"), "under a percent says nothing yet")
    }

    /// An archive whose folder was removed is not unpacked again by itself; status says so
    /// and how to have it unpacked anew.
    @Test func statusSaysWhenAnUnpackedFolderHasLeft() throws {
        let spool = NSTemporaryDirectory() + "synthd-gone-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: spool + "/kept", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: spool) }
        let records = ["kept.zip": ArchiveRecord(size: 1, modified: 1, state: .unpacked, dataset: "kept", updatedAt: Date(timeIntervalSince1970: 2)),
                       "gone.zip": ArchiveRecord(size: 1, modified: 1, state: .unpacked, dataset: "gone", updatedAt: Date(timeIntervalSince1970: 1))]
        let lines = ArchiveRecords.summary(records, spool: spool, daemonRuns: true)
        #expect(lines.count == 2 && !lines[0].contains("left the spool"), "\(lines)")
        #expect(lines[1].hasSuffix("; that folder has left the spool since (copy the archive in again to unpack it anew)"), "\(lines)")
    }

    @Test func withUnpackingOffAnArchiveIsLeftAlone() throws {
        let (scheduler, root) = try makeScheduler(unpack: false)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try write(tar(pets), to: root + "/spool/pets.tar")
        scheduler.handle(.strayFile(name: "pets.tar"))
        turn(scheduler, seconds: 1) { false }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/spool") == ["pets.tar"])
        #expect(scheduler.archives.records.isEmpty)
    }

    @Test func theKeysParse() throws {
        let configuration = try Configuration.parse("[watch]\nunpack_archives = false\nmax_unpacked_gigabytes = 2.5\n", path: "t.toml")
        #expect(!configuration.unpackArchives && configuration.maxUnpackedGigabytes == 2.5)
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[watch]\nmax_unpacked_gigabytes = 0\n", path: "t.toml") }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
