import Engine
import Foundation

/// After a job failed on a full disk, no job starts until space is freed on that file system
/// or the failed job's retry time comes.
///
/// Each queued job used to start in turn and fail the same way: one error line per dataset
/// (fifteen in a minute of the soak's full disk), and a training job lost the minutes it ran
/// before its first checkpoint could not be written. The hold is this node's own (another
/// node has disks of its own); the jobs stay queued, in their order. On one machine the
/// daemon keeps it in its state folder (`space-hold.json`), where `synthd status` reads it.
public struct SpaceHold: Equatable, Codable, Sendable {
    /// The folder (the state folder or the output) whose file system was full.
    public let folder: String
    /// Free bytes there at the failure; nil when they could not be read.
    public let freeBytesAtFailure: Int?
    /// When to try again anyway: the failed job's own retry time.
    public let until: Date

    public init(folder: String, freeBytesAtFailure: Int?, until: Date) {
        self.folder = folder
        self.freeBytesAtFailure = freeBytesAtFailure
        self.until = until
    }

    /// Space freed since a failure, beyond which jobs are tried again (a job that still does
    /// not fit fails at once on its free-space check, so a small gain costs little).
    static let freedEnough = 64 << 20

    /// Whether jobs still wait at `now`, with `free` bytes free on the folder's file system.
    func holds(now: Date, free: Int?) -> Bool {
        guard now < until else { return false }
        guard let before = freeBytesAtFailure, let free else { return true }
        return free < before + Self.freedEnough
    }

    /// Where a daemon on one machine keeps its hold (a cluster's nodes each hold their own).
    static func path(stateFolder: String) -> String { stateFolder + "/space-hold.json" }

    /// What `synthd status` says first while the daemon of `stateFolder` holds its jobs; nil
    /// when it holds none (or the record is unreadable: the log says it too).
    public static func statusLine(stateFolder: String, now: Date = Date()) -> String? {
        guard let hold = StateRecordFile.read(SpaceHold.self, at: path(stateFolder: stateFolder)), now < hold.until else { return nil }
        return hold.statusText
    }

    /// What the hold means, for `synthd status` (a cluster's shows it under its node).
    public var statusText: String {
        let enough = freeBytesAtFailure.map { " when \(DiskSpace.megabytes($0 + Self.freedEnough)) are free there, or" } ?? ""
        return "no job starts: a job failed on a full disk (the file system of \(folder)); they start again\(enough) "
            + "at \(ISO8601DateFormatter().string(from: until)) (the daemon's log names the job and the file)"
    }

    /// Records the hold for `synthd status` (nil: removes it). Best effort: on the full file
    /// system itself the record may not be written, and the log's warning is what says it.
    static func record(_ hold: SpaceHold?, stateFolder: String) {
        StateRecordFile.write(hold, at: path(stateFolder: stateFolder))
    }
}
