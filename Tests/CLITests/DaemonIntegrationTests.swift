import FileTestSupport
import Foundation
import Imaging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `synthd run` as a process on a temporary spool, driven the way a user drives it: drop a
/// dataset, add images, add a class, stop it, kill it, delete the dataset. After every step
/// the output tree must hold only whole, valid PNGs in the right class folders.
@Suite(.serialized) struct DaemonIntegrationTests {
    /// A daemon process with its log in a file (a pipe nobody reads would block it).
    final class Daemon {
        let process = Process()
        let logPath: String
        /// Where this process's lines begin in the log (a restarted daemon appends to its predecessor's).
        private(set) var logStart: UInt64 = 0

        convenience init(config: String, log: String, environment: [String: String] = [:]) throws {
            try self.init(arguments: ["run", "--config", config], log: log, environment: environment)
        }

        /// `wrapper`: a command that runs synthd (its path and arguments follow it).
        init(arguments: [String], log: String, environment: [String: String] = [:], wrapper: [String] = []) throws {
            logPath = log
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            // A file that cannot be made fails at FileHandle below, naming it.
            if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            logStart = handle.seekToEndOfFile()
            let command = wrapper + [SynthdProcess.binary] + arguments
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        /// A signal the daemon handles (SIGTERM, SIGINT, SIGHUP) is sent once it has started
        /// ("synthd running" in its log: its handlers are in place), or has exited: sent before,
        /// it ends the process as for any program (since every command unblocks them at once).
        func signal(_ number: Int32) {
            if [SIGTERM, SIGINT, SIGHUP].contains(number) {
                let start = Date()
                while process.isRunning && !hasStarted && Date().timeIntervalSince(start) < 10 { usleep(20_000) }
            }
            kill(process.processIdentifier, number)
        }

        /// A test that fails half-way leaves no daemon behind.
        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        /// Waits for exit; returns the status and the seconds it took, or nil on timeout.
        func waitForExit(timeout: Double) -> (status: Int32, seconds: Double)? {
            let start = Date()
            while process.isRunning && Date().timeIntervalSince(start) < timeout { usleep(20_000) }
            guard !process.isRunning else { return nil }
            process.waitUntilExit()
            return (process.terminationStatus, Date().timeIntervalSince(start))
        }

        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// Whether this process has said "synthd running" in its part of the log.
        var hasStarted: Bool {
            let data = FileManager.default.contents(atPath: logPath) ?? Data()
            return String(decoding: data.dropFirst(Int(logStart)), as: UTF8.self).contains("synthd running")
        }
    }

    /// Plays systemd's side of Type=notify: a datagram socket that collects what synthd sends.
    final class NotifySocket {
        let path = NSTemporaryDirectory() + "synthd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd: Int32
        private(set) var messages: [String] = []

        init() throws {
            fd = try bindUnixSocket(at: path, type: Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
        }

        deinit {
            close(fd)
            unlink(path)
        }

        /// Everything received so far.
        func received() -> [String] {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { break }
                messages.append(String(decoding: buffer.prefix(n), as: UTF8.self))
            }
            return messages
        }
    }

    struct Layout {
        let root: String
        var spool: String { root + "/spool" }
        var out: String { root + "/out" }
        var state: String { root + "/state" }
        var config: String { root + "/synthd.toml" }
        var log: String { root + "/daemon.log" }

        /// Writes the configuration: the spool, output and state folders inside `root`, then
        /// `tables` (TOML, `[watch]` onwards).
        func writeConfig(_ tables: String) throws {
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
            try ("[paths]\nspool = \"spool\"\noutput = \"out\"\nstate = \"state\"\n" + tables)
                .write(toFile: config, atomically: true, encoding: .utf8)
        }

        func runtime(_ dataset: String) -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: "\(state)/datasets/\(dataset)/daemon.json"),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
            return object
        }

        func phase(_ dataset: String) -> String? { runtime(dataset)["phase"] as? String }
        func generation(_ dataset: String) -> String? {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/" + dataset)).map { ($0 as NSString).lastPathComponent }
        }

