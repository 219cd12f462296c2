import Daemon
import Foundation
import PostgresNIO

/// The job queue of a cluster: `synthd_jobs` in PostgreSQL, shared by every node.
///
/// A node claims a job with `SELECT ... FOR UPDATE SKIP LOCKED` (nodes that claim at the same
/// moment take different jobs, nobody waits) and gets a lease with a fencing token from one
/// sequence, so that a later claim always has a larger token. While the job runs, its node
/// renews the lease (`renew`); a node that dies stops renewing, and once the lease has expired
/// by the database's clock any node takes the job back into the queue (`takeInterrupted`) and
/// the scheduler resumes it from the dataset's last checkpoint. Every change to a running job
/// names its token and is refused (`ClusterError.leaseLost`) when the token is no longer the
/// job's: a node that lost its lease cannot finish, requeue or publish what is now another's.
///
/// One job per dataset holds a live lease at a time (the claim skips datasets with one, and a
/// unique index on running jobs makes two simultaneous claims collide), which is what keeps
/// each dataset's state folder to one writer.
public final class ClusterQueue: JobStore {
    public let database: ClusterDatabase
    /// This node's name (the lease holder recorded with each job it runs).
    public let node: String
    /// How long a lease lasts without renewal; the node renews it every quarter of that.
    public let leaseSeconds: Double
    /// A GPU node takes training jobs first (they gain the most from it) and leaves generation,
    /// which is short, to the others; a CPU node takes generation first (see `JobQueue.next`).
    public let prefersTraining: Bool

    public init(database: ClusterDatabase, node: String, leaseSeconds: Double = 30, prefersTraining: Bool = false) {
        self.database = database
        self.node = node
        self.leaseSeconds = leaseSeconds
        self.prefersTraining = prefersTraining
    }

    static let columns = "id, dataset, kind, state, enqueued_at, attempts, last_error, remaining_seconds, budget_seconds, "
        + "not_before, step_at_start, node, lease_token"

    static func job(_ row: PostgresRow) throws -> Job {
        let r = row.makeRandomAccess()
        do {
            return Job(id: try r["id"].decode(Int.self), dataset: try r["dataset"].decode(String.self),
                       kind: Job.Kind(rawValue: try r["kind"].decode(String.self)) ?? .train,
                       state: Job.State(rawValue: try r["state"].decode(String.self)) ?? .failed,
                       enqueuedAt: try r["enqueued_at"].decode(Date.self), attempts: try r["attempts"].decode(Int.self),
                       lastError: try r["last_error"].decode(String?.self),
                       remainingSeconds: try r["remaining_seconds"].decode(Double?.self),
                       budgetSeconds: try r["budget_seconds"].decode(Double?.self),
                       notBefore: try r["not_before"].decode(Date?.self), stepAtStart: try r["step_at_start"].decode(Int?.self),
                       node: try r["node"].decode(String?.self), leaseToken: try r["lease_token"].decode(Int?.self))
        } catch {
            throw ClusterError.query("reading a job", reason: "unexpected row: \(error)")
        }
    }

    // MARK: JobStore

    /// Queued and running jobs, and those finished in the last day, in queue order.
    public func snapshot() throws -> [Job] {
        try database.query("""
            SELECT \(unescaped: Self.columns) FROM synthd_jobs
            WHERE state IN ('queued', 'running') OR finished_at > now() - interval '1 day'
            ORDER BY position LIMIT 1000
            """, "listing jobs").rows.map(Self.job)
    }

    @discardableResult
    public func enqueue(_ kind: Job.Kind, dataset: String, now: Date = Date()) throws -> Job {
        try database.transaction { t in
            let inserted = try t.query("""
                INSERT INTO synthd_jobs (dataset, kind, state) VALUES (\(dataset), \(kind.rawValue), 'queued')
                ON CONFLICT (dataset, kind) WHERE state = 'queued' DO NOTHING
                RETURNING \(unescaped: Self.columns)
                """, "queueing a \(kind.rawValue) job of \(dataset)").rows.map(Self.job)
            if let job = inserted.first {
                try record(t, job, "queued")
                return job
            }
            let waiting = try t.query("""
                SELECT \(unescaped: Self.columns) FROM synthd_jobs WHERE dataset = \(dataset) AND kind = \(kind.rawValue) AND state = 'queued'
                """, "finding the waiting job").rows.map(Self.job)
            guard let job = waiting.first else { throw ClusterError.query("queueing a job of \(dataset)", reason: "neither queued nor waiting") }
            return job
        }
    }

