import Daemon
import Foundation
import Imaging
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real full disk: the output tree on a tiny tmpfs. Needs permission to mount (root, as on
/// the project's machines); elsewhere the test says so and stops.
@Suite(.serialized) struct DiskFullTests {
    static func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Whether this process may mount a tmpfs (root, as on the project's machines).
    static let canMount: Bool = {
        let folder = NSTemporaryDirectory() + "synthd-mount-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        guard (try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)) != nil,
              shell("mount -t tmpfs -o size=64k synthd-probe \(folder)") == 0 else { return false }
        return shell("umount \(folder)") == 0
    }()

    /// Spool, output and state folders under `root`, and a training of a fraction of a second.
    static func petsUnder(_ root: String) -> Configuration {
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (root + "/spool", root + "/out", root + "/state")
        configuration.trainingMinutes = 0.01
        configuration.batch = 4
        return configuration
    }

    /// The dataset `pets`: classes a and b, four 16 x 16 grey images each.
    static func addPets(_ configuration: Configuration) throws {
        for (name, shade) in [("a", 50), ("b", 200)] {
            try FileManager.default.createDirectory(atPath: "\(configuration.spool)/pets/\(name)", withIntermediateDirectories: true)
            for i in 0..<4 {
                var image = Image(width: 16, height: 16, mode: .grey)
                for p in 0..<image.pixels.count { image.pixels[p] = UInt8((shade + 13 * i + 7 * p) % 256) }
                try PNG.write(image, to: "\(configuration.spool)/pets/\(name)/\(i).png")
            }
        }
    }

    /// A state folder on a full file system: the training is refused before it starts, with
    /// what its checkpoints need (it used to train until its first checkpoint, then fail, each
    /// retry losing that training), retried later, and the hold watches the state folder's
    /// file system; with room, it trains.
    @Test(.enabled(if: canMount, "cannot mount a tmpfs here (not root?): the full-disk test needs a tiny file system"))
    func aFullStateFolderRefusesTrainingBeforeItStarts() throws {
        let root = NSTemporaryDirectory() + "synthd-fullstate-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let configuration = Self.petsUnder(root)
        try FileManager.default.createDirectory(atPath: configuration.state, withIntermediateDirectories: true)
        #expect(Self.shell("mount -t tmpfs -o size=2m synthd-test \(configuration.state)") == 0)
        defer { _ = Self.shell("umount \(configuration.state)") }
        try Self.addPets(configuration)
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let started = Date()
        guard case .failed(let message, let retry, _) = scheduler.runner.run(train, shouldStop: { false }) else {
            Issue.record("a model's checkpoints fitted into 2 MB"); return
        }
        #expect(message.hasPrefix("\(scheduler.store.folder("pets")): No space left on device: writing its checkpoints needs up to "),
                "\(message)")
        #expect(retry == .afterSpaceFreed(folder: configuration.state), "the hold would watch the state folder's file system")
        #expect(DiskFull.matches(message))
        print("a full state folder: \(message)")
        #expect(scheduler.store.get("pets").step == nil, "refused before a step")
        #expect(Date().timeIntervalSince(started) < 30)

        #expect(Self.shell("mount -o remount,size=256m \(configuration.state)") == 0)
        guard case .completed = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("no training with room"); return }
        #expect(FileManager.default.fileExists(atPath: scheduler.store.folder("pets") + "/checkpoint.ckpt"))
    }

    @Test(.enabled(if: canMount, "cannot mount a tmpfs here (not root?): the full-disk test needs a tiny file system"))
    func aFullDiskFailsCleanlyAndARetrySucceeds() throws {
        let root = NSTemporaryDirectory() + "synthd-full-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = Self.petsUnder(root)
        configuration.policy = .perClass
        configuration.perClass = 300
        try FileManager.default.createDirectory(atPath: configuration.output, withIntermediateDirectories: true)
        #expect(Self.shell("mount -t tmpfs -o size=64k synthd-test \(configuration.output)") == 0)
        defer { _ = Self.shell("umount \(configuration.output)") }
        try Self.addPets(configuration)
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let runner = scheduler.runner
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(train, shouldStop: { false }) else {
            Issue.record("training failed")
            return
        }

        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        let outcome = runner.run(generate, shouldStop: { false })
        guard case .failed(let message, let retry, _) = outcome else {
            Issue.record("600 PNGs fitted into 64 KB: \(outcome)")
            return
        }
        #expect(message.contains("No space left on device"), "\(message)")
        #expect(retry == .afterSpaceFreed(folder: configuration.output))
        #expect(scheduler.output.current("pets") == nil, "nothing published")
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: scheduler.output.generationsPath("pets"))) ?? []
        #expect(leftovers.isEmpty, "the partial generation is removed: \(leftovers)")

        // Space again: the retry publishes everything.
        #expect(Self.shell("mount -o remount,size=16m \(configuration.output)") == 0)
        #expect(runner.run(generate, shouldStop: { false }) == .completed(fingerprint: nil))
        #expect(scheduler.output.imagesPublished("pets") == 600)
        let cat = try FileManager.default.contentsOfDirectory(atPath: scheduler.output.linkPath("pets") + "/a")
        #expect(cat.count == 300)
    }
}
