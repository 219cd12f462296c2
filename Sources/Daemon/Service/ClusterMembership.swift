import Foundation

/// What a daemon does besides the single machine's loop when it is one node of several that
/// share a spool (the `Cluster` module provides it; a single machine has none).
///
/// The node's jobs hold leases: the membership renews them on a thread of its own, tells a
/// worker to stop when its job's lease is lost or the job was cancelled by another node, and
/// refuses a worker's writes once the node can no longer be sure it still holds the lease.
public protocol ClusterMembership: AnyObject, Sendable {
    /// This node's name in the cluster.
    var node: String { get }
    /// The cluster's queue.
    var jobs: any JobStore { get }
    /// The datasets' records, shared by the nodes.
    var runtime: any SharedRuntime { get }
    /// Whether the database answered the node's last heartbeat.
    var databaseAnswers: Bool { get }
    /// Whether the node may claim jobs now: the database answers and the node is not draining.
    var takesJobs: Bool { get }
    /// Draining (`synthd drain`, SIGUSR1): running slices end, their jobs go back, none are taken.
    var isDraining: Bool { get }
    /// Drains this node (SIGUSR1).
    func drain()
    /// Whether this node should fingerprint the settled dataset (one node per change).
    func mayScan(_ dataset: String) -> Bool
    /// The node runs `job` from now on: its lease is renewed until `ended`.
    func started(_ job: Job)
    /// The job's worker has ended: its lease is no longer renewed. Called before the job's end
    /// is recorded (done, failed, back in the queue), which ends the lease in the database.
    func ended(_ job: Job)
    /// Why the job's worker should stop now, if it should (its lease was lost or the job was
    /// cancelled, or renewals fail: it stops at its next checkpoint).
    func stopReason(_ job: Job) -> ClusterStop?
    /// Throws unless the node may still write the job's state folder and outputs.
    func checkWrite(_ job: Job) throws
    /// The node starts no job until space is freed (`SpaceHold.statusText`; nil: it does again),
    /// said with its heartbeats for `synthd status`.
    func waitingForSpace(_ text: String?)
    /// The node hears nothing from its spool (`SpoolAbsence.statusText`; nil: it is back),
    /// said with its heartbeats for `synthd status`.
    func spoolMissing(_ text: String?)
    /// The node's last reload did not read (`ReloadFailure.statusText`; nil: it did, or none
    /// was asked), said with its heartbeats for `synthd status`: the nodes share the state
    /// folder, where the single machine keeps it.
    func reloadFailed(_ text: String?)
    /// The node stops (its jobs are back in the queue).
    func leave()
}

/// Why a cluster node stops a job it runs.
public enum ClusterStop: Equatable, Sendable {
    /// Another node cancelled it (the dataset left the spool).
    case cancelled
    /// The lease passed to another node: write nothing more.
    case leaseLost
    /// The database does not answer: stop at the next checkpoint, before the lease runs out.
    case databaseLost
}