    /// The conditions under which a queued job may start: its retry time has come, and no job
    /// of its dataset holds a live lease (running, or cancelled and still winding down).
    static let startable = """
        j.state = 'queued' AND (j.not_before IS NULL OR j.not_before <= now())
        AND NOT EXISTS (SELECT 1 FROM synthd_jobs r WHERE r.dataset = j.dataset
                        AND (r.state = 'running' OR r.lease_expires_at > now()))
        """

    public func claim(now: Date = Date(), busy: Set<String> = [], stepAtStart: (String) -> Int) throws -> Job? {
        do {
            return try database.transaction { t -> Job? in
                let candidates = try t.query("""
                    SELECT j.id, j.dataset FROM synthd_jobs j
                    WHERE \(unescaped: Self.startable) AND NOT (j.dataset = ANY(\(Array(busy))))
                    ORDER BY (j.kind = \(prefersTraining ? "train" : "generate")) DESC, j.position
                    LIMIT 1 FOR UPDATE SKIP LOCKED
                    """, "looking for a job to run")
                guard let row = candidates.rows.first else { return nil }
                let (id, dataset) = try row.decode((Int, String).self)
                let step = stepAtStart(dataset)
                let claimed = try t.query("""
                    UPDATE synthd_jobs SET state = 'running', attempts = attempts + 1, node = \(node),
                        lease_token = nextval('synthd_fencing_tokens'),
                        lease_expires_at = now() + make_interval(secs => \(leaseSeconds)), step_at_start = \(step)
                    WHERE id = \(id) RETURNING \(unescaped: Self.columns)
                    """, "claiming job \(id) of \(dataset)").rows.map(Self.job)
                guard let job = claimed.first else { return nil }
                try record(t, job, "claimed", detail: "attempt \(job.attempts), checkpointed step \(step)")
                return job
            }
        } catch let error as ClusterError where ClusterDatabase.isUniqueViolation(error) {
            // Another node claimed a job of the same dataset at the same moment: it has it.
            return nil
        }
    }

    public func hasWaiting(now: Date = Date(), busy: Set<String> = []) throws -> Bool {
        try database.query("""
            SELECT EXISTS (SELECT 1 FROM synthd_jobs j WHERE \(unescaped: Self.startable) AND NOT (j.dataset = ANY(\(Array(busy)))))
            """, "looking for waiting jobs").rows.first?.decode(Bool.self) ?? false
    }

    public func queuedCount() throws -> Int {
        try database.query("SELECT count(*) FROM synthd_jobs WHERE state = 'queued'", "counting queued jobs").rows.first?.decode(Int.self) ?? 0
    }

    public func holdsWork(dataset: String) throws -> Bool {
        try database.query("""
            SELECT EXISTS (SELECT 1 FROM synthd_jobs WHERE dataset = \(dataset)
                           AND (state IN ('queued', 'running') OR lease_expires_at > now()))
            """, "looking for the jobs of \(dataset)").rows.first?.decode(Bool.self) ?? true
    }

    public func pending(dataset: String) throws -> [Job] {
        try database.query("""
            SELECT \(unescaped: Self.columns) FROM synthd_jobs WHERE dataset = \(dataset) AND state IN ('queued', 'running') ORDER BY position
            """, "listing the jobs of \(dataset)").rows.map(Self.job)
    }

