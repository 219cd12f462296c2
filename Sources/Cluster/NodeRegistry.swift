import Foundation
import PostgresNIO

/// The nodes of a cluster: who they are, what they compute on, when they were last heard
/// from, and whether they are being drained (`synthd drain NODE`).
public struct NodeRegistry {
    public let database: ClusterDatabase

    public init(database: ClusterDatabase) {
        self.database = database
    }

    public struct Node: Equatable, Sendable {
        public var name: String
        public var device: String
        public var threads: Int
        public var freeMemory: Int?
        public var startedAt: Date
        /// Seconds since its last heartbeat, by the database's clock.
        public var silentSeconds: Double
        public var draining: Bool
        /// Set when the node stopped cleanly.
        public var stoppedAt: Date?
        /// Why it starts no job now (a full disk: `SpaceHold.statusText`), as of its last heartbeat.
        public var waitingForSpace: String? = nil
        /// Why it hears nothing from the spool (`SpoolAbsence.statusText`), as of its last heartbeat.
        public var spoolMissing: String? = nil
        /// Its last reload's failure (`ReloadFailure.statusText`), as of its last heartbeat.
        public var reloadFailed: String? = nil
    }

    /// A node starting (or restarting: it rejoins, no longer draining).
    public func announce(_ name: String, device: String, threads: Int, freeMemory: Int?) throws {
        try database.query("""
            INSERT INTO synthd_nodes (name, device, threads, free_memory) VALUES (\(name), \(device), \(threads), \(freeMemory))
            ON CONFLICT (name) DO UPDATE SET device = EXCLUDED.device, threads = EXCLUDED.threads,
                free_memory = EXCLUDED.free_memory, started_at = now(), heartbeat_at = now(), draining = false, stopped_at = NULL
            """, "announcing node \(name)")
    }

    /// The node is alive, what its jobs wait for, why it hears nothing from the spool and its
    /// last reload's failure (nil: nothing). Returns whether it is asked to drain (nil: it is
    /// not registered).
    public func heartbeat(_ name: String, freeMemory: Int?, waitingForSpace: String? = nil, spoolMissing: String? = nil,
                          reloadFailed: String? = nil) throws -> Bool? {
        try database.query("""
            UPDATE synthd_nodes SET heartbeat_at = now(), free_memory = coalesce(\(freeMemory), free_memory),
                waiting_for_space = \(waitingForSpace), spool_missing = \(spoolMissing), reload_failed = \(reloadFailed)
            WHERE name = \(name) RETURNING draining
            """, "the heartbeat of node \(name)").rows.first?.decode(Bool.self)
    }

    /// Asks a node to drain: it finishes its current slice, checkpoints, gives its job back and
    /// takes no more. Returns false when there is no such node.
    public func drain(_ name: String) throws -> Bool {
        try !database.query("UPDATE synthd_nodes SET draining = true WHERE name = \(name) RETURNING name",
                            "draining node \(name)").rows.isEmpty
    }

    /// The node stopped cleanly (its jobs are back in the queue).
    public func stopped(_ name: String) throws {
        try database.query("UPDATE synthd_nodes SET stopped_at = now() WHERE name = \(name)", "recording that node \(name) stopped")
    }

    public func nodes() throws -> [Node] {
        try database.query("""
            SELECT name, device, threads, free_memory, started_at, extract(epoch FROM now() - heartbeat_at)::float8, draining, stopped_at,
                waiting_for_space, spool_missing, reload_failed
            FROM synthd_nodes ORDER BY name
            """, "listing nodes").rows.map { row in
            let (name, device, threads, free, started, silent, draining, stopped, waiting, spool, reload) =
                try row.decode((String, String, Int, Int?, Date, Double, Bool, Date?, String?, String?, String?).self)
            return Node(name: name, device: device, threads: threads, freeMemory: free, startedAt: started, silentSeconds: silent,
                        draining: draining, stoppedAt: stopped, waitingForSpace: waiting, spoolMissing: spool, reloadFailed: reload)
        }
    }
}
