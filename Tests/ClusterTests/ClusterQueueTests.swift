import Cluster
import Daemon
import Foundation
import PostgresNIO
import Testing

@Suite struct ClusterQueueTests {
    func history(_ database: ClusterDatabase, job: Int) throws -> [String] {
        try database.query("SELECT event FROM synthd_job_history WHERE job = \(job) ORDER BY id").rows.map { try $0.decode(String.self) }
    }

    @Test func queuesWorkOnceAndStartsGenerationFirstThenTheOldest() throws {
        let server = try PrivatePostgres.migrated()
        let queue = ClusterQueue(database: server.connect(), node: "a")
        let shoes = try queue.enqueue(.train, dataset: "shoes")
        #expect(try queue.enqueue(.train, dataset: "shoes") == shoes, "the same waiting work is not queued twice")
        #expect(try queue.queuedCount() == 1)
        let bags = try queue.enqueue(.train, dataset: "bags")
        let pets = try queue.enqueue(.generate, dataset: "pets")
        var steps: [String] = []
        let first = try #require(try queue.claim(stepAtStart: { steps.append($0); return 7 }))
        #expect(first.id == pets.id && first.state == .running && first.node == "a" && first.stepAtStart == 7 && first.attempts == 1)
        #expect(steps == ["pets"])
        #expect(try queue.claim(busy: ["shoes"], stepAtStart: { _ in 0 })?.id == bags.id, "a busy dataset is skipped")
        #expect(try queue.claim(stepAtStart: { _ in 0 })?.id == shoes.id)
        #expect(try queue.claim(stepAtStart: { _ in 0 }) == nil)
        #expect(try !queue.hasWaiting())
        // A training job queued again while its dataset runs waits for it.
        try queue.enqueue(.train, dataset: "shoes")
        #expect(try queue.claim(stepAtStart: { _ in 0 }) == nil, "one job per dataset at a time")
        #expect(try !queue.hasWaiting())
        #expect(try history(server.connect(), job: pets.id) == ["queued", "claimed"])
    }

