import Daemon
import Foundation
import Testing

@Suite struct JobQueueTests {
    func path() -> String { NSTemporaryDirectory() + "synthd-queue-\(UUID().uuidString).json" }

    @Test func deduplicatesOrdersAndSurvivesARestart() throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let queue = try JobQueue(path: file)
        let shoes = try queue.enqueue(.train, dataset: "shoes")
        #expect(try queue.enqueue(.train, dataset: "shoes") == shoes, "the same waiting work is not queued twice")
        let bags = try queue.enqueue(.train, dataset: "bags")
        #expect(queue.next()?.id == shoes.id)
        try queue.markRunning(shoes.id)
        // While shoes trains, a change to shoes queues more work but bags runs next.
        try queue.enqueue(.train, dataset: "shoes")
        #expect(queue.next()?.id == bags.id)

        // A kill -9 now: on reload the running job is queued again, nothing is lost.
        let reloaded = try JobQueue(path: file)
        #expect(reloaded.jobs.count == 3)
        #expect(reloaded.jobs.first { $0.id == shoes.id }?.state == .queued)
        #expect(reloaded.jobs.first { $0.id == shoes.id }?.attempts == 1)
        let fresh = try reloaded.enqueue(.generate, dataset: "bags")
        #expect(fresh.id == 4, "ids keep counting after a restart")
    }

    @Test func timeSlicesFailuresAndCancellation() throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let queue = try JobQueue(path: file)
        let big = try queue.enqueue(.train, dataset: "big")
        let small = try queue.enqueue(.train, dataset: "small")
        try queue.markRunning(big.id)
        try queue.requeue(big.id)  // its slice ended: behind the small dataset now
        #expect(queue.next()?.id == small.id)
        try queue.markRunning(small.id)
        try queue.markFailed(small.id, error: "spool/small: no readable images")
        #expect(queue.jobs.first { $0.id == small.id }?.lastError == "spool/small: no readable images")
        #expect(try queue.cancel(dataset: "big") == [big.id])
        #expect(queue.next() == nil)
    }

    @Test func corruptQueueNamesTheFile() throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: file))
        do {
            _ = try JobQueue(path: file)
            Issue.record("a corrupt queue loaded")
        } catch {
            #expect("\(error)".contains(file))
        }
    }

    /// A job running when the daemon died goes back to the queue with its attempts counted,
    /// and is listed for the scheduler to judge (see SchedulerTests).
    @Test func aJobRunningAtADeathIsQueuedAgainAndReported() throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        var queue = try JobQueue(path: file)
        let job = try queue.enqueue(.train, dataset: "poison")
        for death in 1...3 {
            try queue.markRunning(job.id, stepAtStart: 10 * death)
            queue = try JobQueue(path: file)  // killed while running
            #expect(queue.jobs.first?.state == .queued)
            #expect(queue.interrupted.map(\.id) == [job.id] && queue.interrupted.first?.attempts == death)
            #expect(queue.interrupted.first?.stepAtStart == 10 * death)
        }
        try queue.resume(job.id, remainingSeconds: 12, budgetSeconds: 60)
        let resumed = try JobQueue(path: file).jobs.first
        #expect(resumed?.attempts == 0 && resumed?.remainingSeconds == 12 && resumed?.budgetSeconds == 60)
    }
}
