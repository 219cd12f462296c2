import Cluster
import Daemon
import Foundation
import PostgresNIO
import Testing

@Suite struct SchemaTests {
    @Test func migratesAnEmptyDatabaseOnceAndAgreesOnItsVersion() throws {
        let server = try PrivatePostgres()
        let database = server.connect()
        #expect(try Schema.version(database) == 0)
        let first = try Schema.migrate(database)
        #expect(first.from == 0 && first.to == Schema.latest)
        #expect(try Schema.version(database) == Schema.latest)
        let again = try Schema.migrate(server.connect())
        #expect(again.from == Schema.latest && again.to == Schema.latest)
        let tables = try database.query("""
            SELECT count(*) FROM information_schema.tables
            WHERE table_name IN ('synthd_jobs', 'synthd_job_history', 'synthd_nodes', 'synthd_datasets')
            """).rows.first?.decode(Int.self)
        #expect(tables == 4)
    }

    @Test func migratesFromThePreviousVersionKeepingTheQueue() throws {
        let server = try PrivatePostgres()
        let database = server.connect()
        try Schema.migrate(database, to: Schema.latest - 1)
        #expect(try Schema.version(database) == Schema.latest - 1)
        let job = try ClusterQueue(database: database, node: "a").enqueue(.train, dataset: "pets")
        try Schema.migrate(database)
        #expect(try Schema.version(database) == Schema.latest)
        #expect(try ClusterQueue(database: database, node: "a").pending(dataset: "pets").map(\.id) == [job.id])
        try NodeRegistry(database: database).announce("a", device: "cpu", threads: 2, freeMemory: nil)
    }

    @Test func nodesStartingTogetherMigrateOnce() throws {
        let server = try PrivatePostgres()
        let results = Locked<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            if let migrated = try? Schema.migrate(server.connect()) { results.with { $0.append(migrated.from) } }
        }
        #expect(results.value.sorted() == [0, Schema.latest, Schema.latest, Schema.latest])
    }

    @Test func refusesADatabaseFromANewerSynthd() throws {
        let server = try PrivatePostgres.migrated()
        let database = server.connect()
        try database.query("INSERT INTO synthd_schema (version, summary) VALUES (\(Schema.latest + 1), 'from the future')")
        #expect(throws: ClusterError.schemaTooNew(found: Schema.latest + 1, known: Schema.latest)) {
            try Schema.migrate(database)
        }
    }
}

/// A value that several test threads change.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func with<T>(_ change: (inout Value) -> T) -> T { lock.lock(); defer { lock.unlock() }; return change(&stored) }
}
