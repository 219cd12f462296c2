import Daemon
import Foundation

/// What went wrong between a node and the cluster's database, in words a user can act on.
public enum ClusterError: JobRefusal, CustomStringConvertible, Equatable, Sendable {
    /// `[cluster] database` (or `--database`) does not read.
    case badAddress(String, reason: String)
    /// The server cannot be reached, or the connection broke (nothing is lost: the node keeps
    /// its running jobs to their next checkpoint and retries).
    case unreachable(String, reason: String)
    /// The server answered with an error.
    case query(String, reason: String)
    /// The database was migrated by a newer synthd.
    case schemaTooNew(found: Int, known: Int)
    /// The database is at an older version than this synthd reads: its nodes run an older
    /// synthd (only a node migrates; `synthd status` reads).
    case schemaTooOld(found: Int, known: Int)
    /// The node no longer holds the job's lease (it expired and another node may have taken
    /// the job): whatever it was about to write is refused.
    case leaseLost(job: Int, dataset: String, token: Int)

    public var description: String {
        switch self {
        case .badAddress(let address, let reason):
            "[cluster] database \"\(address)\": \(reason)"
        case .unreachable(let address, let reason):
            "the cluster's database \(address) is unreachable: \(reason)"
        case .query(let what, let reason):
            "the cluster's database refused \(what): \(reason)"
        case .schemaTooNew(let found, let known):
            "the cluster's database has schema version \(found), written by a newer synthd; this one knows versions up to \(known): upgrade this node"
        case .schemaTooOld(let found, let known):
            "the cluster's database has schema version \(found), from an older synthd; this one reads version \(known): the first node of this version to start (synthd run) migrates it"
        case .leaseLost(let job, let dataset, let token):
            "job \(job) of \(dataset): this node's lease (token \(token)) was lost; another node may run the job now, so this node writes nothing more for it"
        }
    }

    /// A lease lost: the job is no longer this node's (see `JobRefusal`).
    public var jobNoLongerHeld: Bool {
        if case .leaseLost = self { return true }
        return false
    }

    /// Whether the database could not be reached (as opposed to refusing something).
    public var isUnreachable: Bool {
        if case .unreachable = self { return true }
        return false
    }
}
