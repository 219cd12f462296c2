import Foundation

/// Where the daemon's jobs live: `JobQueue` (`queue.json`, one machine, the default) or the
/// cluster's PostgreSQL (several nodes on one spool). The scheduler sees only this.
///
/// Changes to a job that runs name the job as it was claimed: a store with leases refuses
/// them (`leaseLost`) once the job's lease has passed to another node, so a stale node's late
/// word never overrides the new owner's.
public protocol JobStore: AnyObject {
    /// Queued, running and recently finished jobs, oldest first.
    func snapshot() throws -> [Job]
    /// Queues work unless the same work already waits; returns the waiting job.
    @discardableResult
    func enqueue(_ kind: Job.Kind, dataset: String, now: Date) throws -> Job
    /// Takes the next job to run (generation first, then the oldest; one job per dataset;
    /// none of `busy`'s datasets) and marks it running. `stepAtStart` reads the dataset's
    /// checkpointed training steps (see `Job.stepAtStart`).
    func claim(now: Date, busy: Set<String>, stepAtStart: (String) -> Int) throws -> Job?
    /// Whether some job could start now (time slices end early when one waits).
    func hasWaiting(now: Date, busy: Set<String>) throws -> Bool
    /// How many jobs are queued (for the one-line status).
    func queuedCount() throws -> Int
    /// The dataset's jobs that are queued or running.
    func pending(dataset: String) throws -> [Job]
    /// Whether a job of the dataset is queued or running, or, cancelled, may still be winding
    /// down on a node that holds its lease: whether its output folders may still be written.
    func holdsWork(dataset: String) throws -> Bool
    /// An interrupted job that had made progress: attempts start afresh, with the budget left.
    func resume(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws
    func markDone(_ job: Job) throws
    func markFailed(_ job: Job, error: String) throws
    /// Back to the queue where it stands (the daemon is stopping).
    func pause(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws
    /// Back to the end of the queue (a time slice ended; a failure to retry after `notBefore`).
    func requeue(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?, notBefore: Date?, error: String?) throws
    /// Cancels the dataset's waiting and running jobs. Returns their ids.
    @discardableResult
    func cancel(dataset: String) throws -> [Int]
    /// Forgets finished jobs beyond the newest `keep`.
    func prune(keep: Int) throws
    /// Jobs whose runner died while running them (a kill -9, a lost node), put back in the
    /// queue: the scheduler judges each (resume, or a crash loop). Each is returned once.
    func takeInterrupted() throws -> [Job]
    /// A store that keeps changes in memory when its file cannot be written (`JobQueue`):
    /// writes it again if the last write failed, and returns why it still cannot be.
    func saveIfBehind() -> (any Error)?
}

/// An error by which a job store refuses to change a job that is no longer this node's to
/// change: its lease passed to another node, or the job was cancelled meanwhile (a cluster's
/// database fences both). After a cancellation the refusal is expected: a job that ends
/// while its dataset leaves the spool has nothing left to record.
public protocol JobRefusal: Error {
    /// Whether the store refused because the job is no longer this node's.
    var jobNoLongerHeld: Bool { get }
}

extension JobStore {
    /// A store whose every change is written or refused (a database): never behind.
    public func saveIfBehind() -> (any Error)? { nil }
}
