import Engine
import Foundation

/// While the spool folder is gone (removed, moved away) or its file system unmounted, nothing
/// arrives: the daemon keeps its datasets as they are and waits for the spool to be back.
/// Only the log said so, and `synthd status` showed datasets idle as if nothing were amiss.
/// On one machine the daemon now keeps the absence in its state folder
/// (`spool-missing.json`), where `synthd status` reads it, until the spool is back; a
/// cluster's node says it with its heartbeat, shown under the node.
public struct SpoolAbsence: Equatable, Codable, Sendable {
    /// The watcher's words: what became of the spool, and what the daemon waits for.
    public let reason: String
    public let since: Date

    public init(reason: String, since: Date) {
        self.reason = reason
        self.since = since
    }

    static func path(stateFolder: String) -> String { stateFolder + "/spool-missing.json" }

    /// What `synthd status` says first while the daemon of `stateFolder` waits for its spool;
    /// nil while the spool is there (or the record is unreadable).
    public static func statusLine(stateFolder: String) -> String? {
        StateRecordFile.read(SpoolAbsence.self, at: path(stateFolder: stateFolder))?.statusText
    }

    /// What the absence means, for `synthd status` (a cluster's shows it under its node).
    public var statusText: String {
        "nothing arrives since \(ISO8601DateFormatter().string(from: since)): \(reason)"
    }

    /// Records the absence for `synthd status` (nil: removes it). Best effort, as the log's
    /// warning says it too.
    static func record(_ absence: SpoolAbsence?, stateFolder: String) {
        StateRecordFile.write(absence, at: path(stateFolder: stateFolder))
    }
}
