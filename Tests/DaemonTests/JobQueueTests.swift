import Daemon
import FileTestSupport
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

    /// A retry waits until its time on the wall clock; but when that clock is set back since
    /// the wait began (by more than a minute), the wait is over: it would otherwise last as
    /// long again as the step. The wait survives a restart.
    @Test func aRetryWaitsForItsTimeUnlessTheClockWasSetBack() throws {
        let file = path()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let queue = try JobQueue(path: file)
        let job = try queue.enqueue(.generate, dataset: "pets")
        try queue.markRunning(job.id)
        let now = Date()
        try queue.requeue(job.id, notBefore: now.addingTimeInterval(900), error: "disk full")
        #expect(queue.next(now: now) == nil, "waiting for its retry time")
        #expect(queue.next(now: now.addingTimeInterval(-30)) == nil, "a clock that moved back half a minute: still waiting")
        #expect(queue.next(now: now.addingTimeInterval(901))?.id == job.id)
        let reloaded = try JobQueue(path: file)
        #expect(reloaded.next(now: now) == nil)
        #expect(reloaded.next(now: now.addingTimeInterval(-7200))?.id == job.id, "the clock set back two hours: due now")
        try reloaded.markRunning(job.id)
        try reloaded.requeue(job.id, remainingSeconds: 60)
        #expect(reloaded.next(now: now.addingTimeInterval(-7200))?.id == job.id, "a time slice's requeue has no wait")
    }

    /// A queue whose file cannot be written (a full disk; here a file where its folder
    /// should be) goes on in memory: the change is made, the failure is kept, and the next
    /// try writes it all. A folder removed with the file is made again.
    @Test func aQueueThatCannotBeWrittenGoesOnInMemory() throws {
        let folder = NSTemporaryDirectory() + "synthd-queue-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let queue = try JobQueue(path: folder + "/state/queue.json")
        try queue.enqueue(.train, dataset: "pets")
        #expect(queue.saveFailure == nil && FileManager.default.fileExists(atPath: folder + "/state/queue.json"))
        try FileManager.default.removeItem(atPath: folder + "/state")
        try Data().write(to: URL(fileURLWithPath: folder + "/state"))
        let cars = try queue.enqueue(.train, dataset: "cars")
        #expect(queue.saveFailure != nil)
        #expect(queue.jobs.map(\.dataset) == ["pets", "cars"], "the change is made in memory")
        #expect(queue.saveIfBehind() != nil, "still a file in the way")
        try FileManager.default.removeItem(atPath: folder + "/state")
        #expect(queue.saveIfBehind() == nil)
        #expect(try JobQueue(path: folder + "/state/queue.json").jobs.map(\.id) == [1, cars.id], "written again, folder and all")
    }

    /// A queue file of one job, with the fields given as they would be written.
    func job(id: String = "1", dataset: String = "pets", attempts: String = "0") -> String {
        "[{\"id\": \(id), \"dataset\": \"\(dataset)\", \"kind\": \"train\", \"state\": \"queued\", "
            + "\"enqueuedAt\": \"2025-12-03T01:00:00Z\", \"attempts\": \(attempts)}]"
    }

    /// A queue that does not decode, or decodes to what synthd never writes (an id whose
    /// successor overflows, a dataset name that leaves the state tree), is kept beside, under
    /// a name that says so, and the queue starts empty (the scheduler rebuilds it); one that
    /// cannot be read at all is an error naming the file.
    @Test func anUndecodableQueueIsMovedAsideAndAnUnreadableOneRefused() throws {
        let folder = NSTemporaryDirectory() + "synthd-queue-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let file = folder + "/queue.json"
        for (damage, reason) in [("[{\"id\": 1, \"data", "not valid JSON"),
                                 ("[{\"id\": 1}]", "missing \"dataset\" at [0]"),
                                 ("[{\"id\": \"one\"}]", "expected Int at [0].id"),
                                 (job(id: "9223372036854775807"), "job id 9223372036854775807"),
                                 (job(dataset: "../../etc"), "job 1: dataset name '../../etc' is not a folder name"),
                                 (job(attempts: "-1"), "job 1: -1 attempts")] {
            try Data(damage.utf8).write(to: URL(fileURLWithPath: file))
            let now = Date(timeIntervalSince1970: 1_764_724_500)  // 2025-12-03 01:15:00 UTC
            let queue = try JobQueue(path: file, now: now)
            #expect(queue.jobs.isEmpty)
            let aside = try #require(queue.setAside)
            #expect(aside.path == file + ".unreadable-20251203T011500Z")
            #expect(aside.reason.hasPrefix(reason), "\(aside.reason)")
            #expect(try String(contentsOfFile: aside.path, encoding: .utf8) == damage, "kept as it was")
            #expect(!FileManager.default.fileExists(atPath: file))
            try queue.enqueue(.train, dataset: "pets")
            #expect(try JobQueue(path: file).jobs.map(\.dataset) == ["pets"], "a new queue in its place")
            try FileManager.default.removeItem(atPath: aside.path)
        }

        // A folder where the file should be: read fails, nothing is moved.
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.createDirectory(atPath: file, withIntermediateDirectories: false)
        #expect {
            _ = try JobQueue(path: file)
        } throws: { error in
            "\(error)".hasPrefix(file + ": cannot read the job queue")
        }
        #expect(FileManager.default.fileExists(atPath: file))
    }

    /// Byte damage to a queue of several jobs: each load gives a queue that works (or starts
    /// empty with the file set aside), never a crash.
    @Test func aDamagedQueueLoadsOrIsSetAside() throws {
        let folder = NSTemporaryDirectory() + "synthd-queue-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let file = folder + "/queue.json"
        let queue = try JobQueue(path: file)
        for name in ["pets", "cars", "birds"] { try queue.enqueue(.train, dataset: name) }
        let running = try #require(queue.next())
        try queue.markRunning(running.id)
        try queue.enqueue(.generate, dataset: "pets")
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: file)))
        var loaded = 0
        for (i, bytes) in Mutations(of: original, count: 400, seed: 700).enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            let damaged = try JobQueue(path: file, now: Date(timeIntervalSince1970: Double(i)))
            if damaged.setAside == nil { loaded += 1 } else { #expect(damaged.jobs.isEmpty, "mutant \(i)") }
            _ = damaged.next()
            try damaged.enqueue(.train, dataset: "new")
            if let aside = damaged.setAside { try FileManager.default.removeItem(atPath: aside.path) }
        }
        #expect(loaded > 0, "\(loaded) of 400 damaged queues still decoded")

        // Every number in the file at Int's ends and beyond: JSON that decodes, with values
        // synthd never writes.
        let text = String(decoding: original, as: UTF8.self)
        let numbers = try NSRegularExpression(pattern: "(?<=: )[0-9]+(\\.[0-9]+)?").matches(in: text, range: NSRange(text.startIndex..., in: text))
        #expect(numbers.count >= 8)
        for match in numbers {
            for value in ["0", "-1", "9223372036854775807", "-9223372036854775808", "1e308", "99999999999999999999"] {
                let damaged = (text as NSString).replacingCharacters(in: match.range, with: value)
                try Data(damaged.utf8).write(to: URL(fileURLWithPath: file))
                let queue = try JobQueue(path: file)
                _ = queue.next()
                try queue.enqueue(.train, dataset: "new")
                if let aside = queue.setAside { try FileManager.default.removeItem(atPath: aside.path) }
            }
        }
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
