/// Counts the watch records libinotifytools keeps after the kernel dropped their watches, and
/// says when to start its watches afresh.
///
/// When a watched folder is deleted the kernel removes its watch (`IN_IGNORED`), but
/// libinotifytools keeps its record of it, path and all, for the life of the process: it frees
/// one only when `inotify_rm_watch` succeeds, which it cannot for a watch already gone. A
/// daemon that sees datasets come and go would grow by some 300 bytes per folder ever deleted.
/// Renewing the watches (a fresh libinotifytools state, the spool watched again) frees them;
/// it walks the spool's folders, so it is done when the dead records are at least as many as
/// the live ones, and at least `limit`: memory stays within about twice the live watches, and
/// the walks cost at most one live record's walk per dead record.
struct StaleWatchRecords {
    let limit: Int
    private(set) var count = 0
    /// When to count libinotifytools' records next (a walk of its whole tree).
    private var nextCheck: Int

    init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
        nextCheck = limit
    }

    /// Notes one more dead record; `records` gives libinotifytools' count of all its records,
    /// live and dead (asked for only now and then). True: renew the watches now.
    mutating func noteOne(records: () -> Int) -> Bool {
        count += 1
        guard count >= nextCheck else { return false }
        let live = records() - count
        if count >= live { return true }
        nextCheck = max(count + limit, live)
        return false
    }

    /// After the watches were renewed: no dead record is left.
    mutating func reset() {
        count = 0
        nextCheck = limit
    }
}
