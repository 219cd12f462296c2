@testable import Daemon
import Foundation
import Imaging
import Testing

/// `synthd wait`'s judgement of one dataset: ready only when the published outputs are those of
/// the files in the spool now; failed only when waiting cannot help.
@Suite final class DatasetReadinessTests {
    let spool = NSTemporaryDirectory() + "synthd-readiness-\(UUID().uuidString)"
    init() throws { try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: spool) }

    func addImage(_ dataset: String, _ classFolder: String, _ name: String) throws {
        let folder = "\(spool)/\(dataset)/\(classFolder)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try PNG.write(Image(width: 4, height: 4, mode: .grey), to: folder + "/" + name, durable: false)
    }

    func fingerprint(_ dataset: String) throws -> DatasetFingerprint {
        try DatasetFingerprint.of(spool + "/" + dataset, confinedTo: spool)
    }

    func snapshot(_ dataset: String, _ runtime: DatasetRuntime?, published: String? = nil) throws -> DatasetReadiness.Snapshot {
        let present = FileManager.default.fileExists(atPath: spool + "/" + dataset)
        let scan = present && DatasetReadiness.needsFingerprint(runtime)
        return DatasetReadiness.Snapshot(name: dataset, spool: spool, present: present, fingerprint: scan ? try fingerprint(dataset) : nil,
                                         runtime: runtime, published: published)
    }

    @Test func readyOnlyForTheFilesTheModelWasTrainedOn() throws {
        try addImage("shoes", "boot", "a.png")
        var runtime = DatasetRuntime()
        runtime.phase = .done
        runtime.trainedFingerprint = try fingerprint("shoes").value
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime)) == .ready(outputs: nil), "done with nothing published")
        // Published once and removed since (by hand): the daemon publishes them again.
        runtime.generation = "step-10-abc"
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime))
                == .pending("its published outputs are gone (removed?); waiting for the daemon to write them again"))
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
        // Files that could not be scanned are not taken for the trained ones.
        let unscanned = DatasetReadiness.Snapshot(name: "shoes", spool: spool, present: true, fingerprint: nil, runtime: runtime, published: nil)
        #expect(DatasetReadiness.of(unscanned) == .pending("done; looking at its files"))

        // Right after a copy the record still says done, for the files before it.
        try addImage("shoes", "boot", "b.png")
        guard case .pending(let why) = DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) else {
            Issue.record("a changed dataset counted as ready")
            return
        }
        #expect(why.hasPrefix("changed since its outputs were made"))
        runtime.trainedFingerprint = try fingerprint("shoes").value
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
    }

    @Test func aSynthdTomlEditedSinceTheOutputsIsWaitedForAndOneThatDoesNotReadFails() throws {
        try addImage("shoes", "boot", "a.png")
        var runtime = DatasetRuntime()
        runtime.phase = .done
        runtime.trainedFingerprint = try fingerprint("shoes").value
        runtime.settingsSeen = DatasetFingerprint.settingsKey(folder: spool + "/shoes")
        #expect(runtime.settingsSeen == "none")
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
        // Edited just before the wait: the outputs may be of the settings before.
        try "[generation]\ntemperature = 1\n".write(toFile: spool + "/shoes/synthd.toml", atomically: true, encoding: .utf8)
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes"))
                == .pending("its synthd.toml changed since its outputs were made; waiting for the daemon to read it"))
        // The daemon has followed it (nothing to do, or a generation that has ended).
        runtime.settingsSeen = DatasetFingerprint.settingsKey(folder: spool + "/shoes")
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
        // Followed, and it does not read: waiting would not change that.
        runtime.settingsError = "\(spool)/shoes/synthd.toml: line 2: unknown key 'tempreature'"
        guard case .failed(let why) = DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) else {
            Issue.record("outputs of settings that do not read counted as ready")
            return
        }
        #expect(why.hasPrefix("\(spool)/shoes/synthd.toml: line 2: unknown key 'tempreature'; its outputs are of the settings before"))
        // A record kept before synthd followed settings waits for nothing more.
        runtime.settingsSeen = nil
        runtime.settingsError = nil
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime, published: "/out/shoes")) == .ready(outputs: "/out/shoes"))
    }

    @Test func workUnderWayIsSaidAsStatusSaysIt() throws {
        try addImage("shoes", "boot", "a.png")
        #expect(DatasetReadiness.of(try snapshot("shoes", nil)) == .pending(
            "in \(spool), not yet seen by the daemon (it takes a dataset once it has been quiet for settle_seconds, or two seconds after a .ready file appears in it)"))
        var runtime = DatasetRuntime()
        runtime.phase = .training
        runtime.progress = 0.42
        let now = Date()
        runtime.eta = now.addingTimeInterval(190)
        runtime.detail = "new dataset"
        runtime.trainedFingerprint = try fingerprint("shoes").value  // a time slice of its first training
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime), now: now) == .pending("training 42%, ETA 3m10s (new dataset)"))
        #expect(!DatasetReadiness.needsFingerprint(runtime) && !DatasetReadiness.needsFingerprint(nil), "no scan of its images while it trains")
        runtime.phase = .queued
        runtime.detail = nil
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime), now: now) == .pending("queued"))
        // A transient failure is tried again by the daemon: still worth waiting for.
        runtime.phase = .failed
        runtime.lastError = "out of memory"
        runtime.retryAt = now.addingTimeInterval(300)
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime), now: now) == .pending("failed: out of memory, tried again in 5m00s"))
    }

    @Test func aDatasetThatWaitsForTheUserFails() throws {
        try addImage("shoes", "boot", "a.png")
        var runtime = DatasetRuntime()
        runtime.phase = .failed
        runtime.lastError = "spool/shoes/boot/a.png: not a PNG"
        runtime.quarantinedFor = try fingerprint("shoes").changeKey(folder: spool + "/shoes")
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime))
            == .failed("spool/shoes/boot/a.png: not a PNG; held until its files or synthd.toml change"))
        // Mended just before the wait (a synthd.toml written, here): the daemon tries it again
        // once the change settles, so the wait goes on (it failed at once: seen in a soak).
        try "".write(toFile: spool + "/shoes/synthd.toml", atomically: true, encoding: .utf8)
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime)) == .pending("changed since it failed; waiting for the daemon to try it again"))
        try FileManager.default.removeItem(atPath: spool + "/shoes/synthd.toml")
        runtime.quarantinedFor = nil
        runtime.lastError = "No space left on device"
        runtime.freeBytesAtFailure = 0
        runtime.fullFolder = "/out"
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime)) == .failed("No space left on device; held until space is freed on /out"))
        // Its folder gone, the daemon's record of it stays: waiting would never end.
        try FileManager.default.removeItem(atPath: spool + "/shoes")
        runtime = DatasetRuntime()
        runtime.phase = .removed
        guard case .failed(let why) = DatasetReadiness.of(try snapshot("shoes", runtime)) else {
            Issue.record("a dataset that left the spool is waited for")
            return
        }
        #expect(why.hasPrefix("\(spool)/shoes has left the spool"))
        guard case .unknown(let unknown) = DatasetReadiness.of(try snapshot("boots", nil)) else {
            Issue.record("a name that is nowhere is waited for")
            return
        }
        #expect(unknown == "no dataset boots in \(spool), and the daemon knows of none by that name")
    }

    @Test func aDatasetWithoutImagesSaysWhyAndFailsWhenItWaitsForTheUser() throws {
        try FileManager.default.createDirectory(atPath: spool + "/shoes", withIntermediateDirectories: true)
        try PNG.write(Image(width: 4, height: 4, mode: .grey), to: spool + "/shoes/loose.png", durable: false)
        var runtime = DatasetRuntime()
        runtime.phase = .waiting
        // Waiting cannot help: the user has to move them into class folders.
        guard case .failed(let why) = DatasetReadiness.of(try snapshot("shoes", runtime)) else {
            Issue.record("a dataset of images outside class folders is waited for")
            return
        }
        #expect(why.hasPrefix("no images in class folders: ") && why.hasSuffix("; held until its files change"), "\(why)")
        // A folder of no images at all may yet be filled: waited for.
        try FileManager.default.removeItem(atPath: spool + "/shoes/loose.png")
        #expect(DatasetReadiness.of(try snapshot("shoes", runtime)) == .pending("no images yet"))
    }

    @Test func anArchiveIsWaitedForUnderItsDatasetsName() throws {
        #expect(FileManager.default.createFile(atPath: spool + "/shoes.tar.gz", contents: Data([0x1f, 0x8b])))
        #expect(FileManager.default.createFile(atPath: spool + "/notes.txt", contents: Data()))
        let found = DatasetReadiness.archive(into: "shoes", spool: spool, records: [:])
        #expect(found?.name == "shoes.tar.gz" && found?.record == nil)
        #expect(DatasetReadiness.archive(into: "notes", spool: spool, records: [:]) == nil)
        var snapshot = try snapshot("shoes", nil)
        snapshot.archive = found
        #expect(DatasetReadiness.of(snapshot) == .pending("shoes.tar.gz: waiting to be unpacked into \(spool)/shoes"))

        let (size, modified) = try #require(ArchiveIntake.fileSize(spool + "/shoes.tar.gz"))
        var record = ArchiveRecord(size: size, modified: modified, state: .unpacking, dataset: "shoes", updatedAt: Date())
        record.files = 40
        #expect(DatasetReadiness.archive(into: "shoes", spool: spool, records: ["shoes.tar.gz": record])?.record == record)
        var older = record
        older.modified -= 60
        #expect(DatasetReadiness.archive(into: "shoes", spool: spool, records: ["shoes.tar.gz": older])?.record == nil,
                "a record of an earlier copy: this one is not looked at yet")
        snapshot.archive = ("shoes.tar.gz", record)
        guard case .pending(let unpacking) = DatasetReadiness.of(snapshot) else {
            Issue.record("an archive being unpacked is not pending")
            return
        }
        #expect(unpacking.hasPrefix("shoes.tar.gz: unpacking into \(spool)/shoes (40 images"), "\(unpacking)")
        // An archive the daemon gave up on, until it changes.
        record.state = .failed
        record.error = "not a gzip stream"
        snapshot.archive = ("shoes.tar.gz", record)
        #expect(DatasetReadiness.of(snapshot) == .failed("shoes.tar.gz was not unpacked: not a gzip stream"))
        // Unpacked, and its folder removed since: not unpacked again by itself.
        record.state = .unpacked
        snapshot.archive = ("shoes.tar.gz", record)
        #expect(DatasetReadiness.of(snapshot) == .failed(
            "shoes.tar.gz was unpacked into \(spool)/shoes, which has left the spool since (copy the archive in again to unpack it anew)"))
        // The archive file already deleted, its record still unpacking: found by the record.
        try FileManager.default.removeItem(atPath: spool + "/shoes.tar.gz")
        record.state = .unpacking
        #expect(DatasetReadiness.archive(into: "shoes", spool: spool, records: ["shoes.tar.gz": record])?.name == "shoes.tar.gz")
    }
}
