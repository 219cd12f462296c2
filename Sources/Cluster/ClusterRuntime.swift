import Daemon
import Foundation
import PostgresNIO

/// Every dataset's runtime record (what `synthd status` shows, and what the scheduler decides
/// from: fingerprints, quarantine) in `synthd_datasets`, shared by the nodes. An update reads
/// the record under a row lock and writes it back in the same transaction.
public final class ClusterRuntime: SharedRuntime, @unchecked Sendable {
    public let database: ClusterDatabase

    public init(database: ClusterDatabase) {
        self.database = database
    }

    public func load(_ dataset: String) throws -> DatasetRuntime? {
        guard let text = try database.query("SELECT runtime::text FROM synthd_datasets WHERE name = \(dataset)",
                                            "reading the state of \(dataset)").rows.first?.decode(String.self),
              text != "{}" else { return nil }
        return try Self.decode(text, dataset)
    }

    public func update(_ dataset: String, _ change: (inout DatasetRuntime) -> Void) throws -> DatasetRuntime {
        try database.transaction { t in
            try Self.lockRow(t, dataset)
            let text = try t.query("SELECT runtime::text FROM synthd_datasets WHERE name = \(dataset) FOR UPDATE",
                                   "reading the state of \(dataset)").rows.first?.decode(String.self)
            var runtime = try text.flatMap { $0 == "{}" ? nil : try Self.decode($0, dataset) } ?? DatasetRuntime()
            change(&runtime)
            let json = String(decoding: try RuntimeStore.encode(runtime), as: UTF8.self)
            try t.query("UPDATE synthd_datasets SET runtime = \(json)::jsonb, updated_at = now() WHERE name = \(dataset)",
                        "saving the state of \(dataset)")
            return runtime
        }
    }

    /// The datasets with a record. Not a row a scan claim made alone (`claimScan` inserts the
    /// row it locks, with an empty record): a dataset whose folder left between the claim and
    /// its first record was listed, had no record to mark removed, and was said to have left
    /// the spool at every look of every node (24 times in a soak of eight minutes).
    public func datasets() throws -> [String] {
        try database.query("SELECT name FROM synthd_datasets WHERE runtime <> '{}' ORDER BY name", "listing datasets").rows
            .map { try $0.decode(String.self) }
    }

    @discardableResult
    public func forget(_ dataset: String, deletingFiles: () throws -> Void) throws -> Bool {
        try database.transaction { t in
            // The record's row lock keeps every node's update of it (a scan, a job's
            // bookkeeping) waiting until the files are gone, and the row with them.
            _ = try t.query("SELECT name FROM synthd_datasets WHERE name = \(dataset) FOR UPDATE", "locking the state of \(dataset)")
            // A job still stopping after a cancel holds its lease until it lapses.
            let active = try t.query("""
                SELECT id, kind, state, node FROM synthd_jobs
                WHERE dataset = \(dataset) AND (state IN ('queued', 'running') OR (state = 'cancelled' AND lease_expires_at > now()))
                ORDER BY id LIMIT 1 FOR UPDATE
                """, "looking for jobs of \(dataset)").rows.first
            if let active {
                let (id, kind, state, node) = try active.decode((Int, String, String, String?).self)
                let on = node.map { " on node \($0)" } ?? ""
                let what = state == "queued" ? "is queued" : state == "running" ? "is running\(on)" : "is stopping\(on)"
                throw Forgetting.Error(description: "\(dataset): its \(kind) job \(id) \(what); try again once it has stopped (the jobs of a dataset that left the spool are cancelled within seconds)")
            }
            try deletingFiles()
            // The job history stays (pruned after 30 days with everyone else's).
            try t.query("DELETE FROM synthd_jobs WHERE dataset = \(dataset)", "deleting the finished jobs of \(dataset)")
            return try !t.query("DELETE FROM synthd_datasets WHERE name = \(dataset) RETURNING name", "deleting the state of \(dataset)").rows.isEmpty
        }
    }

    /// Every record (for `synthd status`).
    public func all() throws -> [String: DatasetRuntime] {
        var records: [String: DatasetRuntime] = [:]
        for row in try database.query("SELECT name, runtime::text FROM synthd_datasets WHERE runtime <> '{}'", "reading dataset states").rows {
            let (name, text) = try row.decode((String, String).self)
            records[name] = try Self.decode(text, name)
        }
        return records
    }

    /// Whether `node` may fingerprint the dataset now: one node looks at a change, the others
    /// leave it to that node for `seconds` (its claim then lapses, so a node that died while
    /// scanning does not hide the change for long).
    public func claimScan(_ dataset: String, node: String, seconds: Double) throws -> Bool {
        try database.transaction { t in
            try Self.lockRow(t, dataset)
            return try !t.query("""
                UPDATE synthd_datasets SET scan_node = \(node), scan_until = now() + make_interval(secs => \(seconds))
                WHERE name = \(dataset) AND (scan_node = \(node) OR scan_until IS NULL OR scan_until < now())
                RETURNING name
                """, "claiming the scan of \(dataset)").rows.isEmpty
        }
    }

    /// The dataset's row, made if missing, locked until the transaction ends. `ON CONFLICT DO
    /// NOTHING` would not lock an existing row: the prune's delete of a lapsed scan claim
    /// (`ClusterQueue.prune`) could then commit between the insert and the read, and the update
    /// would write to no row, lost. Locked, the delete waits and then finds a record, or goes
    /// first and the insert makes the row again.
    static func lockRow(_ t: ClusterDatabase.Transaction, _ dataset: String) throws {
        try t.query("INSERT INTO synthd_datasets (name) VALUES (\(dataset)) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name",
                    "recording \(dataset)")
    }

    static func decode(_ text: String, _ dataset: String) throws -> DatasetRuntime {
        do { return try RuntimeStore.decode(Data(text.utf8)) } catch {
            throw ClusterError.query("reading the state of \(dataset)", reason: "unreadable record: \(error)")
        }
    }
}
