import Engine
import Foundation

/// A reload (SIGHUP, `systemctl reload synthd`) whose file did not read: the daemon goes on
/// with the settings it had, and only the log said so, while `systemctl reload` itself
/// reports success. On one machine the daemon keeps the failure in its state folder
/// (`reload-failed.json`), where `synthd status` reads it, until a reload reads or the daemon
/// starts again (a start reads the file or stops). A cluster's nodes share the state folder,
/// so there a node's heartbeat carries its failure (`ClusterMembership.reloadFailed`).
public struct ReloadFailure: Equatable, StatusRecord, Sendable {
    /// The configuration's error: every mistake of the file, one line each.
    public let error: String
    public let at: Date

    public init(error: String, at: Date) {
        self.error = error
        self.at = at
    }

    public static let fileName = "reload-failed.json"

    public var statusText: String {
        "configuration not reloaded at \(ISO8601DateFormatter().string(from: at)), running with the settings it had before: "
            + error.replacingOccurrences(of: "\n", with: "\n  ") + "\n  (mend the file and reload again)"
    }
}