    /// A retry's wait is kept on the database's clock (as leases are), not the node's: it is
    /// the wait the node asked for, from the database's now.
    @Test func aRetryWaitsOnTheDatabasesClock() throws {
        let server = try PrivatePostgres.migrated()
        let database = server.connect()
        let queue = ClusterQueue(database: database, node: "a")
        let job = try queue.enqueue(.generate, dataset: "pets")
        let running = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        try queue.requeue(running, remainingSeconds: nil, budgetSeconds: nil, notBefore: Date().addingTimeInterval(30), error: "disk full")
        let wait = try #require(try database.query("SELECT extract(epoch FROM not_before - now())::float8 FROM synthd_jobs WHERE id = \(job.id)")
            .rows.first?.decode(Double.self))
        #expect(wait > 28 && wait <= 30, "\(wait) s")
        #expect(try queue.claim(stepAtStart: { _ in 0 }) == nil, "waiting")
        try database.query("UPDATE synthd_jobs SET not_before = now() - interval '1 second' WHERE id = \(job.id)")
        #expect(try queue.claim(stepAtStart: { _ in 0 })?.id == job.id, "its time came")
    }

    @Test func aGPUNodeTakesTrainingFirst() throws {
        let server = try PrivatePostgres.migrated()
        let cpu = ClusterQueue(database: server.connect(), node: "cpu")
        let gpu = ClusterQueue(database: server.connect(), node: "gpu", prefersTraining: true)
        let train = try cpu.enqueue(.train, dataset: "shoes")
        let generate = try cpu.enqueue(.generate, dataset: "pets")
        #expect(try gpu.claim(stepAtStart: { _ in 0 })?.id == train.id)
        #expect(try cpu.claim(stepAtStart: { _ in 0 })?.id == generate.id)
    }

    @Test func aSliceGoesToTheBackAndAFinishedJobIsDone() throws {
        let server = try PrivatePostgres.migrated()
        let queue = ClusterQueue(database: server.connect(), node: "a")
        let big = try queue.enqueue(.train, dataset: "big")
        let small = try queue.enqueue(.train, dataset: "small")
        let running = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        #expect(running.id == big.id)
        try queue.requeue(running, remainingSeconds: 60, budgetSeconds: 100, notBefore: nil, error: nil)
        let next = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        #expect(next.id == small.id, "the sliced job went behind the other dataset")
        try queue.markDone(next)
        let again = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        #expect(again.id == big.id && again.remainingSeconds == 60 && again.budgetSeconds == 100 && again.attempts == 1)
        #expect(try queue.snapshot().first { $0.id == small.id }?.state == .done)
    }

    @Test func aLostLeaseIsTakenOverAndTheStaleNodesWritesAreRefused() throws {
        let server = try PrivatePostgres.migrated()
        let a = ClusterQueue(database: server.connect(), node: "a", leaseSeconds: 0.5)
        let b = ClusterQueue(database: server.connect(), node: "b", leaseSeconds: 30)
        try a.enqueue(.train, dataset: "pets")
        let held = try #require(try a.claim(stepAtStart: { _ in 100 }))
        #expect(try a.renew(held) == .held)
        #expect(try b.takeInterrupted().isEmpty, "a live lease is not taken")
        #expect(try b.claim(stepAtStart: { _ in 0 }) == nil)
        Thread.sleep(forTimeInterval: 0.8)  // node a is silent past its lease
        let interrupted = try b.takeInterrupted()
        #expect(interrupted.map(\.id) == [held.id])
        #expect(interrupted.first?.node == "a" && interrupted.first?.leaseToken == nil && interrupted.first?.stepAtStart == 100)
        #expect(try b.takeInterrupted().isEmpty, "taken back once")
        // The scheduler judges it: progress was made, so it resumes with the budget it had left.
        try b.resume(interrupted[0], remainingSeconds: 12, budgetSeconds: 60)
        let taken = try #require(try b.claim(stepAtStart: { _ in 150 }))
        #expect(taken.id == held.id && taken.node == "b" && taken.attempts == 1 && taken.remainingSeconds == 12)
        #expect(taken.leaseToken! > held.leaseToken!, "a later claim has a larger fencing token")
        // Node a wakes up: everything it says about the job is refused.
        #expect(try a.renew(held) == .lost)
        #expect(throws: ClusterError.leaseLost(job: held.id, dataset: "pets", token: held.leaseToken!)) { try a.markDone(held) }
        #expect(throws: ClusterError.self) { try a.requeue(held, remainingSeconds: 1, budgetSeconds: 1, notBefore: nil, error: nil) }
        #expect(throws: ClusterError.self) { try a.markFailed(held, error: "late") }
        try b.markDone(taken)
        let events = try history(server.connect(), job: held.id)
        #expect(events == ["queued", "claimed", "lease expired", "resumed", "claimed", "done"])
    }

    @Test func nodesClaimingAtOnceNeverTakeTheSameJob() throws {
        let server = try PrivatePostgres.migrated()
        let setup = ClusterQueue(database: server.connect(), node: "setup")
        // 12 datasets with a generation and a training job each: nodes compete for jobs and
        // for datasets (one job per dataset at a time).
        for index in 0..<24 { try setup.enqueue(index % 2 == 0 ? .generate : .train, dataset: "d\(index / 2)") }
        let claims = Locked<[Int]>([])
        let overlaps = Locked<Int>(0)
        let runningDatasets = Locked<Set<String>>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            let queue = ClusterQueue(database: server.connect(), node: "n\(worker)")
            while (try? queue.snapshot().contains { $0.state == .queued }) == true {
                guard let job = try? queue.claim(stepAtStart: { _ in 0 }) else { usleep(2000); continue }
                claims.with { $0.append(job.id) }
                if !runningDatasets.with({ $0.insert(job.dataset).inserted }) { overlaps.with { $0 += 1 } }
                usleep(3000)
                _ = runningDatasets.with { $0.remove(job.dataset) }
                try? queue.markDone(job)
            }
        }
        #expect(claims.value.count == 24 && Set(claims.value).count == 24, "every job ran once")
        #expect(overlaps.value == 0, "never two jobs of one dataset at once")
        #expect(try setup.snapshot().allSatisfy { $0.state == .done })
    }

    @Test func cancellingReachesTheRunningNodeThroughItsLease() throws {
        let server = try PrivatePostgres.migrated()
        let a = ClusterQueue(database: server.connect(), node: "a")
        let b = ClusterQueue(database: server.connect(), node: "b")
        try a.enqueue(.train, dataset: "pets")
        let running = try #require(try a.claim(stepAtStart: { _ in 0 }))
        #expect(try b.cancel(dataset: "pets") == [running.id])
        #expect(try a.renew(running) == .cancelled)
        try b.enqueue(.train, dataset: "pets")  // the folder is back
        #expect(try b.claim(stepAtStart: { _ in 0 }) == nil, "not while node a still winds the cancelled job down")
        try a.release(running)
        #expect(try b.claim(stepAtStart: { _ in 0 })?.dataset == "pets")
    }

    /// Whether a dataset's outputs may still be written: while a job is queued or running, and
    /// while a cancelled one winds down under its lease; not once that lease is let go of.
    @Test func aDatasetHoldsWorkUntilItsCancelledJobsLeaseIsLetGo() throws {
        let server = try PrivatePostgres.migrated()
        let a = ClusterQueue(database: server.connect(), node: "a")
        let b = ClusterQueue(database: server.connect(), node: "b")
        #expect(try !b.holdsWork(dataset: "pets"))
        try a.enqueue(.generate, dataset: "pets")
        #expect(try b.holdsWork(dataset: "pets"), "queued")
        let running = try #require(try a.claim(stepAtStart: { _ in 0 }))
        #expect(try b.holdsWork(dataset: "pets"), "running")
        #expect(try b.cancel(dataset: "pets") == [running.id])
        #expect(try b.holdsWork(dataset: "pets"), "cancelled, its node not yet stopped")
        try a.release(running)
        #expect(try !b.holdsWork(dataset: "pets"))
        #expect(try !b.holdsWork(dataset: "bags"))
    }

    @Test func aRunningJobRequeuedWhileTheSameWorkWaitsGivesWay() throws {
        let server = try PrivatePostgres.migrated()
        let queue = ClusterQueue(database: server.connect(), node: "a")
        try queue.enqueue(.train, dataset: "pets")
        let running = try #require(try queue.claim(stepAtStart: { _ in 0 }))
        let newer = try queue.enqueue(.train, dataset: "pets")  // images added meanwhile
        try queue.requeue(running, remainingSeconds: 10, budgetSeconds: 20, notBefore: nil, error: nil)
        #expect(try queue.pending(dataset: "pets").map(\.id) == [newer.id])
    }

    @Test func theDatabaseGoingAwayIsReportedAndItsReturnPickedUp() throws {
        let server = try PrivatePostgres.migrated()
        let database = server.connect(timeout: 3)
        let queue = ClusterQueue(database: database, node: "a")
        try queue.enqueue(.train, dataset: "pets")
        try server.stop()
        #expect {
            try queue.pending(dataset: "pets")
        } throws: { error in
            (error as? ClusterError)?.isUnreachable == true
        }
        try server.start()
        #expect(try queue.pending(dataset: "pets").count == 1, "reconnected, nothing lost")
    }

    @Test func nodesAnnounceBeatAndDrain() throws {
        let server = try PrivatePostgres.migrated()
        let registry = NodeRegistry(database: server.connect())
        try registry.announce("gpu-1", device: "cuda:0 (NVIDIA H200)", threads: 16, freeMemory: 1 << 30)
        try registry.announce("cpu-1", device: "cpu", threads: 2, freeMemory: nil)
        #expect(try registry.heartbeat("gpu-1", freeMemory: 2 << 30) == false)
        #expect(try registry.heartbeat("ghost", freeMemory: nil) == nil)
        #expect(try registry.drain("gpu-1"))
        #expect(try !registry.drain("ghost"))
        #expect(try registry.heartbeat("gpu-1", freeMemory: nil) == true)
        let nodes = try registry.nodes()
        #expect(nodes.map(\.name) == ["cpu-1", "gpu-1"])
        #expect(nodes[1].draining && nodes[1].freeMemory == 2 << 30 && nodes[1].threads == 16 && nodes[1].silentSeconds < 5)
        try registry.announce("gpu-1", device: "cuda:0 (NVIDIA H200)", threads: 16, freeMemory: nil)
        #expect(try registry.heartbeat("gpu-1", freeMemory: nil) == false, "a restarted node rejoins undrained")
    }
}
