import Foundation

/// Decides when a dataset has settled: no change for `settle` seconds, or, once a `.ready`
/// file has appeared, for `readyQuiet` seconds. A dataset being copied keeps changing, so it
/// is never picked up half-written. Times are on the monotonic clock: a wall clock set back
/// would hold every change for as long.
public struct SettleTracker: Sendable {
    public typealias Moment = ContinuousClock.Instant
    public private(set) var settle: TimeInterval
    /// How long a dataset with a `.ready` file must be quiet. Not zero: a `cp -r` of a folder
    /// that already holds `.ready` (one copied from another spool) may copy that file first,
    /// and the dataset would be read mid-copy, its half-written images refused as damaged.
    /// The files of a copy follow each other by milliseconds; two quiet seconds end it.
    public static let readyQuiet: TimeInterval = 2
    /// The file in a dataset folder that says it is complete.
    public static let readyFileName = ".ready"

    /// Whether the dataset folder at `path` holds its `.ready` file.
    public static func isMarkedReady(_ path: String) -> Bool { access(path + "/" + readyFileName, F_OK) == 0 }
    private var lastChange: [String: Moment] = [:]
    private var markedReady: Set<String> = []

    public init(settle: TimeInterval) { self.settle = settle }

    /// A tracker with a new settle time that keeps what `other` was waiting for.
    public init(settle: TimeInterval, carrying other: SettleTracker) {
        self = other
        self.settle = settle
    }

    /// Datasets with a change not yet reported ready.
    public var pending: [String] { lastChange.keys.sorted() }

    public mutating func note(_ event: SpoolEvent, at time: Moment = .now) {
        switch event {
        case .changed(let dataset): lastChange[dataset] = time
        case .ready(let dataset):
            lastChange[dataset] = time
            markedReady.insert(dataset)
        case .removed(let dataset):
            lastChange[dataset] = nil
            markedReady.remove(dataset)
        case .rescan, .watchLimit, .spoolMissing, .strayFile: break
        }
    }

    /// The datasets that are ready now, each reported once per burst of changes.
    public mutating func takeReady(at now: Moment = .now) -> [String] {
        let ready = lastChange.filter { dataset, last in
            last.duration(to: now) >= .seconds(markedReady.contains(dataset) ? min(settle, Self.readyQuiet) : settle)
        }.keys.sorted()
        for dataset in ready {
            lastChange[dataset] = nil
            markedReady.remove(dataset)
        }
        return ready
    }
}
