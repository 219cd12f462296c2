import Engine
import Foundation
import Spool

/// Scans of dataset folders (fingerprints: a `stat` of every image) off the daemon's main
/// loop: a dataset of 200,000 files takes seconds to scan, and the loop must answer SIGTERM
/// and feed the watchdog meanwhile. The loop posts requests and collects results on its next
/// turn. `inline` scanners (tests, tools) answer at once on the calling thread.
public final class DatasetScanner: @unchecked Sendable {
    public enum Request: Sendable {
        /// The dataset settled: is it new, changed, or as its model saw it?
        case fingerprint(dataset: String)
        /// When did these datasets last change, and what do they hold (start-up, rescan,
        /// periodic scan)? `asOf`: when it was asked, on the wall clock (the files' times are
        /// on it) and on the monotonic one (the settle tracker's). `periodic`: a periodic scan's.
        case lastModified(datasets: [String], asOf: Date, at: Moment, periodic: Bool)
    }

    /// One dataset's answer to `lastModified`: its newest time and its fingerprint's value
    /// (both nil when it could not be scanned).
    public struct Look: Sendable {
        public var dataset: String
        public var modified: Date?
        public var fingerprint: String?
        /// The fingerprint with its own synthd.toml's size and time (`DatasetFingerprint.changeKey`):
        /// what looks compare, so that a synthd.toml written where inotify does not hear it
        /// (another machine's write to an NFS spool) is seen by the next periodic look.
        public var changeKey: String? = nil
        /// Whether it holds a `.ready` file: complete, as the watcher takes one moved in with it.
        public var markedReady = false
    }

    public enum Result: @unchecked Sendable {
        case fingerprint(dataset: String, Swift.Result<DatasetFingerprint, any Error>)
        case lastModified([Look], asOf: Date, at: Moment, periodic: Bool)
    }

    let spool: String
    private let inline: Bool
    private let condition = NSCondition()
    private var requests: [Request] = []
    private var results: [Result] = []
    private var stopped = false

    public init(spool: String, inline: Bool) {
        self.spool = spool
        self.inline = inline
        guard !inline else { return }
        let thread = Thread { [self] in work() }
        thread.name = "synthd scanner"
        thread.start()
    }

    /// Ends the scanning thread after the request it is on.
    public func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    public func request(_ request: Request) {
        if inline {
            let result = answer(request)
            condition.lock()
            results.append(result)
            condition.unlock()
            return
        }
        condition.lock()
        requests.append(request)
        condition.signal()
        condition.unlock()
    }

    /// The results that arrived since the last call, in the order of their requests.
    public func takeResults() -> [Result] {
        condition.lock()
        defer { condition.unlock() }
        let taken = results
        results.removeAll()
        return taken
    }

    /// Whether requests are still being worked on (for tests and a clean shutdown).
    public var isBusy: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !requests.isEmpty || working
    }

    private var working = false

    /// Requests asked for and not yet answered, and fingerprints taken so far (what a scan
    /// costs: tests count them).
    public var outstanding: Int {
        condition.lock()
        defer { condition.unlock() }
        return requests.count + (working ? 1 : 0)
    }
    public var fingerprintsTaken: Int {
        condition.lock()
        defer { condition.unlock() }
        return fingerprintCount
    }
    private var fingerprintCount = 0

    private func work() {
        while true {
            condition.lock()
            while requests.isEmpty && !stopped { condition.wait() }
            if stopped { condition.unlock(); return }
            let request = requests.removeFirst()
            working = true
            condition.unlock()
            let result = answer(request)
            condition.lock()
            results.append(result)
            working = false
            condition.unlock()
        }
    }

    private func answer(_ request: Request) -> Result {
        switch request {
        case .fingerprint(let name):
            condition.lock()
            fingerprintCount += 1
            condition.unlock()
            return .fingerprint(dataset: name, Swift.Result { try DatasetFingerprint.of(spool + "/" + name, confinedTo: spool) })
        case .lastModified(let names, let wall, let moment, let periodic):
            return .lastModified(names.map { name in
                let folder = spool + "/" + name
                let fingerprint = try? DatasetFingerprint.of(folder, confinedTo: spool)
                return Look(dataset: name, modified: fingerprint?.lastModified, fingerprint: fingerprint?.value,
                            changeKey: fingerprint?.changeKey(folder: folder), markedReady: SettleTracker.isMarkedReady(folder))
            }, asOf: wall, at: moment, periodic: periodic)
        }
    }
}
