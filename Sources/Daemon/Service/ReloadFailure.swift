import Engine
import Foundation

/// A reload (SIGHUP, `systemctl reload synthd`) whose file did not read: the daemon goes on
/// with the settings it had, and only the log said so, while `systemctl reload` itself
/// reports success. On one machine the daemon keeps the failure in its state folder
/// (`reload-failed.json`), where `synthd status` reads it, until a reload reads or the daemon
/// starts again (a start reads the file or stops). A cluster's nodes share the state folder,
/// so a node's failure stays in its log.
public struct ReloadFailure: Equatable, Codable, Sendable {
    /// The configuration's error: every mistake of the file, one line each.
    public let error: String
    public let at: Date

    public init(error: String, at: Date) {
        self.error = error
        self.at = at
    }

    static func path(stateFolder: String) -> String { stateFolder + "/reload-failed.json" }

    /// What `synthd status` says first while the daemon of `stateFolder` runs with the
    /// settings it had before a reload failed; nil when none did (or the record is unreadable).
    public static func statusLine(stateFolder: String) -> String? {
        StateRecordFile.read(ReloadFailure.self, at: path(stateFolder: stateFolder))?.statusText
    }

    public var statusText: String {
        "configuration not reloaded at \(ISO8601DateFormatter().string(from: at)), running with the settings it had before: "
            + error.replacingOccurrences(of: "\n", with: "\n  ") + "\n  (mend the file and reload again)"
    }

    /// Records the failure for `synthd status` (nil: removes it). Best effort, as the log says it too.
    static func record(_ failure: ReloadFailure?, stateFolder: String) {
        StateRecordFile.write(failure, at: path(stateFolder: stateFolder))
    }
}
