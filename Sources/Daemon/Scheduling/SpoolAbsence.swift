import Engine
import Foundation

/// While the spool folder is gone (removed, moved away) or its file system unmounted, nothing
/// arrives: the daemon keeps its datasets as they are and waits for the spool to be back.
/// Only the log said so, and `synthd status` showed datasets idle as if nothing were amiss.
/// On one machine the daemon now keeps the absence in its state folder
/// (`spool-missing.json`), where `synthd status` reads it, until the spool is back; a
/// cluster's node says it with its heartbeat, shown under the node.
public struct SpoolAbsence: Equatable, StatusRecord, Sendable {
    /// The watcher's words: what became of the spool, and what the daemon waits for.
    public let reason: String
    public let since: Date

    public init(reason: String, since: Date) {
        self.reason = reason
        self.since = since
    }

    public static let fileName = "spool-missing.json"

    /// What the absence means, for `synthd status` (a cluster's shows it under its node).
    public var statusText: String {
        "nothing arrives since \(ISO8601DateFormatter().string(from: since)): \(reason)"
    }
}