        func manifest(_ dataset: String) -> [[String: Any]] {
            guard let text = try? String(contentsOfFile: "\(out)/\(dataset)/manifest.jsonl", encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
    }

    /// Images land the way a careful copy lands them: written under a temporary name, renamed.
    static func addImages(_ folder: String, count: Int, shade: Int, from first: Int = 0) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in first..<(first + count) {
            var image = Image(width: 12, height: 12, mode: .grey)
            for y in 3..<9 { for x in 3..<9 { image[x, y, 0] = UInt8((shade + 7 * i) % 256) } }
            try PNG.write(image, to: "\(folder)/\(i).png.part")
            rename("\(folder)/\(i).png.part", "\(folder)/\(i).png")
        }
    }

    /// A gzipped tar of the dataset `shoes` (six images in `boot`, six in `sandal`) at `path`.
    static func packShoes(_ layout: Layout, to path: String) throws {
        let packing = layout.root + "/packing/shoes"
        try addImages(packing + "/boot", count: 6, shade: 40)
        try addImages(packing + "/sandal", count: 6, shade: 200)
        let tar = try ServiceInstallTests.shell("cd \(layout.root)/packing && tar czf \(path) shoes")
        #expect(tar.status == 0, "\(tar.output)")
    }

    /// Whole, decodable PNGs of the dataset's size, each in one of `classes`, and nothing else
    /// (no temporary files) in the published tree; every manifest entry exists.
    static func checkPublished(_ layout: Layout, _ dataset: String, classes: Set<String>) throws {
        let root = layout.out + "/" + dataset
        guard FileManager.default.fileExists(atPath: root) else { return }
        for entry in try FileManager.default.contentsOfDirectory(atPath: root) {
            if entry == "manifest.jsonl" { continue }
            #expect(classes.contains(entry), "unexpected entry \(entry) in \(root)")
            for file in try FileManager.default.contentsOfDirectory(atPath: root + "/" + entry) {
                #expect(file.hasSuffix(".png") && !file.contains(".tmp"), "unexpected file \(entry)/\(file)")
                let image = try PNG.read(path: "\(root)/\(entry)/\(file)")
                #expect(image.width == 12 && image.height == 12 && image.mode == .grey)
            }
        }
        for line in layout.manifest(dataset) {
            let file = line["file"] as? String ?? ""
            #expect(FileManager.default.fileExists(atPath: root + "/" + file), "manifest lists missing \(file)")
        }
    }

    static func waitFor(_ what: String, timeout: Double, daemon: Daemon, _ condition: () -> Bool) throws {
        let start = Date()
        while !condition() {
            _ = activeNotifySocket?.received()
            if Date().timeIntervalSince(start) > timeout {
                Issue.record("timed out after \(timeout) s waiting for \(what); daemon log:\n\(daemon.log)")
                throw CancellationError()
            }
            if !daemon.process.isRunning {
                Issue.record("daemon exited (\(daemon.process.terminationStatus)) while waiting for \(what); log:\n\(daemon.log)")
                throw CancellationError()
            }
            usleep(100_000)
        }
    }

    /// Drained while waiting, as systemd would (its queue holds only a few datagrams).
    nonisolated(unsafe) static var activeNotifySocket: NotifySocket?

