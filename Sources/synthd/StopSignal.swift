import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM ask long work to stop at its next safe point (after the current step,
/// with a checkpoint) instead of killing it.
enum StopSignal {
    static let requested = Atomic<Bool>(false)

    static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in StopSignal.requested.store(true, ordering: .relaxed) }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may start us with these blocked (posix_spawn from a Dispatch thread, whose
        // mask blocks every signal, hands that mask on): the handler would then never run.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    static var isRequested: Bool { requested.load(ordering: .relaxed) }
}
