import Engine
import Foundation

/// A training run whose last checkpoint met a full disk waits for space, its model in memory,
/// instead of failing.
///
/// Periodic checkpoints are skipped on a full disk and training goes on
/// (`Trainer.mayTrainPastFailedCheckpoint`), so the last one holds everything since the last
/// checkpoint written: failing there threw away up to a whole budget's training each time a
/// disk filled near a run's end (four times in the full-disk soak). The wait ends when the
/// space is free (the checkpoint is written again); at `limit`, with the failure it was
/// (retried later from the checkpoint on disk); or at a stop (the daemon's, the dataset's
/// removal), as a stop from that checkpoint.
public struct SpaceWait: Sendable {
    /// How long a job waits, from its first failed attempt, before it fails.
    public var limit: TimeInterval = 30 * 60
    /// Seconds between looks at the free space (each look also shows the job alive to the
    /// stall watch, through `waiting`).
    public var pollSeconds: TimeInterval = 5
    /// Free bytes on the file system of a path (`DiskSpace.freeBytes`; a test's own figures).
    public var freeBytes: @Sendable (String) -> Int? = { DiskSpace.freeBytes(at: $0) }

    public init() {}

    /// Waits until `bytes` (with `DiskSpace.check`'s headroom) are free at `path`, or the free
    /// space cannot be read (the write will tell), and `earliest` has come: true. False when
    /// `shouldStop` says so or at `deadline`. `earliest` keeps a write that fails whatever
    /// the free space says (a quota that statvfs does not show) from being tried in a tight
    /// loop. `waiting` hears the free bytes at each look while the job waits.
    func wait(for bytes: Int, at path: String, notBefore earliest: Moment, until deadline: Moment,
              shouldStop: () -> Bool, waiting: (_ free: Int?) -> Void) -> Bool {
        let wanted = DiskSpace.withHeadroom(bytes)
        while true {
            let free = freeBytes(path)
            if Moment.now >= earliest, free.map({ $0 >= wanted }) ?? true { return true }
            waiting(free)
            let next = Moment.now.adding(seconds: pollSeconds)
            // Short sleeps, so that a stop is heard within a quarter of a second.
            while Moment.now < next {
                if shouldStop() || Moment.now >= deadline { return false }
                usleep(UInt32(min(0.25, max(0.001, Moment.now.seconds(to: next))) * 1e6))
            }
        }
    }
}
