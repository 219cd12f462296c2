import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM ask long work to stop at its next safe point (after the current
/// training step, with a checkpoint) instead of killing it; SIGHUP asks the daemon to reload
/// its configuration. The handlers only set flags, which the work polls.
public enum Signals {
    static let stop = Atomic<Bool>(false)
    static let reload = Atomic<Bool>(false)
    static let drain = Atomic<Bool>(false)

    /// With `reloadOnHangup` false (one-off commands), SIGHUP stops like SIGTERM: the
    /// terminal went away.
    public static func install(reloadOnHangup: Bool = false) {
        let onStop: @convention(c) (Int32) -> Void = { _ in Signals.stop.store(true, ordering: .relaxed) }
        let onReload: @convention(c) (Int32) -> Void = { _ in Signals.reload.store(true, ordering: .relaxed) }
        signal(SIGINT, onStop)
        signal(SIGTERM, onStop)
        signal(SIGHUP, reloadOnHangup ? onReload : onStop)
        if reloadOnHangup {
            // The daemon: SIGUSR1 drains a cluster node (finish the slice, give the job back, take no more).
            let onDrain: @convention(c) (Int32) -> Void = { _ in Signals.drain.store(true, ordering: .relaxed) }
            signal(SIGUSR1, onDrain)
        }
        unblock()
    }

    /// Unblocks the signals that stop (or reload) synthd. A parent may start it with them
    /// blocked (posix_spawn from a Dispatch thread, whose mask blocks every signal, hands that
    /// mask on): handlers would never run, and a command without handlers (`synthd wait`)
    /// ignored SIGTERM, so a supervisor's or a CI job's timeout could not stop it. Every
    /// command calls it first (`Synthd.main`).
    public static func unblock() {
        var set = sigset_t()
        sigemptyset(&set)
        for number in [SIGINT, SIGTERM, SIGHUP, SIGUSR1] { sigaddset(&set, number) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var stopRequested: Bool { stop.load(ordering: .relaxed) }

    /// Whether a reload was asked for since the last call.
    public static func takeReload() -> Bool { reload.exchange(false, ordering: .relaxed) }

    /// Whether a drain was asked for (SIGUSR1) since the last call.
    public static func takeDrain() -> Bool { drain.exchange(false, ordering: .relaxed) }
}
