import Engine
import Foundation

/// Decides whether the daemon may tell systemd's watchdog it is alive. The main loop asking
/// shows the loop is alive; each running job must also have shown progress (a training
/// step, a chunk of images: any update of its dataset's runtime record) within `limit`. A
/// job stuck in a kernel or on a hung file system then stops the pings, and systemd restarts
/// synthd; the job counts as interrupted (three in a row quarantine the dataset).
///
/// A record's time stamp is on the wall clock, which can be set by hours; so the watch only
/// notes when a stamp changes, and times how long each has stood still on the monotonic clock.
public struct StallWatch: Sendable {
    public let limit: TimeInterval
    private var lastSeen: [String: (stamp: Date, since: Moment)] = [:]

    public init(limit: TimeInterval) { self.limit = limit }

    /// The datasets whose running job has shown no progress for longer than `limit`, given
    /// each running job's dataset and the stamp of its record's last update. Datasets not in
    /// `progress` are forgotten (their job ended).
    public mutating func stalled(progress: [String: Date], now: Moment = .now) -> [String] {
        var seen: [String: (stamp: Date, since: Moment)] = [:]
        for (dataset, stamp) in progress {
            if let last = lastSeen[dataset], last.stamp == stamp {
                seen[dataset] = last
            } else {
                seen[dataset] = (stamp, now)
            }
        }
        lastSeen = seen
        return seen.filter { $0.value.since.seconds(to: now) > limit }.map(\.key).sorted()
    }

    /// Starts every job's time again at `now`: the process was stopped (Ctrl-Z, SIGSTOP) or the
    /// machine slept, and no job could progress meanwhile (the monotonic clock counts a
    /// suspend), so that pause is nobody's stall.
    public mutating func restartClocks(at now: Moment) {
        for (dataset, seen) in lastSeen { lastSeen[dataset] = (seen.stamp, now) }
    }

    /// A new limit (a reloaded configuration) that keeps what was seen.
    public mutating func setLimit(_ limit: TimeInterval) {
        self = StallWatch(limit: limit, lastSeen: lastSeen)
    }

    private init(limit: TimeInterval, lastSeen: [String: (stamp: Date, since: Moment)]) {
        self.limit = limit
        self.lastSeen = lastSeen
    }
}

/// A running job showed no progress for `[service] stall_minutes` in a daemon that systemd's
/// watchdog does not watch: `synthd run` stops and exits with `exitStatus`, so that its
/// supervisor restarts it.
public struct JobsStalled: Error, CustomStringConvertible {
    public let datasets: [String]
    public let limit: TimeInterval
    /// EX_SOFTWARE in sysexits.h: not one of the statuses systemd's unit keeps from restarting.
    public static let exitStatus: Int32 = 70

    public var description: String {
        "no progress for \(durationText(limit)) from the job of \(datasets.joined(separator: ", ")); exiting so that it is restarted"
    }
}
