import Cluster
import Daemon
import Foundation
import PostgresNIO
import Testing

/// `synthd forget` and `[service] forget_removed_after_days` in a cluster: a dataset's record
/// in the database goes with its files, and never while a job of it is live on any node.
@Suite struct ClusterForgettingTests {
    @Test func aRecordIsForgottenWithItsFilesOnlyWhenNoJobOfItIsLive() throws {
        let server = try PrivatePostgres.migrated()
        let records = ClusterRuntime(database: server.connect())
        let queue = ClusterQueue(database: server.connect(), node: "a")
        _ = try records.update("shoes") { $0.phase = .removed }
        let job = try queue.enqueue(.train, dataset: "shoes")
        var deletions = 0
        func forget() throws -> Bool { try records.forget("shoes") { deletions += 1 } }
        func refusal() -> String {
            do { _ = try forget(); return "not refused" } catch { return "\(error)" }
        }

        #expect(refusal().contains("its train job \(job.id) is queued"), "\(refusal())")
        let running = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        #expect(refusal().contains("is running on node a"), "\(refusal())")
        try queue.cancel(dataset: "shoes")
        #expect(refusal().contains("is stopping on node a"), "a cancelled job holds its lease until its node stops it")
        #expect(deletions == 0, "no file is deleted while a job is live")
        #expect(try records.load("shoes")?.phase == .removed)

        try queue.release(running)
        #expect(try forget())
        #expect(deletions == 1)
        #expect(try records.datasets().isEmpty && queue.snapshot().isEmpty)
        #expect(try !forget(), "no record left")

        // A failure deleting the files keeps the record (the transaction is rolled back).
        _ = try records.update("bags") { $0.phase = .removed }
        #expect(throws: Forgetting.Error.self) {
            try records.forget("bags") { throw Forgetting.Error(description: "out/bags: cannot delete") }
        }
        #expect(try records.datasets() == ["bags"])

        // A scan's claim alone (the folder left before the dataset had a record) is no record.
        #expect(try records.claimScan("cups", node: "a", seconds: 30))
        #expect(try records.datasets() == ["bags"] && records.load("cups") == nil)

        // Such a row goes with the prune once its claim lapses; a live claim's row and a
        // record's stay, and a record written after the prune makes its row again.
        #expect(try records.claimScan("mugs", node: "a", seconds: 0))
        Thread.sleep(forTimeInterval: 0.01)
        func rows() throws -> [String] {
            try server.connect().query("SELECT name FROM synthd_datasets ORDER BY name", "listing rows").rows.map { try $0.decode(String.self) }
        }
        #expect(try rows() == ["bags", "cups", "mugs"])
        try queue.prune()
        #expect(try rows() == ["bags", "cups"])
        _ = try records.update("mugs") { $0.phase = .removed }
        #expect(try records.load("mugs")?.phase == .removed)
    }
}
