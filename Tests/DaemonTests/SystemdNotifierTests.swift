import Daemon
import FileTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SystemdNotifierTests {
    @Test func sendsDatagramsToTheNotifySocket() throws {
        // Play systemd: a datagram socket bound to a path.
        let path = NSTemporaryDirectory() + "synthd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let fd = try bindUnixSocket(at: path, type: Int32(SOCK_DGRAM.rawValue))
        defer { close(fd) }

        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"])
        #expect(notifier.watchdogInterval == 10)
        #expect(notifier.notify("READY=1\nSTATUS=watching spool"))
        var buffer = [UInt8](repeating: 0, count: 256)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(String(decoding: buffer.prefix(max(0, received)), as: UTF8.self) == "READY=1\nSTATUS=watching spool")
    }

    @Test func doesNothingOutsideSystemd() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.notify("READY=1"))
        #expect(notifier.watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"]).watchdogInterval == nil,
                "a watchdog meant for another process")
    }
}

@Suite struct StallWatchTests {
    @Test func aJobWithoutProgressPastTheLimitIsStalled() {
        let t0 = ContinuousClock.now, stamp = Date()
        var watch = StallWatch(limit: 1800)
        #expect(watch.stalled(progress: [:], now: t0).isEmpty, "no job: the loop alone decides")
        #expect(watch.stalled(progress: ["a": stamp, "b": stamp], now: t0).isEmpty)
        #expect(watch.stalled(progress: ["a": stamp, "b": stamp.addingTimeInterval(1)], now: t0.advanced(by: .seconds(1799))).isEmpty)
        #expect(watch.stalled(progress: ["a": stamp, "b": stamp.addingTimeInterval(2)], now: t0.advanced(by: .seconds(1801))) == ["a"],
                "a's record stood still for 1,801 s; b's moved")
        #expect(watch.stalled(progress: ["b": stamp.addingTimeInterval(2)], now: t0.advanced(by: .seconds(3602))) == ["b"])
        #expect(watch.stalled(progress: ["a": stamp], now: t0.advanced(by: .seconds(3603))).isEmpty,
                "a job that ended and a new one of the same dataset: its time starts again")
    }

    /// The records' stamps are on the wall clock, which can be set by hours: only whether a
    /// stamp changed counts, timed on the monotonic clock.
    @Test func aWallClockSetBackOrForwardIsNeitherProgressNorAStall() {
        let t0 = ContinuousClock.now, stamp = Date()
        var watch = StallWatch(limit: 60)
        #expect(watch.stalled(progress: ["a": stamp], now: t0).isEmpty)
        // The clock set forward three hours: the next stamps are hours later, a second apart.
        #expect(watch.stalled(progress: ["a": stamp.addingTimeInterval(10_800)], now: t0.advanced(by: .seconds(1))).isEmpty)
        // Set back two hours: stamps earlier than the last are progress too.
        #expect(watch.stalled(progress: ["a": stamp.addingTimeInterval(-7_200)], now: t0.advanced(by: .seconds(2))).isEmpty)
        #expect(watch.stalled(progress: ["a": stamp.addingTimeInterval(-7_200)], now: t0.advanced(by: .seconds(61))).isEmpty)
        #expect(watch.stalled(progress: ["a": stamp.addingTimeInterval(-7_200)], now: t0.advanced(by: .seconds(63))) == ["a"])
        watch.setLimit(120)
        #expect(watch.stalled(progress: ["a": stamp.addingTimeInterval(-7_200)], now: t0.advanced(by: .seconds(63))).isEmpty,
                "a reloaded limit keeps what was seen")
    }

    /// A process stopped (Ctrl-Z) or a machine asleep: its jobs could not progress, so their
    /// time starts again when it goes on.
    @Test func aPauseOfTheProcessIsNoStall() {
        let t0 = ContinuousClock.now, stamp = Date()
        var watch = StallWatch(limit: 60)
        #expect(watch.stalled(progress: ["a": stamp], now: t0).isEmpty)
        watch.restartClocks(at: t0.advanced(by: .seconds(3600)))
        #expect(watch.stalled(progress: ["a": stamp], now: t0.advanced(by: .seconds(3630))).isEmpty)
        #expect(watch.stalled(progress: ["a": stamp], now: t0.advanced(by: .seconds(3661))) == ["a"], "and a stall after it counts")
    }
}

/// The main loop's own watchdog (no systemd's): it calls once when the loop stops turning.
@Suite struct LoopGuardTests {
    final class Calls: @unchecked Sendable {
        private let lock = NSLock()
        private var seconds: [Double] = []
        func add(_ value: Double) { lock.lock(); seconds.append(value); lock.unlock() }
        var all: [Double] { lock.lock(); defer { lock.unlock() }; return seconds }
    }

    /// A clock the test moves: the guard's looks read it.
    final class TestClock: @unchecked Sendable {
        private let lock = NSLock()
        private var now = ContinuousClock.now
        func read() -> ContinuousClock.Instant { lock.lock(); defer { lock.unlock() }; return now }
        func advance(_ seconds: Double) { lock.lock(); now = now.advanced(by: .seconds(seconds)); lock.unlock() }
    }

    @Test func aLoopThatStopsTurningIsCalledOnceAndAFedOneNever() {
        let calls = Calls(), clock = TestClock()
        let watched = LoopGuard(limit: 10, tick: 0.005, pauseGap: 5, clock: clock.read) { calls.add($0) }
        for _ in 0..<40 {  // fed every simulated second for 40 s
            clock.advance(1)
            watched.feed()
            usleep(10_000)
        }
        #expect(calls.all.isEmpty, "fed within the limit")
        // Then not fed, a second at a time, until it calls (a busy machine that keeps the guard
        // from looking for over 5 of these seconds makes it start again: a pause, by its rule).
        for _ in 0..<3000 where calls.all.isEmpty {
            clock.advance(1)
            usleep(10_000)
        }
        for _ in 0..<20 {  // more time: it calls once, not again
            clock.advance(1)
            usleep(10_000)
        }
        #expect(calls.all.count == 1 && calls.all.first.map { $0 > 10 } == true, "\(calls.all)")
        watched.stop()
    }

    @Test func aPauseOfTheWholeProcessIsNotAHungLoop() {
        let calls = Calls(), clock = TestClock()
        let watched = LoopGuard(limit: 10, tick: 0.005, pauseGap: 5, clock: clock.read) { calls.add($0) }
        watched.feed()
        usleep(20_000)
        clock.advance(3600)  // Ctrl-Z for an hour: the guard's next look comes an hour after its last
        usleep(50_000)
        #expect(calls.all.isEmpty, "\(calls.all)")
        watched.feed()
        watched.stop()
    }
}
