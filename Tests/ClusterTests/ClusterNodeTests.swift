@testable import Cluster
import Daemon
import Foundation
import Logging
import LogTestSupport
import PostgresNIO
import Testing

@Suite struct ClusterNodeTests {
    /// A lease let go of (`ended`) before the job's end is recorded is not renewed after it:
    /// renewed once the job was done, it read as lost to another node, an error line (seen in
    /// a soak of two nodes, where the daemon recorded the end first). A job that another node
    /// took while this one ran is still lost, and said so.
    @Test func aJobsEndIsNotReadAsALostLease() throws {
        let server = try PrivatePostgres.migrated()
        let lines = CapturedLines()
        let node = ClusterNode(address: server.address, node: "a", leaseSeconds: 30, device: "cpu", threads: 1,
                               logger: .capturing(into: lines))
        try node.announce()
        try node.queue.enqueue(.train, dataset: "pets")
        let done = try #require(try node.queue.claim(stepAtStart: { _ in 0 }))
        node.started(done)
        node.keep()
        node.ended(done)
        try node.queue.markDone(done)
        node.keep()
        #expect(!lines.all.contains { $0.contains("lease lost") }, "\(lines.all)")
        #expect(node.stopReason(done) == nil)

        try node.queue.enqueue(.train, dataset: "cats")
        let taken = try #require(try node.queue.claim(stepAtStart: { _ in 0 }))
        node.started(taken)
        try server.connect().query("UPDATE synthd_jobs SET lease_token = lease_token + 1 WHERE id = \(taken.id)")
        node.keep()
        #expect(lines.all.contains("error job \(taken.id) (train): lease lost to another node; stopping without writing"), "\(lines.all)")
        #expect(node.stopReason(taken) == .leaseLost)
    }
}
