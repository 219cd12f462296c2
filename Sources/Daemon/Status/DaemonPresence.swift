import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a `synthd run` holds a state folder (its `synthd.lock`), for `synthd status`: a
/// daemon killed mid-training left its datasets "training 45%, ETA 3m" for as long as anyone
/// looked. Read from the kernel's table of locks (/proc/locks), never by taking the lock: a
/// probe that took it, even shared and for a moment, could make a daemon starting just then
/// fail to get it, and exit.
public enum DaemonPresence: Equatable, Sendable {
    case running
    /// No daemon holds it; `killedPID`: the one whose line is still in the file, which ended
    /// without letting go (a clean stop empties it): killed, or the machine went down.
    case notRunning(killedPID: Int?)
    /// No lock file (a dataset's own state folder, or a daemon never run there), or the table
    /// of locks cannot be read: nothing said.
    case unknown

    /// Known not to run (stopped, or killed).
    public var isNotRunning: Bool {
        if case .notRunning = self { return true }
        return false
    }

    /// The state folder's lock that `synthd run` holds (`Service`).
    public static let lockName = "synthd.lock"

    /// `locks`: the text of /proc/locks (read when not given).
    public static func of(stateFolder: String, locks given: String? = nil) -> DaemonPresence {
        let path = stateFolder + "/" + lockName
        var file = stat()
        guard lstat(path, &file) == 0, (file.st_mode & S_IFMT) == S_IFREG,
              let locks = given ?? (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) else { return .unknown }
        // The table names a file by its device's major and minor numbers (hex) and its inode.
        let device = UInt64(file.st_dev)
        let major = (device >> 8) & 0xFFF | (device >> 32) & ~0xFFF, minor = device & 0xFF | (device >> 12) & ~0xFF
        let key = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(file.st_ino))
        let held = locks.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            // "1: FLOCK  ADVISORY  WRITE 27088 fe:00:16255829 0 EOF"; waiters ("1: -> FLOCK ...") hold nothing.
            return fields.count >= 6 && fields[1] == "FLOCK" && fields[5] == key
        }
        if held { return .running }
        let line = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let pid = line.hasPrefix("pid ") ? Int(line.dropFirst(4).prefix { $0.isNumber }) : nil
        return .notRunning(killedPID: pid)
    }

    /// The line `synthd status` prints first where no daemon runs; nil otherwise.
    public func line(stateFolder: String) -> String? {
        switch self {
        case .running, .unknown: return nil
        case .notRunning(let pid?):
            return "synthd run (pid \(pid)) is not running: it ended without stopping its jobs (killed, or the machine went down); "
                + "each goes on from its last checkpoint when synthd run starts again"
        case .notRunning(nil):
            return "synthd run is not running on \(stateFolder): queued jobs start when it does"
        }
    }
}

extension DatasetStatus {
    /// As shown while no daemon runs: a job that was training or generating is "interrupted"
    /// (its ETA gone), not still under way.
    public func withoutItsDaemon() -> DatasetStatus {
        guard let state, isComputing(state) else { return self }
        var status = self
        status.state = "interrupted"
        status.eta = nil
        status.detail = "was \(state)" + (detail.map { ": " + $0 } ?? "") + "; synthd run is not running"
        return status
    }
}
