import Cluster
import Daemon
import Foundation
import PostgresNIO
import Testing

/// `synthd status` on a cluster whose database is not at this synthd's schema version.
@Suite struct ClusterStatusTests {
    /// Before any node has started (or while the first one creates the tables) the database
    /// has no synthd tables: the status is a cluster of no nodes that says so, not a query error
    /// (a soak of two nodes asked for the status while the first node migrated, and got
    /// `relation "synthd_nodes" does not exist`).
    @Test func aDatabaseNoNodeHasJoinedReadsAsAClusterOfNoNodes() throws {
        let server = try PrivatePostgres()
        let state = NSTemporaryDirectory() + "synthd-cluster-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let status = try ClusterStatus.read(server.connect(), state: state)
        #expect(status.schema == 0 && status.nodes.isEmpty && status.queue.isEmpty && status.datasets.isEmpty)
        let summary = status.summary(leaseSeconds: 30)
        #expect(summary.contains("(schema 0), 0 nodes\n  no node has joined yet: the database has no synthd tables"), "\(summary)")
        #expect(try Schema.version(server.connect()) == 0, "reading the status migrates nothing")
    }

    /// A database an older synthd's nodes keep at an older version, or a newer synthd has
    /// migrated, is refused with the version found and the one this synthd reads.
    @Test func anotherSynthdsSchemaIsRefusedWithBothVersions() throws {
        let server = try PrivatePostgres()
        let database = server.connect()
        try Schema.migrate(database, to: Schema.latest - 1)
        let state = NSTemporaryDirectory() + "synthd-cluster-state-\(UUID().uuidString)"
        #expect(throws: ClusterError.schemaTooOld(found: Schema.latest - 1, known: Schema.latest)) {
            try ClusterStatus.read(database, state: state)
        }
        #expect("\(ClusterError.schemaTooOld(found: 3, known: 4))".contains("the first node of this version to start (synthd run) migrates it"))
        try database.query("INSERT INTO synthd_schema (version, summary) VALUES (\(Schema.latest + 1), 'from the future')")
        #expect(throws: ClusterError.schemaTooNew(found: Schema.latest + 1, known: Schema.latest)) {
            try ClusterStatus.read(database, state: state)
        }
        #expect(try Schema.version(database) == Schema.latest + 1)
    }
}
