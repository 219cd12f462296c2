import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `synthd wait` against a real daemon, as a script uses it: drop an archive, wait, read the
/// outputs; change the dataset, wait again; and the exits that tell a script what went wrong.
@Suite(.serialized) struct WaitCommandTests {
    typealias Layout = DaemonIntegrationTests.Layout

    /// Runs synthd with standard output and error apart (a script reads the path from the first).
    static func wait(_ arguments: [String], timeout: Double = 120) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: SynthdProcess.binary)
        process.arguments = ["wait"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let start = Date()
        try process.run()
        while process.isRunning && Date().timeIntervalSince(start) < timeout { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            // One that ignores SIGTERM fails its test instead of hanging the suite.
            let asked = Date()
            while process.isRunning && Date().timeIntervalSince(asked) < 10 { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        return (process.terminationStatus,
                String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    /// Started with SIGTERM blocked (by a parent spawning from a thread that blocks it, as this
    /// test process's threads do), `synthd wait` still stops on it: it ignored it, and a
    /// supervisor's timeout could not end it.
    @Test func aWaitStartedWithSigtermBlockedStopsOnIt() throws {
        let layout = Layout(root: try temporaryFolder("wait-term"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("")
        try FileManager.default.createDirectory(atPath: layout.spool + "/shoes/boot", withIntermediateDirectories: true)
        // A daemon for the wait to wait on: the state folder's lock, held here.
        try FileManager.default.createDirectory(atPath: layout.state, withIntermediateDirectories: true)
        let lock = open(layout.state + "/synthd.lock", O_CREAT | O_RDWR, 0o644)
        #expect(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0)
        defer { close(lock) }

        var blocked = sigset_t(), before = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &blocked, &before)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: SynthdProcess.binary)
        process.arguments = ["wait", "shoes", "--config", layout.config]
        process.standardError = FileHandle.nullDevice
        let started = Result { try process.run() }
        pthread_sigmask(SIG_SETMASK, &before, nil)
        try started.get()
        usleep(1_500_000)
        #expect(process.isRunning, "it waits: the dataset has not been seen")
        process.terminate()
        let asked = Date()
        while process.isRunning && Date().timeIntervalSince(asked) < 10 { usleep(20_000) }
        let ignored = process.isRunning
        if ignored { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        #expect(!ignored, "SIGTERM was ignored")
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM)
    }

    @Test func aScriptWaitsForTheOutputsOfTheFilesAsTheyAreNow() throws {
        let layout = Layout(root: try temporaryFolder("wait"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.5
        [training]
        minutes = 0.05
        finetune_minutes = 0.05
        checkpoint_seconds = 1
        [generation]
        policy = "per-class"
        per_class = 3
        """)
        try DaemonIntegrationTests.packShoes(layout, to: layout.spool + "/shoes.tar.gz")
        let config = ["--config", layout.config]

        // Nothing would ever change: no daemon has run on this state folder.
        let never = try Self.wait(["shoes"] + config)
        #expect(never.status == 69 && never.out.isEmpty, "\(never)")
        #expect(never.err.contains("synthd run has never run on \(layout.state)"), "\(never.err)")
        let unknown = try Self.wait(["boots"] + config)
        #expect(unknown.status == 66 && unknown.err.contains("no dataset boots in \(layout.spool)"), "\(unknown)")
        #expect(try Self.wait(["shoes", "--timeout", "soon"] + config).status == 64, "a timeout it cannot read is a usage error")
        // A state folder that cannot be listed is said as such, not as one no daemon has run on.
        #expect(FileManager.default.createFile(atPath: layout.root + "/not-a-folder", contents: Data()))
        let other = layout.root + "/other.toml"
        try "[paths]\nspool = \"spool\"\noutput = \"out\"\nstate = \"not-a-folder\"\n".write(toFile: other, atomically: true, encoding: .utf8)
        let unreadable = try Self.wait(["shoes", "--config", other], timeout: 10)
        #expect(unreadable.status == 1 && unreadable.err.contains("\(layout.root)/not-a-folder: cannot read the state folder (Not a directory)"),
                "\(unreadable)")

        let daemon = try DaemonIntegrationTests.Daemon(config: layout.config, log: layout.log)
        try DaemonIntegrationTests.waitFor("start", timeout: 20, daemon: daemon) { daemon.log.contains("synthd running") }
        // The archive is unpacked, trained and generated while the command waits.
        let first = try Self.wait(["shoes", "--timeout", "2m"] + config)
        #expect(first.status == 0, "\(first)\n\(daemon.log)")
        #expect(first.out == layout.out + "/shoes\n", "\(first.out)")
        #expect(first.err.contains("shoes: "), "what it waits for is said on standard error: \(first.err)")
        let generation = try #require(layout.generation("shoes"))
        let trained = try #require(layout.runtime("shoes")["trainedFingerprint"] as? String)
        try DaemonIntegrationTests.checkPublished(layout, "shoes", classes: ["boot", "sandal"])
        #expect(layout.manifest("shoes").count == 6)
        let again = try Self.wait(["shoes", "--quiet"] + config, timeout: 10)
        #expect(again.status == 0 && again.out == first.out && again.err.isEmpty, "ready at once: \(again)")
        // Named by its folder (as shell completion gives it, or by its path): the same dataset.
        // A class folder, or a folder outside the spool, is none (each was waited for for ever).
        for path in ["shoes/", layout.spool + "/shoes", layout.spool + "/./shoes/"] {
            let byPath = try Self.wait([path, "--quiet"] + config, timeout: 10)
            #expect(byPath.status == 0 && byPath.out == first.out, "\(path): \(byPath)")
        }
        for (path, why) in [("shoes/boot", "shoes/boot is a folder inside the dataset shoes (a class?): give the dataset's name, shoes"),
                            ("..", "'..' is not a dataset's name"), (layout.root, "\(layout.root) is not a folder in the spool")] {
            let refused = try Self.wait([path] + config, timeout: 10)
            #expect(refused.status == 66 && refused.err.contains(why) && refused.out.isEmpty, "\(path): \(refused)")
        }

        // Images added: the published outputs are of the files before, and are waited past.
        try DaemonIntegrationTests.addImages(layout.spool + "/shoes/boot", count: 4, shade: 90, from: 6)
        let impatient = try Self.wait(["shoes", "--timeout", "0.2"] + config, timeout: 20)
        #expect(impatient.status == 75 && impatient.out.isEmpty, "\(impatient)")
        #expect(impatient.err.contains("--timeout 0.2 passed; still waiting for: shoes"), "\(impatient.err)")
        // Every dataset in the spool; a folder of notes is none, and is not waited for.
        try FileManager.default.createDirectory(atPath: layout.spool + "/notes", withIntermediateDirectories: true)
        try "to do".write(toFile: layout.spool + "/notes/README", atomically: true, encoding: .utf8)
        let second = try Self.wait([] + config)
        #expect(second.status == 0 && second.out == first.out, "\(second)\n\(daemon.log)")
        #expect(second.err.contains("notes: no images in it; not waited for"), "\(second.err)")
        #expect(layout.generation("shoes") != generation, "a fine-tuned model's generation is published")
        #expect(layout.runtime("shoes")["trainedFingerprint"] as? String != trained, "trained on the new files")

        // The daemon stopped, then the dataset changed: waiting could never end.
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0)
        #expect(try Self.wait(["shoes"] + config, timeout: 10).status == 0, "still ready: no daemon needed")
        try DaemonIntegrationTests.addImages(layout.spool + "/shoes/sandal", count: 2, shade: 10, from: 6)
        let stopped = try Self.wait(["shoes"] + config, timeout: 20)
        #expect(stopped.status == 69 && stopped.err.contains("synthd run is not running on \(layout.state)"), "\(stopped)")
    }
}
