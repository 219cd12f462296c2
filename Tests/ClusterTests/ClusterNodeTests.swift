@testable import Cluster
import Daemon
import Foundation
import Logging
import LogTestSupport
import PostgresNIO
import Testing

@Suite struct ClusterNodeTests {
    /// Node "a" announced in `server`'s cluster.
    func announcedNode(_ server: PrivatePostgres) throws -> ClusterNode {
        let node = ClusterNode(address: server.address, node: "a", leaseSeconds: 30, device: "cpu", threads: 1,
                               logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        try node.announce()
        return node
    }

    /// A node whose jobs wait for space on a full disk says so with its heartbeat, and
    /// `synthd status` shows it under the node until it starts jobs again.
    @Test func aNodeWaitingForSpaceSaysSoInTheClustersStatus() throws {
        let server = try PrivatePostgres.migrated()
        let node = try announcedNode(server)
        let state = NSTemporaryDirectory() + "synthd-cluster-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let hold = SpaceHold(folder: "/srv/synthd/out", freeBytesAtFailure: 0, until: Date(timeIntervalSince1970: 2_000_000_000))
        node.waitingForSpace(hold.statusText)
        node.keep()
        let database = server.connect()
        var status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.waitingForSpace) == [hold.statusText])
        #expect(status.summary(leaseSeconds: 30).contains("  a: cpu, 1 threads, ")
                && status.summary(leaseSeconds: 30).contains(", idle\n    no job starts: a job failed on a full disk (the file system "
                                                               + "of /srv/synthd/out); they start again when 64 MiB are free there, or at 2033-05-18T03:33:20Z"),
                "\(status.summary(leaseSeconds: 30))")
        node.waitingForSpace(nil)
        node.keep()
        status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.waitingForSpace) == [nil])
    }

    /// A node that hears nothing from its spool (its share unmounted on that machine) says so
    /// with its heartbeat, shown under the node until the spool is back.
    @Test func aNodeWhoseSpoolIsMissingSaysSoInTheClustersStatus() throws {
        let server = try PrivatePostgres.migrated()
        let node = try announcedNode(server)
        let state = NSTemporaryDirectory() + "synthd-cluster-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let absence = SpoolAbsence(reason: "/srv/spool: the spool's file system was unmounted", since: Date(timeIntervalSince1970: 2_000_000_000))
        node.spoolMissing(absence.statusText)
        node.keep()
        let database = server.connect()
        var status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.spoolMissing) == [absence.statusText])
        #expect(status.summary(leaseSeconds: 30).contains(
            ", idle\n    nothing arrives since 2033-05-18T03:33:20Z: /srv/spool: the spool's file system was unmounted\n"),
                "\(status.summary(leaseSeconds: 30))")
        node.spoolMissing(nil)
        node.keep()
        status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.spoolMissing) == [nil])
    }

    /// A node whose reload did not read says so with its heartbeat, each line of the file's
    /// mistakes under the node, until a reload reads.
    @Test func aNodeWhoseReloadFailedSaysSoInTheClustersStatus() throws {
        let server = try PrivatePostgres.migrated()
        let node = try announcedNode(server)
        let state = NSTemporaryDirectory() + "synthd-cluster-state-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: state) }
        let failure = ReloadFailure(error: "/etc/synthd/synthd.toml:3: unknown key 'minuets'\n/etc/synthd/synthd.toml:5: not a number",
                                    at: Date(timeIntervalSince1970: 2_000_000_000))
        node.reloadFailed(failure.statusText)
        node.keep()
        let database = server.connect()
        var status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.reloadFailed) == [failure.statusText])
        #expect(status.summary(leaseSeconds: 30).contains(
            ", idle\n    configuration not reloaded at 2033-05-18T03:33:20Z, running with the settings it had before: "
                + "/etc/synthd/synthd.toml:3: unknown key 'minuets'\n      /etc/synthd/synthd.toml:5: not a number\n"
                + "      (mend the file and reload again)\n"), "\(status.summary(leaseSeconds: 30))")
        node.reloadFailed(nil)
        node.keep()
        status = try ClusterStatus.read(database, state: state)
        #expect(status.nodes.map(\.reloadFailed) == [nil])
    }

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
