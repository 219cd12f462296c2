import Engine
import Foundation

/// `synthd status --json` on one machine: one object, as a cluster's is (`ClusterStatus`), with
/// what the text says before the datasets (whether a daemon runs, why no job starts, the
/// archives dropped into the spool). It was the datasets' array alone, so a script could not
/// tell "training 45%" from a daemon killed at 45%, nor see jobs held by a full disk.
public struct MachineStatus: Encodable, Sendable {
    public struct DaemonLine: Encodable, Equatable, Sendable {
        /// "running"; "stopped" (a clean stop: queued jobs start when it runs again);
        /// "killed" (it ended without stopping its jobs: each goes on from its last checkpoint
        /// at the next start); "unknown" (no lock file to tell by: a dataset's own state folder,
        /// or no daemon ever ran there).
        public var state: String
        /// A killed daemon's process id, where its lock file still names it.
        public var pid: Int?
        /// The line the text status prints first about it; nil where it prints none.
        public var line: String?

        public init(_ presence: DaemonPresence, stateFolder: String) {
            switch presence {
            case .running: state = "running"
            case .notRunning(let killed?): (state, pid) = ("killed", killed)
            case .notRunning(nil): state = "stopped"
            case .unknown: state = "unknown"
            }
            line = presence.line(stateFolder: stateFolder)
        }
    }

    public var stateFolder: String
    public var daemon: DaemonLine
    /// Why no job starts now (a job failed on a full disk), as the text says it; nil while
    /// jobs may start, and where no daemon runs.
    public var waitingForSpace: String?
    /// Why nothing arrives (the spool folder gone, its file system unmounted), as the text
    /// says it; nil while the spool is there, and where no daemon runs.
    public var spoolMissing: String?
    /// That the last reload's file did not read and the daemon runs with the settings it had
    /// (`ReloadFailure`), as the text says it; nil otherwise, and where no daemon runs.
    public var reloadFailed: String?
    /// Every archive dropped into the spool, by file name, as `archives.json` holds them
    /// (empty where datasets are named, as in the text).
    public var archives: [String: ArchiveRecord]
    public var datasets: [DatasetStatus]

    public init(stateFolder: String, presence: DaemonPresence, waitingForSpace: String?, spoolMissing: String? = nil,
                reloadFailed: String? = nil, archives: [String: ArchiveRecord], datasets: [DatasetStatus]) {
        self.stateFolder = stateFolder
        self.daemon = DaemonLine(presence, stateFolder: stateFolder)
        self.waitingForSpace = presence.isNotRunning ? nil : waitingForSpace
        self.spoolMissing = presence.isNotRunning ? nil : spoolMissing
        self.reloadFailed = presence.isNotRunning ? nil : reloadFailed
        self.archives = archives
        self.datasets = datasets
    }

    /// Pretty-printed, keys sorted, times in ISO 8601 (the archives' records).
    public func encoded() throws -> [UInt8] {
        try RecordJSON.encode(self)
    }
}
