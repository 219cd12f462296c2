import Foundation

/// Decides whether the daemon may tell systemd's watchdog it is alive. The main loop asking
/// shows the loop is alive; each running job must also have shown progress (a training
/// step, a chunk of images: any update of its dataset's runtime record) within `limit`. A
/// job stuck in a kernel or on a hung file system then stops the pings, and systemd restarts
/// synthd; the job counts as interrupted (three in a row quarantine the dataset).
public struct StallWatch: Sendable {
    public let limit: TimeInterval

    public init(limit: TimeInterval) { self.limit = limit }

    /// The datasets whose running job has shown no progress for longer than `limit`.
    public func stalled(lastProgress: [String: Date], now: Date = Date()) -> [String] {
        lastProgress.filter { now.timeIntervalSince($0.value) > limit }.map(\.key).sorted()
    }
}