    @Test func dropTrainGenerateStopKillFineTuneAndRemove() throws {
        let layout = Layout(root: try temporaryFolder("daemon"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.5
        [training]
        minutes = 0.15
        finetune_minutes = 0.1
        checkpoint_seconds = 1
        batch = 8
        [generation]
        policy = "per-class"
        per_class = 6
        [service]
        threads = 2
        """)

        // 1. A dataset dropped whole (staged outside, renamed in): trained, then published.
        let staging = layout.root + "/staging/shapes"
        try Self.addImages(staging + "/circle", count: 10, shade: 60)
        try Self.addImages(staging + "/square", count: 10, shade: 180)
        try Data("not a PNG".utf8).write(to: URL(fileURLWithPath: staging + "/square/broken.png"))
        let systemd = try NotifySocket()
        Self.activeNotifySocket = systemd
        defer { Self.activeNotifySocket = nil }
        var daemon = try Daemon(config: layout.config, log: layout.log,
                                environment: ["NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000"])
        rename(staging, layout.spool + "/shapes")
        try Self.waitFor("first outputs", timeout: 120, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 12
        }
        let first = try #require(layout.generation("shapes"))
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square"])

        // Background citizen: every thread at the configured nice value (10 by default)
        // within the few seconds the daemon takes to catch threads that Dispatch started.
        func niceValues() -> [String] {
            let task = "/proc/\(daemon.process.processIdentifier)/task"
            return ((try? FileManager.default.contentsOfDirectory(atPath: task)) ?? []).compactMap { thread in
                guard let stat = try? String(contentsOfFile: "\(task)/\(thread)/stat", encoding: .utf8),
                      let end = stat.range(of: ")") else { return nil }
                return String(stat[end.upperBound...].split(separator: " ")[16])  // field 19: nice
            }
        }
        try Self.waitFor("nice 10 on every thread", timeout: 8, daemon: daemon) { Set(niceValues()) == ["10"] }

        // systemd heard READY=1 first, then what it was doing, and watchdog pings.
        let notes = systemd.received()
        #expect(notes.first?.hasPrefix("READY=1\nSTATUS=") == true, "\(notes)")
        #expect(notes.contains { $0.hasPrefix("STATUS=training shapes") }, "\(notes)")
        #expect(notes.contains("WATCHDOG=1"))

        // SIGHUP reloads the configuration; a broken one is refused and the old one kept.
        let good = try String(contentsOfFile: layout.config, encoding: .utf8)
        try (good + "\n[watch]\n").write(toFile: layout.config, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try Self.waitFor("refused reload", timeout: 10, daemon: daemon) { daemon.log.contains("configuration not reloaded") }
        let line = good.split(separator: "\n", omittingEmptySubsequences: false).count + 1
        #expect(daemon.log.contains("synthd.toml:\(line): table [watch] is defined twice"), "\(daemon.log)")
        // `systemctl reload` reports success whatever the file. Status, which reads the same file,
        // refuses it too; once the file is mended, or from the state folder, it says that the
        // daemon runs with the settings it had until a reload reads.
        let brokenStatus = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(brokenStatus.status == 78 && brokenStatus.output.contains("table [watch] is defined twice"), "\(brokenStatus.output)")
        let refused = try SynthdProcess.run(["status", "--state", layout.state])
        #expect(refused.output.contains("configuration not reloaded at ") && refused.output.contains("running with the settings it had before: "
            + "\(layout.config):\(line): table [watch] is defined twice\n  (mend the file and reload again)"), "\(refused.output)")
        try good.write(toFile: layout.config, atomically: true, encoding: .utf8)
        let refusedJSON = try SynthdProcess.run(["status", "--config", layout.config, "--json"])
        #expect(refusedJSON.output.contains("\"reloadFailed\" : \"configuration not reloaded at "), "\(refusedJSON.output)")
        daemon.signal(SIGHUP)
        try Self.waitFor("reload", timeout: 10, daemon: daemon) { daemon.log.contains("configuration reloaded") }
        #expect(systemd.received().contains("RELOADING=1"))
        #expect(try !SynthdProcess.run(["status", "--config", layout.config]).output.contains("not reloaded"), "a reload that reads clears it")

        // 2. Images added: fine-tuning starts; SIGTERM during it exits 0 within 10 s, and the
        // published outputs are untouched.
        try Self.addImages(layout.spool + "/shapes/circle", count: 4, shade: 90, from: 10)
        try Self.waitFor("fine-tuning", timeout: 60, daemon: daemon) { layout.phase("shapes") == "training" }
        usleep(500_000)
        daemon.signal(SIGTERM)
        let stopped = try #require(daemon.waitForExit(timeout: 15), "no exit after SIGTERM")
        _ = systemd.received()
        #expect(stopped.status == 0)
        #expect(stopped.seconds < 10)
        #expect(systemd.received().contains { $0.hasPrefix("STOPPING=1") })
        #expect(layout.generation("shapes") == first)
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square"])

        // Restarted, it finishes the fine-tuning and publishes a newer generation.
        daemon = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("outputs after fine-tuning", timeout: 120, daemon: daemon) {
            layout.generation("shapes") != first && layout.phase("shapes") == "done"
        }
        let second = try #require(layout.generation("shapes"))
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square"])

        // 3. A class added: kill -9 during its fine-tuning; a restart resumes and the new class
        // gets outputs.
        try Self.addImages(layout.spool + "/shapes/triangle", count: 8, shade: 120)
        try Self.waitFor("fine-tuning with a new class", timeout: 60, daemon: daemon) { layout.phase("shapes") == "training" }
        usleep(1_500_000)
        let killed = daemon.process.processIdentifier
        daemon.signal(SIGKILL)
        _ = daemon.waitForExit(timeout: 10)
        #expect(layout.generation("shapes") == second)
        // Meanwhile `synthd status` says that no daemon runs, and that the training was cut short.
        let down = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(down.output.hasPrefix("synthd run (pid \(killed)) is not running: it ended without stopping its jobs"), "\(down.output)")
        #expect(down.output.contains("shapes: interrupted (was training"), "\(down.output)")
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square"])
        daemon = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("outputs with the new class", timeout: 120, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 18
        }
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square", "triangle"])
        let classes = Set(layout.manifest("shapes").compactMap { $0["class"] as? String })
        #expect(classes == ["circle", "square", "triangle"])

        // 4. The dataset deleted: the daemon notices, keeps model and outputs.
        try FileManager.default.removeItem(atPath: layout.spool + "/shapes")
        try Self.waitFor("removal noticed", timeout: 30, daemon: daemon) { layout.phase("shapes") == "removed" }
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square", "triangle"])
        #expect(FileManager.default.fileExists(atPath: layout.state + "/datasets/shapes/checkpoint.ckpt"))

        // `synthd status` reads it all from the state folder.
        let status = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(status.status == 0)
        #expect(status.output.contains("shapes: removed") && !status.output.contains("not running"), "\(status.output)")
        #expect(status.output.contains("3 classes"))
        #expect(status.output.contains("rejected: \(layout.spool)/shapes/square/broken.png"), "\(status.output)")
        let json = try SynthdProcess.run(["status", "--config", layout.config, "--json"])
        let machine = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        #expect((machine["daemon"] as? [String: Any])?["state"] as? String == "running", "\(json.output.prefix(400))")
        let entries = try #require(machine["datasets"] as? [[String: Any]])
        #expect(entries.first?["outputsWritten"] as? Int == 18)
        #expect(entries.first?["outputFolder"] as? String == layout.out + "/shapes")
        #expect(status.output.contains("\n  outputs: 18 images in \(layout.out)/shapes, from step-"), "\(status.output)")
        #expect(entries.first?["state"] as? String == "removed")

        // 5. The spool moved away: status says why nothing arrives, until it is back.
        #expect(rename(layout.spool, layout.spool + ".away") == 0)
        func spoolLine() throws -> Bool { try SynthdProcess.run(["status", "--config", layout.config]).output.contains("nothing arrives since ") }
        try Self.waitFor("the missing spool in status", timeout: 15, daemon: daemon) { (try? spoolLine()) == true }
        let away = try SynthdProcess.run(["status", "--config", layout.config, "--json"])
        let awayMachine = try #require(try JSONSerialization.jsonObject(with: Data(away.output.utf8)) as? [String: Any])
        #expect((awayMachine["spoolMissing"] as? String)?.contains("\(layout.spool): the spool folder was removed or moved away") == true,
                "\(away.output.prefix(600))")
        #expect(rename(layout.spool + ".away", layout.spool) == 0)
        try Self.waitFor("the spool back in status", timeout: 15, daemon: daemon) { (try? spoolLine()) == false }

        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0)
        let afterStop = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(afterStop.output.hasPrefix("synthd run is not running on \(layout.state): queued jobs start when it does"), "\(afterStop.output)")
        let stoppedJSON = try SynthdProcess.run(["status", "--config", layout.config, "--json"])
        let stoppedMachine = try #require(try JSONSerialization.jsonObject(with: Data(stoppedJSON.output.utf8)) as? [String: Any])
        #expect((stoppedMachine["daemon"] as? [String: Any])?["state"] as? String == "stopped", "\(stoppedJSON.output.prefix(400))")
        #expect(daemon.log.contains("training a new model"))
        #expect(daemon.log.contains("fine-tuning"))
    }

    @Test func flagsOverrideTheConfigurationFile() throws {
        let layout = Layout(root: try temporaryFolder("flags"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try "[paths]\nspool = \"a\"\noutput = \"b\"\nstate = \"c\"\n".write(toFile: layout.config, atomically: true, encoding: .utf8)
        let daemon = try Daemon(arguments: ["run", "--config", layout.config, "--spool", layout.root + "/s2", "--output", layout.root + "/o2",
                                        "--state", layout.root + "/t2", "--settle-seconds", "1", "--train-minutes", "2"], log: layout.log)
        try Self.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        let running = daemon
        #expect(running.log.contains("spool \(layout.root)/s2, output \(layout.root)/o2, state \(layout.root)/t2"), "\(running.log)")
        for folder in ["s2", "o2", "t2/datasets"] { #expect(FileManager.default.fileExists(atPath: layout.root + "/" + folder)) }
        running.signal(SIGTERM)
        #expect(running.waitForExit(timeout: 10)?.status == 0)
    }

    /// The state folder's lock file removed under a running daemon (with the folder, say) is
    /// taken again within seconds, so that a second daemon is still refused; replaced by a
    /// lock another process holds, it is left to that one and this daemon stops (status 75).
    @Test func aRemovedLockFileIsTakenAgainOrLeftToWhoeverHoldsItNow() throws {
        let layout = Layout(root: try temporaryFolder("relock"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("[watch]\nsettle_seconds = 0.2\n")
        let first = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("start", timeout: 20, daemon: first) { first.log.contains("synthd running") }
        let lock = layout.state + "/synthd.lock"
        try FileManager.default.removeItem(atPath: lock)
        try Self.waitFor("the lock taken again", timeout: 15, daemon: first) { first.log.contains("\(lock) was removed while synthd ran") }
        let refused = try SynthdProcess.run(["run", "--config", layout.config])
        #expect(refused.status == 75, "\(refused.output)")

        // Another process's lock in its place: that process owns the folder now.
        try FileManager.default.removeItem(atPath: lock)
        let fd = open(lock, O_RDWR | O_CREAT, 0o644)
        defer { close(fd) }
        #expect(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
        _ = write(fd, "pid 1: another synthd run\n", 26)
        let exit = first.waitForExit(timeout: 15)
        #expect(exit?.status == 75, "\(first.log)")
        #expect(first.log.contains("\(lock) is locked by pid 1: another synthd run since \(lock) was removed under this daemon"), "\(first.log)")
    }

    /// A lock that cannot be made (here a folder in the lock file's place; a read-only mount
    /// likewise) is not another daemon: it says what failed and exits 1, which systemd retries
    /// a few times, where it claimed that another synthd ran and exited 75 (never retried).
    /// The commands that take a model's lock likewise.
    @Test func aLockThatCannotBeMadeIsNotAnotherOwner() throws {
        let layout = Layout(root: try temporaryFolder("badlock"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("[watch]\nsettle_seconds = 0.2\n")
        try FileManager.default.createDirectory(atPath: layout.state + "/synthd.lock", withIntermediateDirectories: true)
        let refused = try SynthdProcess.run(["run", "--config", layout.config])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("cannot start: \(layout.state)/synthd.lock: failed to open: Is a directory")
                && !refused.output.contains("another synthd"), "\(refused.output)")

        try Self.addImages(layout.root + "/data/circle", count: 2, shade: 60)
        try FileManager.default.createDirectory(atPath: layout.root + "/model/.lock", withIntermediateDirectories: true)
        let train = try SynthdProcess.run(["train", layout.root + "/data", "--state", layout.root + "/model", "--steps", "1"])
        #expect(train.status == 1 && train.output.contains("\(layout.root)/model/.lock: failed to open: Is a directory")
                && !train.output.contains("in use"), "\(train.output)")
    }

    /// One daemon per output folder too: a second one with its own spool and state folder but
    /// the first one's output exits at once (status 75), naming the first; the first goes on,
    /// and takes its lock again when the output folder is removed under it.
    @Test func aSecondDaemonOnTheSameOutputFolderIsRefused() throws {
        let layout = Layout(root: try temporaryFolder("sameout"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("[watch]\nsettle_seconds = 0.2\n")
        let first = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("start", timeout: 20, daemon: first) { first.log.contains("synthd running") }
        try FileManager.default.createDirectory(atPath: layout.root + "/spool2", withIntermediateDirectories: true)
        let second = try SynthdProcess.run(["run", "--config", layout.config, "--spool", layout.root + "/spool2",
                                            "--state", layout.root + "/state2"])
        #expect(second.status == 75, "\(second.output)")
        #expect(second.output.contains("\(layout.out) is the output folder of another synthd (pid \(first.process.processIdentifier): "
            + "synthd run with the state folder \(layout.state))"), "\(second.output)")
        #expect(first.process.isRunning)
        // The output folder removed (`rm -rf out`): its lock is taken again, and a second
        // daemon still refused.
        try FileManager.default.removeItem(atPath: layout.out)
        let lock = layout.out + "/.synthd.lock"
        try Self.waitFor("the output's lock taken again", timeout: 15, daemon: first) {
            first.log.contains("\(lock) was removed while synthd ran (with the output folder?); taken again")
        }
        let again = try SynthdProcess.run(["run", "--config", layout.config, "--spool", layout.root + "/spool2",
                                           "--state", layout.root + "/state2"])
        #expect(again.status == 75 && again.output.contains("is the output folder of another synthd"), "\(again.output)")
        first.signal(SIGTERM)
        #expect(first.waitForExit(timeout: 15)?.status == 0)
        let third = try Daemon(arguments: ["run", "--config", layout.config, "--spool", layout.root + "/spool2",
                                           "--state", layout.root + "/state2"], log: layout.root + "/third.log")
        try Self.waitFor("the output free once the first stopped", timeout: 20, daemon: third) { third.log.contains("synthd running") }
        third.signal(SIGTERM)
        #expect(third.waitForExit(timeout: 15)?.status == 0)
    }

    /// One owner per state folder: a second daemon exits at once (status 75, saying why), and
    /// `synthd train` / `generate` on the model the daemon is training are refused the same way;
    /// the first daemon's work goes on undisturbed.
    @Test func aSecondDaemonAndCommandsOnABusyModelAreRefused() throws {
        let layout = Layout(root: try temporaryFolder("owner"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.2
        [training]
        minutes = 0.25
        checkpoint_seconds = 1
        batch = 8
        [generation]
        policy = "per-class"
        per_class = 4
        class_check = false
        [service]
        threads = 1
        """)
        let first = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("start", timeout: 20, daemon: first) { first.log.contains("synthd running") }

        let second = try SynthdProcess.run(["run", "--config", layout.config])
        #expect(second.status == 75, "\(second.output)")
        #expect(second.output.contains("\(layout.state)/synthd.lock is locked by pid \(first.process.processIdentifier): synthd run"),
                "\(second.output)")
        #expect(second.output.contains("another synthd runs on this state folder"))

        let staging = layout.root + "/staging/shapes"
        try Self.addImages(staging + "/circle", count: 8, shade: 60)
        try Self.addImages(staging + "/square", count: 8, shade: 180)
        rename(staging, layout.spool + "/shapes")
        try Self.waitFor("training", timeout: 30, daemon: first) { layout.phase("shapes") == "training" }
        let model = layout.state + "/datasets/shapes"
        let train = try SynthdProcess.run(["train", layout.spool + "/shapes", "--state", model, "--steps", "1"])
        #expect(train.status == 75, "\(train.output)")
        #expect(train.output.contains("\(model)/.lock is locked by pid \(first.process.processIdentifier): synthd run: train job"),
                "\(train.output)")
        #expect(train.output.contains("is in use: wait for that process to finish, or stop it"))
        let generate = try SynthdProcess.run(["generate", layout.spool + "/shapes", "--state", model, "--out", layout.root + "/cli-out",
                                              "--per-class", "1"])
        #expect(generate.status == 75, "\(generate.output)")

