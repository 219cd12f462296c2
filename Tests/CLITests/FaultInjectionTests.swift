import FileTestSupport
import Foundation
import Imaging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Faults injected into a running daemon, and the invariants that must hold after each:
/// hostile files are reported and never block; kill -9 at many points of training and
/// generation loses nothing but time; the daemon always answers SIGTERM; what others read
/// (outputs, manifests, the queue, status) is always whole.
@Suite(.serialized) struct FaultInjectionTests {
    typealias Daemon = DaemonIntegrationTests.Daemon
    typealias Layout = DaemonIntegrationTests.Layout

    static func configure(_ layout: Layout, minutes: Double) throws {
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.2
        [training]
        minutes = \(minutes)
        checkpoint_seconds = 1
        batch = 8
        [generation]
        policy = "per-class"
        per_class = 3000
        [service]
        threads = 2
        """)
    }

    /// Drops the dataset `shapes` (classes circle and square) into the spool the way a careful
    /// copy lands: staged beside it, then renamed in.
    static func dropShapes(_ layout: Layout, imagesPerClass count: Int) throws {
        let staging = layout.root + "/staging/shapes"
        try DaemonIntegrationTests.addImages(staging + "/circle", count: count, shade: 60)
        try DaemonIntegrationTests.addImages(staging + "/square", count: count, shade: 190)
        rename(staging, layout.spool + "/shapes")
    }

    /// The steps of the model's last checkpoint (its model.json).
    static func checkpointedSteps(_ layout: Layout) -> Int {
        guard let data = FileManager.default.contents(atPath: layout.state + "/datasets/shapes/model.json"),
              let record = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return 0 }
        return record["steps"] as? Int ?? 0
    }

    /// Everything others read is whole: the queue and every daemon.json parse, every published
    /// PNG decodes, every manifest line names a file that exists, no temporary or partial files
    /// are visible in the published tree.
    static func checkInvariants(_ layout: Layout, _ dataset: String, classes: Set<String>) throws {
        let queue = try Data(contentsOf: URL(fileURLWithPath: layout.state + "/queue.json"))
        #expect((try? JSONSerialization.jsonObject(with: queue)) != nil, "queue.json is whole")
        #expect(!layout.runtime(dataset).isEmpty, "daemon.json is whole")
        try DaemonIntegrationTests.checkPublished(layout, dataset, classes: classes)
    }

    /// A dataset with every kind of hostile file next to good images: a FIFO named like an
    /// image and one named synthd.toml would block a reader, a link to /etc/passwd, a socket,
    /// a device, a corrupt PNG, a JPEG of 631 scans, a class folder with a control character.
    /// The daemon trains on the good images, lists the others with their reasons, and stays
    /// responsive throughout.
    @Test func hostileFilesAreReportedAndNeverBlock() throws {
        let layout = Layout(root: try temporaryFolder("hostile"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try Self.configure(layout, minutes: 0.03)
        let staging = layout.root + "/staging/mixed"
        try DaemonIntegrationTests.addImages(staging + "/circle", count: 6, shade: 60)
        try DaemonIntegrationTests.addImages(staging + "/square", count: 6, shade: 190)
        #expect(mkfifo(staging + "/circle/pipe.png", 0o644) == 0)
        try FileManager.default.createSymbolicLink(atPath: staging + "/circle/passwd.png", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: staging + "/square/zero.png", withDestinationPath: "/dev/zero")
        try Data("not a PNG".utf8).write(to: URL(fileURLWithPath: staging + "/square/corrupt.png"))
        let bomb = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ImagingTests/Fixtures/progressive-631-scans.jpg")
        try FileManager.default.copyItem(atPath: bomb.path, toPath: staging + "/square/bomb.jpg")
        try FileManager.default.createDirectory(atPath: staging + "/bad\u{1B}[2Jname", withIntermediateDirectories: true)
        let socket = try bindUnixSocket(at: staging + "/square/socket.png")
        defer { close(socket) }
        let daemon = try Daemon(config: layout.config, log: layout.log)
        rename(staging, layout.spool + "/mixed")
        // A FIFO as the dataset's synthd.toml: refused (the job fails, naming it), not waited on.
        #expect(mkfifo(layout.spool + "/mixed/synthd.toml", 0o644) == 0)
        try DaemonIntegrationTests.waitFor("the FIFO configuration refused", timeout: 60, daemon: daemon) {
            layout.phase("mixed") == "failed"
        }
        #expect((layout.runtime("mixed")["lastError"] as? String)?.contains("synthd.toml: cannot read: a FIFO") == true)
        unlink(layout.spool + "/mixed/synthd.toml")
        try DaemonIntegrationTests.waitFor("outputs", timeout: 120, daemon: daemon) {
            layout.phase("mixed") == "done" && layout.manifest("mixed").count == 6000
        }
        try Self.checkInvariants(layout, "mixed", classes: ["circle", "square"])
        let status = try SynthdProcess.run(["status", "--config", layout.config, "--json"])
        let machine = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        let entries = try #require(machine["datasets"] as? [[String: Any]])
        let rejected = (entries.first?["rejected"] as? [[String: String]] ?? []).reduce(into: [String: String]()) {
            $0[($1["path"]! as NSString).lastPathComponent] = $1["reason"]
        }
        #expect(rejected["pipe.png"]?.contains("FIFO") == true, "\(rejected)")
        #expect(rejected["passwd.png"]?.contains("leads out of") == true, "\(rejected)")
        #expect(rejected["zero.png"]?.contains("leads out of") == true, "\(rejected)")
        #expect(rejected["socket.png"]?.contains("socket") == true, "\(rejected)")
        #expect(rejected["corrupt.png"] != nil && rejected["bomb.jpg"]?.contains("scans") == true, "\(rejected)")
        #expect(rejected.keys.contains { $0.hasPrefix("bad") }, "\(rejected)")
        // Each reason is the line a user reads, so it names its file, whoever rejected it.
        for (name, reason) in rejected { #expect(reason.contains(name), "\(reason)") }
        #expect(!daemon.log.contains("\u{1B}"), "no escape sequence reaches the log")
        let text = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(text.output.contains("rejected: \(layout.spool)/mixed/circle/pipe.png: a FIFO"), "\(text.output)")
        #expect(!text.output.contains("\u{1B}"), "no escape sequence reaches the status either")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 10)?.status == 0)
    }

    /// A job stuck where nothing can stop it (a hung file system or GPU), in a daemon that no
    /// systemd watchdog watches (a container, a terminal): it notices after `stall_minutes`,
    /// stops and exits with status 70, so that its supervisor restarts it; restarted, the
    /// job is taken up again and counted as cut short.
    @Test func aStuckJobWithoutSystemdsWatchdogEndsTheDaemonForARestart() throws {
        let layout = Layout(root: try temporaryFolder("stuck"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.2
        [training]
        minutes = 5
        batch = 8
        [service]
        threads = 2
        stall_minutes = 1
        """)
        try Self.dropShapes(layout, imagesPerClass: 8)
        let daemon = try Daemon(config: layout.config, log: layout.log, environment: ["SYNTHD_INJECT_FAULT": "training-hangs"])
        try DaemonIntegrationTests.waitFor("training", timeout: 60, daemon: daemon) { layout.phase("shapes") == "training" }
        let exit = try #require(daemon.waitForExit(timeout: 150), "the daemon exits by itself: \(daemon.log)")
        #expect(exit.status == 70, "\(daemon.log)")
        #expect(daemon.log.contains("no progress for 1m00s from the job of shapes"), "\(daemon.log)")
        #expect(daemon.log.contains("1 job did not stop within 9 s"), "\(daemon.log)")