    public func resume(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws {
        try change(job, "resumed", """
            attempts = 0, remaining_seconds = coalesce(\(remainingSeconds), remaining_seconds),
            budget_seconds = coalesce(\(budgetSeconds), budget_seconds)
            """)
    }

    public func markDone(_ job: Job) throws {
        try change(job, "done", "state = 'done', last_error = NULL, finished_at = now(), lease_expires_at = NULL")
    }

    public func markFailed(_ job: Job, error: String) throws {
        try change(job, "failed", "state = 'failed', last_error = \(error), finished_at = now(), lease_expires_at = NULL", detail: error)
    }

    public func pause(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws {
        try backToQueue(job, "paused", toEnd: false, remainingSeconds: remainingSeconds, budgetSeconds: budgetSeconds,
                        notBefore: nil, error: nil)
    }

    public func requeue(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?, notBefore: Date?, error: String?) throws {
        try backToQueue(job, error == nil ? "requeued" : "retry", toEnd: true, remainingSeconds: remainingSeconds,
                        budgetSeconds: budgetSeconds, notBefore: notBefore, error: error)
    }

    /// The dataset's waiting and running jobs become cancelled. A running job keeps its lease
    /// until its node sees the cancellation (at its next renewal) and stops, so that nothing
    /// else starts on the dataset's state folder meanwhile.
    @discardableResult
    public func cancel(dataset: String) throws -> [Int] {
        try database.transaction { t in
            let jobs = try t.query("""
                UPDATE synthd_jobs SET state = 'cancelled', finished_at = now()
                WHERE dataset = \(dataset) AND state IN ('queued', 'running') RETURNING \(unescaped: Self.columns)
                """, "cancelling the jobs of \(dataset)").rows.map(Self.job)
            for job in jobs { try record(t, job, "cancelled", detail: "the dataset left the spool") }
            return jobs.map(\.id)
        }
    }

    /// Forgets finished jobs beyond the newest `keep`, history older than 30 days, and the rows
    /// that lapsed scan claims left without a record (a dataset that left the spool before its
    /// first record: nothing lists them, and they stayed for ever). A row being claimed or
    /// recorded is locked (`ClusterRuntime.lockRow`): the delete waits for it, then skips it.
    public func prune(keep: Int = 200) throws {
        try database.transaction { t in
            try t.query("DELETE FROM synthd_datasets WHERE runtime = '{}' AND (scan_until IS NULL OR scan_until < now())",
                        "pruning lapsed scan claims")
            try t.query("""
                DELETE FROM synthd_jobs WHERE state IN ('done', 'failed', 'cancelled') AND (lease_expires_at IS NULL OR lease_expires_at < now())
                AND id NOT IN (SELECT id FROM synthd_jobs WHERE state IN ('done', 'failed', 'cancelled') ORDER BY id DESC LIMIT \(keep))
                """, "pruning finished jobs")
            try t.query("DELETE FROM synthd_job_history WHERE at < now() - interval '30 days'", "pruning the job history")
        }
    }

    /// Running jobs whose lease expired (their node died, hung or lost the database for
    /// longer than a lease), put back in the queue where they stood (queued: no token), with
    /// the node that lost them in `node`. Where the same work was queued again meanwhile, the
    /// expired job is cancelled in its favour.
    public func takeInterrupted() throws -> [Job] {
        try database.transaction { t in
            let expired = try t.query("""
                SELECT \(unescaped: Self.columns) FROM synthd_jobs
                WHERE state = 'running' AND lease_expires_at < now() FOR UPDATE SKIP LOCKED
                """, "looking for expired leases").rows.map(Self.job)
            var interrupted: [Job] = []
            for job in expired {
                let lost = "lease of \(job.node ?? "?") (token \(job.leaseToken ?? 0)) expired; taken back by \(node)"
                let duplicate = try t.query("""
                    SELECT id FROM synthd_jobs WHERE dataset = \(job.dataset) AND kind = \(job.kind.rawValue) AND state = 'queued'
                    """, "looking for the same work queued").rows.first?.decode(Int.self)
                if let duplicate {
                    try t.query("""
                        UPDATE synthd_jobs SET state = 'cancelled', finished_at = now(), lease_expires_at = NULL WHERE id = \(job.id)
                        """, "cancelling expired job \(job.id)")
                    try record(t, job, "lease expired", detail: lost + "; superseded by job \(duplicate)")
                    continue
                }
                try t.query("""
                    UPDATE synthd_jobs SET state = 'queued', node = NULL, lease_token = NULL, lease_expires_at = NULL WHERE id = \(job.id)
                    """, "taking back job \(job.id)")
                try record(t, job, "lease expired", detail: lost)
                var queued = job
                queued.state = .queued
                queued.leaseToken = nil
                interrupted.append(queued)
            }
            return interrupted
        }
    }

    // MARK: Leases

    public enum LeaseState: Equatable, Sendable {
        /// Renewed: the node goes on.
        case held
        /// The job was cancelled (its dataset left the spool): stop, keep nothing running.
        case cancelled
        /// Another node may have the job now: stop writing at once.
        case lost
    }

    /// Extends the lease of a job this node runs by `leaseSeconds` from now (the database's now).
    public func renew(_ job: Job) throws -> LeaseState {
        guard let token = job.leaseToken else { return .lost }
        let rows = try database.query("""
            UPDATE synthd_jobs SET lease_expires_at = now() + make_interval(secs => \(leaseSeconds))
            WHERE id = \(job.id) AND lease_token = \(token) AND state IN ('running', 'cancelled')
            RETURNING state
            """, "renewing the lease of job \(job.id)").rows
        guard let state = try rows.first?.decode(String.self) else { return .lost }
        return state == "running" ? .held : .cancelled
    }

    /// Ends the lease of a cancelled job whose node has stopped it (its dataset may start again).
    public func release(_ job: Job) throws {
        guard let token = job.leaseToken else { return }
        try database.query("""
            UPDATE synthd_jobs SET lease_expires_at = NULL WHERE id = \(job.id) AND lease_token = \(token)
            """, "releasing the lease of job \(job.id)")
    }

    // MARK: Private

    /// Applies `assignments` to the job if this node may still change it: a job claimed with
    /// a token only while it runs under that token, a queued job (no token) only while queued.
    private func change(_ job: Job, _ event: String, _ assignments: PostgresQuery, detail: String? = nil) throws {
        try database.transaction { t in
            var query = assignments
            query.sql = "UPDATE synthd_jobs SET " + query.sql
            query.sql += " WHERE id = $\(query.binds.count + 1) AND " + (job.leaseToken == nil
                ? "state = 'queued'" : "state = 'running' AND lease_token = $\(query.binds.count + 2)")
            query.binds.append(job.id)
            if let token = job.leaseToken { query.binds.append(token) }
            query.sql += " RETURNING id"
            guard try !t.query(query, "\(event) of job \(job.id)").rows.isEmpty else {
                throw ClusterError.leaseLost(job: job.id, dataset: job.dataset, token: job.leaseToken ?? 0)
            }
            try record(t, job, event, detail: detail)
        }
    }

    private func backToQueue(_ job: Job, _ event: String, toEnd: Bool, remainingSeconds: Double?, budgetSeconds: Double?,
                             notBefore: Date?, error: String?) throws {
        // The same work queued meanwhile (files changed while it ran) covers this job.
        if let waiting = try pending(dataset: job.dataset).first(where: { $0.kind == job.kind && $0.state == .queued && $0.id != job.id }) {
            try change(job, "superseded", "state = 'cancelled', finished_at = now(), lease_expires_at = NULL",
                       detail: "job \(waiting.id) covers it")
            return
        }
        let position: PostgresQuery = toEnd ? "position = nextval('synthd_queue_positions'), " : ""
        // The wait on the database's clock, as leases are: a node whose clock is hours off
        // would otherwise retry at once, or hours late. (NULL stays NULL.)
        let wait = notBefore.map { max(0, $0.timeIntervalSinceNow) }
        var assignments: PostgresQuery = """
            state = 'queued', node = NULL, lease_token = NULL, lease_expires_at = NULL,
            not_before = now() + make_interval(secs => \(wait)),
            last_error = \(error), remaining_seconds = coalesce(\(remainingSeconds), remaining_seconds),
            budget_seconds = coalesce(\(budgetSeconds), budget_seconds)
            """
        assignments.sql = position.sql + assignments.sql
        if error == nil { assignments.sql += ", attempts = 0" }  // a time slice is not a failed attempt
        try change(job, event, assignments, detail: error)
    }

    private func record(_ t: ClusterDatabase.Transaction, _ job: Job, _ event: String, detail: String? = nil) throws {
        try t.query("""
            INSERT INTO synthd_job_history (job, dataset, node, event, token, detail)
            VALUES (\(job.id), \(job.dataset), \(node), \(event), \(job.leaseToken), \(detail))
            """, "recording the job history")
    }
}