        try Self.waitFor("outputs", timeout: 120, daemon: first) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 8
        }
        try Self.checkPublished(layout, "shapes", classes: ["circle", "square"])
        #expect(!first.log.contains("failed"), "\(first.log)")
        // Status says how many images each class received, and by which rule.
        let status = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(status.output.contains("synthetic per class (per-class: 4 images of every class):\n    circle: 4 (real: 8)\n    square: 4 (real: 8)"),
                "\(status.output)")
        first.signal(SIGTERM)
        #expect(first.waitForExit(timeout: 15)?.status == 0)

        // Once the daemon is gone the model is free again.
        let after = try SynthdProcess.run(["generate", layout.spool + "/shapes", "--state", model, "--out", layout.root + "/cli-out",
                                           "--per-class", "1", "--no-class-check"])
        #expect(after.status == 0, "\(after.output)")
    }

    /// A reload that raises the thread count while a class-checked generation runs (two jobs
    /// at a time): the running job keeps the budget it started with, the next job gets the
    /// new one, and nothing trips (it used to: the judges were counted by one thread count,
    /// the sampling workers by the other).
    @Test func aReloadDuringGenerationAppliesToTheNextJob() throws {
        let layout = Layout(root: try temporaryFolder("reload"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try FileManager.default.createDirectory(atPath: layout.spool, withIntermediateDirectories: true)
        func config(threads: Int) -> String {
            """
            [watch]
            settle_seconds = 0.2
            [training]
            minutes = 0.05
            checkpoint_seconds = 1
            batch = 8
            [generation]
            policy = "per-class"
            per_class = 12000
            [service]
            concurrency = 2
            threads = \(threads)
            """
        }
        try layout.writeConfig(config(threads: 1))
        let daemon = try Daemon(config: layout.config, log: layout.log)
        let staging = layout.root + "/staging/shapes"
        try Self.addImages(staging + "/circle", count: 8, shade: 60)
        try Self.addImages(staging + "/square", count: 8, shade: 180)
        rename(staging, layout.spool + "/shapes")
        try Self.waitFor("generation", timeout: 90, daemon: daemon) { layout.phase("shapes") == "generating" }
        try layout.writeConfig(config(threads: 2))
        daemon.signal(SIGHUP)
        try Self.waitFor("reload", timeout: 10, daemon: daemon) { daemon.log.contains("configuration reloaded") }
        #expect(layout.phase("shapes") == "generating", "the reload came while the generation ran")
        try Self.waitFor("outputs", timeout: 120, daemon: daemon) {
            layout.phase("shapes") == "done" && layout.manifest("shapes").count == 24_000
        }
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0, "\(daemon.log)")
    }

    /// A gzip'd tar of a folder of classes, made by tar(1) and copied into the spool of a
    /// running daemon, comes out as the dataset of its name: unpacked, trained, published, and
    /// shown by `synthd status`; the archive is left where it was.
    @Test func anArchiveDroppedIntoTheSpoolIsUnpackedAndTrained() throws {
        let layout = Layout(root: try temporaryFolder("archive"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.5
        [training]
        minutes = 0.05
        checkpoint_seconds = 1
        [generation]
        policy = "per-class"
        per_class = 3
        """)
        try Self.packShoes(layout, to: layout.root + "/shoes.tar.gz")
        let daemon = try Daemon(config: layout.config, log: layout.log)
        try Self.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        #expect(copyfile(layout.root + "/shoes.tar.gz", layout.spool + "/shoes.tar.gz"))
        try Self.waitFor("the outputs", timeout: 120, daemon: daemon) { layout.generation("shoes") != nil }
        #expect(daemon.log.contains("shoes.tar.gz: unpacked 12 images"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: layout.spool).sorted() == ["shoes", "shoes.tar.gz"])
        try Self.checkPublished(layout, "shoes", classes: ["boot", "sandal"])
        let status = try SynthdProcess.run(["status", "--config", layout.config])
        #expect(status.output.contains("archives dropped into the spool:\n  shoes.tar.gz: unpacked into \(layout.spool)/shoes (12 images"), "\(status.output)")
        let listed = try SynthdProcess.run(["status", "--archives", "--config", layout.config])
        #expect(listed.output.hasPrefix("shoes.tar.gz: unpacked into \(layout.spool)/shoes (12 images"), "\(listed.output)")
        let json = try SynthdProcess.run(["status", "--archives", "--json", "--config", layout.config])
        let records = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: [String: Any]]
        #expect(records?["shoes.tar.gz"]?["state"] as? String == "unpacked" && records?["shoes.tar.gz"]?["files"] as? Int == 12, "\(json.output)")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0)
    }

    /// Copies a file as cp(1) does: the whole file written under its name, then closed.
    func copyfile(_ from: String, _ to: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: from) else { return false }
        return FileManager.default.createFile(atPath: to, contents: data)
    }

    /// A dataset of 200,000 files: its scan runs off the main loop, so the watchdog keeps
    /// being fed while it runs and SIGTERM still ends the daemon with status 0 within 10 s.
    @Test func aHugeDatasetDoesNotStallTheMainLoop() throws {
        let layout = Layout(root: try temporaryFolder("huge"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.1
        """)
        let staging = layout.root + "/staging/huge"
        for name in ["a", "b"] {
            let folder = staging + "/" + name
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for i in 0..<100_000 { close(open("\(folder)/\(i).png", O_CREAT | O_WRONLY, 0o644)) }
        }
        let systemd = try NotifySocket()
        Self.activeNotifySocket = systemd
        defer { Self.activeNotifySocket = nil }
        let daemon = try Daemon(config: layout.config, log: layout.log,
                                environment: ["NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000"])
        try Self.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        rename(staging, layout.spool + "/huge")
        let dropped = Date()
        let before = systemd.received().filter { $0 == "WATCHDOG=1" }.count
        usleep(3_000_000)
        let pings = systemd.received().filter { $0 == "WATCHDOG=1" }.count - before
        let queuedAfter = daemon.log.contains("train job") ? "within" : "after"
        #expect(pings >= 3, "\(pings) watchdog pings in the 3 s after the drop (one due every 0.5 s)")
        daemon.signal(SIGTERM)
        let stopped = try #require(daemon.waitForExit(timeout: 15), "no exit after SIGTERM")
        #expect(stopped.status == 0 && stopped.seconds < 10, "\(stopped)")
        print("200,000-file dataset: SIGTERM \(String(format: "%.1f", Date().timeIntervalSince(dropped))) s after the drop, "
            + "exit in \(String(format: "%.2f", stopped.seconds)) s, \(pings) watchdog pings in the 3 s after the drop; "
            + "its scan ended \(queuedAfter) those 3 s")
    }

    /// At the kernel's limit on inotify watches (5, in a user namespace of the test's own),
    /// synthd starts anyway, says which sysctl to raise, and finds changes in the folders it
    /// could not watch by periodic scans.
    static let userNamespacesLimitWatches =
        (try? ServiceInstallTests.shell("/usr/bin/unshare --user --map-root-user sh -c 'echo 5 > /proc/sys/user/max_inotify_watches'"))?.status == 0

    @Test(.enabled(if: userNamespacesLimitWatches, "no user namespaces here (unshare --user): the watch limit cannot be set for a test"))
    func atTheWatchLimitChangesAreFoundByPeriodicScans() throws {
        let limited = ["/usr/bin/unshare", "--user", "--map-root-user", "/bin/sh", "-c",
                       "echo 5 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\""]
        let layout = Layout(root: try temporaryFolder("watchlimit"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        for i in 0..<10 { try FileManager.default.createDirectory(atPath: layout.spool + "/set\(i)/cat", withIntermediateDirectories: true) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.2
        poll_seconds = 1
        [training]
        minutes = 0.02
        batch = 4
        [generation]
        policy = "per-class"
        per_class = 2
        class_check = false
        """)
        let daemon = try Daemon(arguments: ["run", "--config", layout.config], log: layout.log, wrapper: limited)
        try Self.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        #expect(daemon.log.contains("inotify watch limit reached; raise fs.inotify.max_user_watches"), "\(daemon.log)")
        try Self.addImages(layout.spool + "/set9/cat", count: 4, shade: 80)
        try Self.addImages(layout.spool + "/set9/dog", count: 4, shade: 200)
        try Self.waitFor("outputs of a dataset in unwatched folders", timeout: 120, daemon: daemon) {
            layout.phase("set9") == "done" && layout.manifest("set9").count == 4
        }
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0)
    }
}