        let restarted = try Daemon(config: layout.config, log: layout.root + "/restarted.log")
        // The record says "training" from before the restart: the new daemon's own start and job are waited for.
        try DaemonIntegrationTests.waitFor("training again", timeout: 60, daemon: restarted) {
            restarted.log.contains("synthd running") && restarted.log.contains("training") && layout.phase("shapes") == "training"
        }
        // Running again, the run that was cut short counted: a second attempt.
        let queue = try String(contentsOfFile: layout.state + "/queue.json", encoding: .utf8)
        #expect(queue.contains("\"attempts\" : 2") || queue.contains("\"attempts\":2"), "cut short once: \(queue)")
        restarted.signal(SIGTERM)
        #expect(restarted.waitForExit(timeout: 15)?.status == 0)
    }

    /// Whether a generation of `dataset` is being written (its `.partial` folder exists).
    static func hasPartialGeneration(_ layout: Layout, _ dataset: String) -> Bool {
        let folder = layout.out + "/.synthd-generations/" + dataset
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).contains { $0.hasSuffix(".partial") }
    }

    /// libfaketime, which moves a process's wall clock by an offset read from a file at every
    /// call and leaves its monotonic clock alone (scripts/setup installs the faketime package).
    static let fakeWallClockLibrary = ["x86_64", "aarch64"].map { "/usr/lib/\($0)-linux-gnu/faketime/libfaketimeMT.so.1" }
        .first { FileManager.default.fileExists(atPath: $0) }

    /// The wall clock stepped while the daemon works, as an NTP step at boot, `date -s` or a
    /// resumed VM step it: two hours back while a dataset settles, then three forward while it
    /// trains. Every interval the daemon times is on the monotonic clock, so the dataset still
    /// settles in its 2 s (it waited two hours), the watchdog is still fed (it went unfed for
    /// the two hours, and systemd killed synthd), the training spends its whole budget (it
    /// ended at the forward step) and no job is called stalled.
    @Test(.enabled(if: fakeWallClockLibrary != nil, "libfaketime is not installed (the faketime package, which scripts/setup installs)"))
    func theWallClockSteppingBackOrForwardMovesNoTimer() throws {
        let layout = Layout(root: try temporaryFolder("clock"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        let budget = 12.0
        try layout.writeConfig("""
        [watch]
        settle_seconds = 2
        [training]
        minutes = \(budget / 60)
        checkpoint_seconds = 1
        batch = 8
        [generation]
        policy = "per-class"
        per_class = 50
        [service]
        threads = 2
        stall_minutes = 1
        """)
        let offset = layout.root + "/wall-clock-offset"
        func setWallClock(_ change: String) throws { try (change + "\n").write(toFile: offset, atomically: true, encoding: .utf8) }
        try setWallClock("+0")
        let systemd = try DaemonIntegrationTests.NotifySocket()
        DaemonIntegrationTests.activeNotifySocket = systemd
        defer { DaemonIntegrationTests.activeNotifySocket = nil }
        let daemon = try Daemon(config: layout.config, log: layout.log, environment: [
            "NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000",
            "LD_PRELOAD": try #require(Self.fakeWallClockLibrary), "FAKETIME_TIMESTAMP_FILE": offset,
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1", "NO_FAKE_STAT": "1",
        ])
        try DaemonIntegrationTests.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        func watchdogPings(inSeconds seconds: Double) -> Int {
            let before = systemd.received().filter { $0 == "WATCHDOG=1" }.count
            usleep(UInt32(seconds * 1_000_000))
            return systemd.received().filter { $0 == "WATCHDOG=1" }.count - before
        }

        try Self.dropShapes(layout, imagesPerClass: 10)
        try setWallClock("-2h")
        let backPings = watchdogPings(inSeconds: 3)
        #expect(backPings >= 3, "\(backPings) watchdog pings in the 3 s after the clock went back (one due every 0.5 s)")
        try DaemonIntegrationTests.waitFor("training after the clock went back", timeout: 30, daemon: daemon) {
            layout.phase("shapes") == "training"
        }
        let trainingSeen = Date()  // the test's own clock is not stepped
        usleep(2_000_000)
        try setWallClock("+1h")
        let forwardPings = watchdogPings(inSeconds: 3)
        #expect(forwardPings >= 3, "\(forwardPings) watchdog pings in the 3 s after the clock went forward")
        try DaemonIntegrationTests.waitFor("the training's end", timeout: 60, daemon: daemon) { layout.phase("shapes") != "training" }
        let trained = Date().timeIntervalSince(trainingSeen)
        let checkpoints = daemon.log.components(separatedBy: "\n").filter { $0.contains("checkpoint at step") }
        #expect(trained >= budget - 1, "trained \(trained) s: the \(budget) s budget was cut short; \(checkpoints)")
        try DaemonIntegrationTests.waitFor("outputs", timeout: 120, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 100
        }
        #expect(!daemon.log.contains("no progress for"), "a clock set forward is not a stalled job")
        try Self.checkInvariants(layout, "shapes", classes: ["circle", "square"])
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0, "\(daemon.log)")
    }

    /// `rm -rf state` under a running daemon, whose dataset is done: the daemon takes its
    /// lock again, writes its queue again from memory, and trains the dataset afresh (its
    /// model went with the folder), publishing it again. Before, it knew nothing of the loss:
    /// the dataset stayed "done" in memory with no model, until a restart.
    @Test func theStateFolderRemovedUnderTheDaemonIsBuiltAgain() throws {
        let layout = Layout(root: try temporaryFolder("nostate"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try Self.configure(layout, minutes: 0.03)
        try Self.dropShapes(layout, imagesPerClass: 6)
        let daemon = try Daemon(config: layout.config, log: layout.log)
        try DaemonIntegrationTests.waitFor("outputs", timeout: 120, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 6000
        }
        try FileManager.default.removeItem(atPath: layout.state)
        try DaemonIntegrationTests.waitFor("the dataset trained afresh", timeout: 120, daemon: daemon) {
            daemon.log.contains("its state was removed") && layout.phase("shapes") == "done"
                && FileManager.default.fileExists(atPath: layout.state + "/datasets/shapes/model.json")
        }
        #expect(daemon.log.components(separatedBy: "training a new model").count == 3, "trained twice, each a new model: \(daemon.log)")
        let queue = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout.state + "/queue.json"))) as? [[String: Any]]
        #expect((queue ?? []).contains { $0["kind"] as? String == "train" && $0["state"] as? String == "done" }, "the queue written again")
        try Self.checkInvariants(layout, "shapes", classes: ["circle", "square"])
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0, "\(daemon.log)")
    }

    /// kill -9 in each phase of a dataset's life (training after a checkpoint, training
    /// again, generating twice), each at a random moment in it, then a clean run to the end:
    /// every restart resumes (training with the budget it had left), nothing half-written is
    /// ever visible, the leftovers are swept, and the dataset ends with exactly its images.
    @Test func killNineInEveryPhaseLosesNothingButTime() throws {
        let layout = Layout(root: try temporaryFolder("kill9"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try Self.configure(layout, minutes: 0.1)
        try Self.dropShapes(layout, imagesPerClass: 10)
        var rng = SystemRandomNumberGenerator()
        var killed: [String] = []
        for (round, phase) in ["training", "training", "generating", "generating"].enumerated() {
            let daemon = try Daemon(config: layout.config, log: layout.log)
            let stepAtStart = Self.checkpointedSteps(layout)
            // Training: once it has checkpointed in this run (progress, so not a crash loop).
            // Generating: once its partial folder exists (before it, the phase loads the model
            // and the judge, which on a loaded machine took longer than the kill's delay, and
            // there was nothing half-written to find).
            try DaemonIntegrationTests.waitFor("\(phase) in round \(round)", timeout: 120, daemon: daemon) {
                layout.phase("shapes") == phase
                    && (phase == "training" ? Self.checkpointedSteps(layout) > stepAtStart : Self.hasPartialGeneration(layout, "shapes"))
            }
            usleep(UInt32.random(in: 0...(phase == "training" ? 1_500_000 : 300_000), using: &rng))
            daemon.signal(SIGKILL)
            _ = daemon.waitForExit(timeout: 10)
            killed.append("\(phase) with step \(Self.checkpointedSteps(layout)) checkpointed")
            if layout.generation("shapes") != nil { try Self.checkInvariants(layout, "shapes", classes: ["circle", "square"]) }
        }
        let daemon = try Daemon(config: layout.config, log: layout.log)
        try DaemonIntegrationTests.waitFor("outputs after four kills", timeout: 180, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 6000
        }
        try Self.checkInvariants(layout, "shapes", classes: ["circle", "square"])
        print("kill -9 during: \(killed.joined(separator: ", "))")
        #expect(!daemon.log.contains("times in a row without progress"), "no kill counted as a crash loop")
        #expect(daemon.log.contains("removed") && daemon.log.contains("leftovers of an interrupted run"),
                "the kills during generation left a partial generation, swept at the next start")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 10)?.status == 0)
        let leftovers = (FileManager.default.subpaths(atPath: layout.root + "/out") ?? []).filter {
            $0.contains(".tmp.") || $0.hasSuffix(".partial") || $0.hasSuffix(".link.tmp")
        }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }
}
