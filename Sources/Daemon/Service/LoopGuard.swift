import Engine
import Foundation

/// The main loop's own watchdog, for a daemon that systemd's does not watch (a container, a
/// cluster node on Kubernetes, a terminal): the loop feeds it every turn, and a thread of its
/// own calls `starved` once when the loop has not turned for `limit` seconds (it hangs on a
/// file system, say). The daemon then exits, so that whatever supervises it restarts it, as
/// systemd's watchdog would; nothing else could, since the loop is what would notice.
///
/// A process stopped (Ctrl-Z, SIGSTOP) or a machine asleep stops this thread too: a gap
/// between its own looks of more than `pauseGap` starts the time again instead of firing.
public final class LoopGuard: @unchecked Sendable {
    /// A gap longer than this between two looks (the guard's, or two turns of the loop) is the
    /// process paused, not hung.
    public static let pauseGap: TimeInterval = 60

    public let limit: TimeInterval
    let tick: TimeInterval
    let pauseGap: TimeInterval
    private let lock = NSLock()
    private var lastFed: Moment
    private let clock: @Sendable () -> Moment
    private var stopped = false
    private let starved: @Sendable (_ secondsSinceFed: Double) -> Void

    /// `tick`: how often the thread looks; `pauseGap`: a gap between its looks longer than
    /// this is a pause of the process, not of the loop.
    /// `clock`: the monotonic clock, or a test's.
    public init(limit: TimeInterval, tick: TimeInterval = 5, pauseGap: TimeInterval = LoopGuard.pauseGap,
                clock: @escaping @Sendable () -> Moment = { .now },
                starved: @escaping @Sendable (_ secondsSinceFed: Double) -> Void) {
        self.clock = clock
        lastFed = clock()
        self.limit = limit
        self.tick = tick
        self.pauseGap = pauseGap
        self.starved = starved
        let thread = Thread { [self] in watch() }
        thread.name = "synthd loop guard"
        thread.start()
    }

    /// The loop turned.
    public func feed() {
        lock.lock(); defer { lock.unlock() }
        lastFed = clock()
    }

    /// Ends the watch (the loop is stopping, which may take its time).
    public func stop() {
        lock.lock(); defer { lock.unlock() }
        stopped = true
    }

    private func watch() {
        var lastLook = clock()
        while true {
            usleep(useconds_t(tick * 1_000_000))
            let now = clock()
            lock.lock()
            if stopped { lock.unlock(); return }
            if lastLook.seconds(to: now) > pauseGap { lastFed = now }
            let sinceFed = lastFed.seconds(to: now)
            lock.unlock()
            lastLook = now
            if sinceFed > limit {
                starved(sinceFed)
                return
            }
        }
    }
}
