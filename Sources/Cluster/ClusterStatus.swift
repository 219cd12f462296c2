import Daemon
import Foundation
import PostgresNIO

/// What `synthd status` shows of a cluster: its nodes, who runs what under which lease, the
/// queue, and every dataset (from the shared records and state folders).
public struct ClusterStatus: Codable, Sendable {
    public struct NodeLine: Codable, Sendable {
        public var name: String
        public var device: String
        public var threads: Int
        public var freeMemoryMiB: Int?
        /// Seconds since its last heartbeat.
        public var silentSeconds: Double
        public var draining: Bool
        public var stopped: Bool
        /// "train pets (job 3, token 12, lease 24 s left)"
        public var running: [String]
        /// Why it starts no job now: its jobs wait for space on a full disk.
        public var waitingForSpace: String? = nil
        /// Why it hears nothing from the spool (its folder gone, its file system unmounted).
        public var spoolMissing: String? = nil
        /// Its last reload did not read: it runs with the settings it had before.
        public var reloadFailed: String? = nil
    }

    public var database: String
    public var schema: Int
    public var nodes: [NodeLine]
    /// Waiting jobs in the order they start ("generate pets", "train shoes (retry at ...)").
    public var queue: [String]
    public var datasets: [DatasetStatus]

    /// A database no node has migrated yet (no synthd tables: no node has started, or the
    /// first is creating them now) reads as a cluster of no nodes; one migrated by another
    /// synthd than this one is an error that says which to upgrade, not a query on tables
    /// whose columns differ.
    public static func read(_ database: ClusterDatabase, state: String) throws -> ClusterStatus {
        let schema = try Schema.version(database)
        guard schema > 0 else {
            return ClusterStatus(database: database.address.description, schema: 0, nodes: [], queue: [], datasets: [])
        }
        guard schema <= Schema.latest else { throw ClusterError.schemaTooNew(found: schema, known: Schema.latest) }
        guard schema == Schema.latest else { throw ClusterError.schemaTooOld(found: schema, known: Schema.latest) }
        let nodes = try NodeRegistry(database: database).nodes()
        var running: [String: [String]] = [:], nodeOfDataset: [String: String] = [:]
        for row in try database.query("""
            SELECT id, dataset, kind, node, lease_token, extract(epoch FROM lease_expires_at - now())::float8
            FROM synthd_jobs WHERE state = 'running' ORDER BY id
            """, "listing running jobs").rows {
            let (id, dataset, kind, node, token, left) = try row.decode((Int, String, String, String?, Int?, Double?).self)
            let lease = left.map { $0 >= 0 ? "lease \(Int($0)) s left" : "lease expired \(Int(-$0)) s ago" } ?? "no lease"
            running[node ?? "?", default: []].append("\(kind) \(dataset) (job \(id), token \(token ?? 0), \(lease))")
            nodeOfDataset[dataset] = node
        }
        let waiting = try ClusterQueue(database: database, node: "status").snapshot().filter { $0.state == .queued }
            .sorted { ($0.kind == .generate ? 0 : 1) < ($1.kind == .generate ? 0 : 1) }
        let iso = ISO8601DateFormatter()
        let queue = waiting.map { job in
            "\(job.kind.rawValue) \(job.dataset)" + (job.notBefore.map { " (retry at \(iso.string(from: $0)))" } ?? "")
        }
        let runtime = ClusterRuntime(database: database)
        var datasets = try DatasetStatus.read(state, runtimes: runtime.all())
        for index in datasets.indices { datasets[index].node = nodeOfDataset[datasets[index].dataset] }
        return ClusterStatus(
            database: database.address.description, schema: schema,
            nodes: nodes.map { node in
                NodeLine(name: node.name, device: node.device, threads: node.threads, freeMemoryMiB: node.freeMemory.map { $0 >> 20 },
                         silentSeconds: node.silentSeconds, draining: node.draining, stopped: node.stoppedAt != nil,
                         running: running[node.name] ?? [], waitingForSpace: node.stoppedAt == nil ? node.waitingForSpace : nil,
                         spoolMissing: node.stoppedAt == nil ? node.spoolMissing : nil,
                         reloadFailed: node.stoppedAt == nil ? node.reloadFailed : nil)
            },
            queue: queue, datasets: datasets)
    }

    /// The readable form.
    /// `archives`: the lines of the archives dropped into the spool (`ArchiveRecords.summary`).
    /// `everyDataset`: the whole listing was asked for (no names): datasets that left the spool
    /// are named in one line (`DatasetStatus.listing`).
    public func summary(leaseSeconds: Double, archives: [String] = [], everyDataset: Bool = true) -> String {
        var text = "cluster: \(database) (schema \(schema)), \(nodes.count) nodes\n"
        if schema == 0 {
            text += "  no node has joined yet: the database has no synthd tables (the first synthd run with this [cluster] database makes them)\n"
        }
        for node in nodes {
            let heard = node.stopped ? "stopped" : node.silentSeconds > leaseSeconds ? "silent for \(Int(node.silentSeconds)) s (down?)"
                : "heard \(Int(node.silentSeconds)) s ago"
            text += "  \(node.name): \(node.device), \(node.threads) threads"
            if let free = node.freeMemoryMiB { text += ", \(free) MiB free" }
            text += ", \(heard)" + (node.draining ? ", draining" : "")
            text += node.running.isEmpty ? ", idle\n" : "\n" + node.running.map { "    running \($0)\n" }.joined()
            if let reload = node.reloadFailed { text += "    " + reload.replacingOccurrences(of: "\n", with: "\n    ") + "\n" }
            if let spool = node.spoolMissing { text += "    \(spool)\n" }
            if let waiting = node.waitingForSpace { text += "    \(waiting)\n" }
        }
        text += queue.isEmpty ? "queue: empty\n" : "queue (\(queue.count) waiting): " + queue.prefix(20).joined(separator: ", ")
            + (queue.count > 20 ? ", ..." : "") + "\n"
        if !archives.isEmpty { text += "archives dropped into the spool:\n" + archives.map { "  " + $0 + "\n" }.joined() }
        let listing = everyDataset ? DatasetStatus.listing(datasets) : datasets.map { $0.summary() }.joined(separator: "\n")
        return text + (DatasetStatus.overview(datasets).map { $0 + "\n\n" } ?? "") + listing
    }
}
