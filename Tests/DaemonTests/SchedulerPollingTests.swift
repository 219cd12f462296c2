import Daemon
import Foundation
import Logging
import Spool
import Testing

/// Periodic scans of the spool (`poll_seconds`: a network spool, the watch limit, a cluster):
/// they find what inotify cannot see without scanning settled datasets again and again.
@Suite struct SchedulerPollingTests {
    func makeScheduler(background: Bool) throws -> (Scheduler, root: String) { try makeTestScheduler(background: background) }

    /// Files the scheduler only lists and dates (it decodes nothing).
    func addImages(_ root: String, _ folder: String, count: Int) throws {
        let path = root + "/spool/" + folder
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for i in 0..<count { _ = FileManager.default.createFile(atPath: "\(path)/\(i).png", contents: Data([UInt8(i & 255)])) }
    }

    func queued(_ scheduler: Scheduler) -> [String] {
        (try! scheduler.queue.snapshot()).filter { $0.state == .queued }.map { "\($0.kind.rawValue) \($0.dataset)" }
    }

    /// A trained dataset whose files have not changed is not scanned again by each poll;
    /// a change found by a poll is.
    @Test func aPollScansOnlyWhatChanged() throws {
        let (scheduler, root) = try makeScheduler(background: false)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImages(root, "pets/cat", count: 3)
        scheduler.reconcile()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        let job = try #require(scheduler.startNext())
        let fingerprint = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        scheduler.finish(job, .completed(fingerprint: fingerprint.value), stopping: false)
        let generate = try #require(scheduler.startNext())
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
        let taken = scheduler.scanner.fingerprintsTaken
        for _ in 0..<5 {
            scheduler.poll()
            scheduler.takeSettled()
        }
        #expect(scheduler.scanner.fingerprintsTaken == taken, "an unchanged, trained dataset is not scanned again")
        #expect(queued(scheduler).isEmpty)
        // A change inotify did not report (another machine's write on a network spool).
        try addImages(root, "pets/dog", count: 2)
        scheduler.poll()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        #expect(scheduler.scanner.fingerprintsTaken == taken + 1)
    }

    /// A dataset of 8,000 files (a scan of tens of milliseconds) on a scheduler whose scans
    /// run on the scanner's thread, `nudge` done to it every millisecond, far more often than
    /// a scan takes, until the dataset is queued or a minute passes. Returns what was queued
    /// and the most scan requests that waited at once.
    func nudgeUntilQueued(start: (Scheduler) -> Void = { _ in }, _ nudge: (Scheduler) -> Void) throws -> (queued: [String], mostOutstanding: Int) {
        let (scheduler, root) = try makeScheduler(background: true)
        defer {
            scheduler.scanner.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
        try addImages(root, "big/a", count: 4_000)
        try addImages(root, "big/b", count: 4_000)
        start(scheduler)
        var mostOutstanding = 0
        let deadline = Date().addingTimeInterval(60)
        while queued(scheduler).isEmpty && Date() < deadline {
            nudge(scheduler)
            scheduler.takeSettled()
            mostOutstanding = max(mostOutstanding, scheduler.scanner.outstanding)
            usleep(1_000)
        }
        return (queued(scheduler), mostOutstanding)
    }

    /// A dataset whose scan takes longer than the interval between polls is still taken.
    /// Before, every poll asked for a scan of the whole spool behind the ones not yet done,
    /// and noted the dataset again while its fingerprint was taken, which threw that result
    /// away as stale: it was never trained.
    @Test func aDatasetThatTakesLongerToScanThanAPollIsStillTaken() throws {
        let (queued, most) = try nudgeUntilQueued(start: { $0.reconcile() }) { $0.poll() }
        #expect(queued == ["train big"])
        #expect(most <= 3, "polls do not queue up behind a scan: \(most) requests waited at once")
    }

    /// A burst of rescans (inotify queue overflows, watch-limit errors while many folders are
    /// copied in) makes one more look at the spool, not one queued behind another for each.
    @Test func aBurstOfRescansMakesOneMoreLook() throws {
        let (queued, most) = try nudgeUntilQueued { $0.handle(.rescan(reason: "inotify queue overflow")) }
        #expect(queued == ["train big"])
        #expect(most <= 3, "rescans do not queue up behind a look: \(most) requests waited at once")
    }
}
