import Foundation

/// After a job failed on a full disk, no job starts until space is freed on that file system
/// or the failed job's retry time comes.
///
/// Each queued job used to start in turn and fail the same way: one error line per dataset
/// (fifteen in a minute of the soak's full disk), and a training job lost the minutes it ran
/// before its first checkpoint could not be written. The hold is this node's own (another
/// node has disks of its own); the jobs stay queued, in their order.
struct SpaceHold: Equatable {
    /// The folder (the state folder or the output) whose file system was full.
    let folder: String
    /// Free bytes there at the failure; nil when they could not be read.
    let freeBytesAtFailure: Int?
    /// When to try again anyway: the failed job's own retry time.
    let until: Date

    /// Space freed since a failure, beyond which jobs are tried again (a job that still does
    /// not fit fails at once on its free-space check, so a small gain costs little).
    static let freedEnough = 64 << 20

    /// Whether jobs still wait at `now`, with `free` bytes free on the folder's file system.
    func holds(now: Date, free: Int?) -> Bool {
        guard now < until else { return false }
        guard let before = freeBytesAtFailure, let free else { return true }
        return free < before + Self.freedEnough
    }
}
