@testable import Daemon
import Engine
import Foundation
import Testing

/// `synthd status` tells a daemon that holds its state folder from one that stopped or was
/// killed, by the kernel's table of locks, without taking the lock.
@Suite final class DaemonPresenceTests {
    let root = NSTemporaryDirectory() + "synthd-presence-\(UUID().uuidString)"
    init() throws { try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: root) }

    @Test func heldStoppedAndKilledAreTold() throws {
        #expect(DaemonPresence.of(stateFolder: root) == .unknown, "no lock file: not a daemon's folder")
        let path = root + "/" + DaemonPresence.lockName
        var lock: FileLock? = try FileLock(path, holder: "synthd run")
        #expect(DaemonPresence.of(stateFolder: root) == .running)
        #expect(DaemonPresence.running.line(stateFolder: root) == nil)
        lock?.release()
        lock = nil
        #expect(DaemonPresence.of(stateFolder: root) == .notRunning(killedPID: nil), "a clean stop empties the file")
        try "pid 4242: synthd run\n".write(toFile: path, atomically: false, encoding: .utf8)
        let killed = DaemonPresence.of(stateFolder: root)
        #expect(killed == .notRunning(killedPID: 4242), "its line left: it ended without letting go")
        #expect(killed.line(stateFolder: root)?.hasPrefix("synthd run (pid 4242) is not running: it ended without stopping its jobs") == true)
        #expect(DaemonPresence.of(stateFolder: root, locks: "") == .notRunning(killedPID: 4242))
        #expect(DaemonPresence.of(stateFolder: root + "/missing") == .unknown)
    }

    /// `status --json` on one machine is one object that says first what the text says first:
    /// whether a daemon runs (and a killed one's pid), and why no job starts.
    @Test func theMachinesJSONSaysWhetherItsDaemonRunsAndWhyNoJobStarts() throws {
        func object(_ presence: DaemonPresence, space: String? = "no job starts: a full disk") throws -> [String: Any] {
            let archive = ArchiveRecord(size: 10, modified: 1, state: .unpacked, dataset: "pets",
                                        updatedAt: Date(timeIntervalSince1970: 1_800_000_000))
            let machine = MachineStatus(stateFolder: root, presence: presence, waitingForSpace: space,
                                        spoolMissing: space.map { _ in "nothing arrives: the spool was removed" },
                                        archives: ["pets.zip": archive], datasets: [])
            return try #require(try JSONSerialization.jsonObject(with: Data(machine.encoded())) as? [String: Any])
        }
        func daemon(_ object: [String: Any]) -> [String: Any] { object["daemon"] as? [String: Any] ?? [:] }

        let running = try object(.running)
        #expect(daemon(running)["state"] as? String == "running" && daemon(running)["line"] == nil)
        #expect(running["waitingForSpace"] as? String == "no job starts: a full disk")
        #expect(running["spoolMissing"] as? String == "nothing arrives: the spool was removed")
        #expect(running["stateFolder"] as? String == root && (running["datasets"] as? [Any])?.isEmpty == true)
        let archive = (running["archives"] as? [String: [String: Any]])?["pets.zip"]
        #expect(archive?["dataset"] as? String == "pets" && archive?["updatedAt"] as? String == "2027-01-15T08:00:00Z",
                "times as ISO 8601, as archives.json writes them: \(String(describing: archive))")

        let killed = try object(.notRunning(killedPID: 4242))
        #expect(daemon(killed)["state"] as? String == "killed" && daemon(killed)["pid"] as? Int == 4242)
        #expect((daemon(killed)["line"] as? String)?.hasPrefix("synthd run (pid 4242) is not running") == true)
        #expect(killed["waitingForSpace"] == nil, "no daemon: nothing holds the jobs, as the text says")
        #expect(killed["spoolMissing"] == nil, "no daemon: nothing waits for the spool")
        let stopped = try object(.notRunning(killedPID: nil))
        #expect(daemon(stopped)["state"] as? String == "stopped" && daemon(stopped)["pid"] == nil)
        #expect(daemon(try object(.unknown, space: nil))["state"] as? String == "unknown")
    }

    /// Without its daemon a job that was training shows as interrupted, ETA gone; others as they are.
    @Test func aJobUnderWayIsInterruptedWithoutItsDaemon() throws {
        var status = try JSONDecoder().decode(DatasetStatus.self, from: Data("""
            {"dataset": "pets", "stateFolder": "/s/pets", "state": "training", "detail": "new dataset", "progress": 0.45,
             "eta": "2026-12-04T18:00:00Z", "classes": [], "mode": "grey", "imageWidth": 28, "imageHeight": 28, "steps": 10,
             "checkpoint": "", "imagesAtLastRun": 6, "samples": "/s/pets/samples.png"}
            """.utf8))
        let interrupted = status.withoutItsDaemon()
        #expect(interrupted.state == "interrupted" && interrupted.eta == nil && interrupted.progress == 0.45)
        #expect(interrupted.detail == "was training: new dataset; synthd run is not running")
        #expect(interrupted.summary().hasPrefix("pets: interrupted (was training: new dataset; synthd run is not running)"),
                "\(interrupted.summary())")
        status.state = "done"
        #expect(status.withoutItsDaemon() == status)
    }
}
