import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One unit of background work on a dataset.
public struct Job: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Train a new model, resume one, or fine-tune after images or classes were added:
        /// the Trainer decides from the state folder.
        case train
        /// Write synthetic images with the latest model, per the generation policy.
        case generate
    }

    public enum State: String, Codable, Sendable {
        case queued, running, done, failed, cancelled
    }

    public let id: Int
    public let dataset: String
    public let kind: Kind
    public var state: State
    public let enqueuedAt: Date
    public var attempts: Int
    public var lastError: String?
    /// A training job's budget left after its last time slice; nil: not started.
    public var remainingSeconds: Double?
    /// A training job's whole budget (for progress across slices).
    public var budgetSeconds: Double?
    /// Not before this time (a retry after a failure such as a full disk).
    public var notBefore: Date?
    /// When that wait began: a wall clock set back since (by more than a minute) ends the
    /// wait, which would otherwise last as long again as the step (hours).
    public var waitingSince: Date?
    /// The model's training step when this run of the job started: a job that dies after
    /// moving it on has made progress, and is not a crash loop.
    public var stepAtStart: Int?
    /// In a cluster: the node that runs the job, and its lease's fencing token (every claim
    /// of any job gets a larger one). Changes to a running job name the token, and the
    /// database refuses them once the lease has passed to another node.
    public var node: String?
    public var leaseToken: Int?

    public init(id: Int, dataset: String, kind: Kind, state: State, enqueuedAt: Date, attempts: Int = 0, lastError: String? = nil,
                remainingSeconds: Double? = nil, budgetSeconds: Double? = nil, notBefore: Date? = nil, stepAtStart: Int? = nil,
                node: String? = nil, leaseToken: Int? = nil) {
        self.id = id
        self.dataset = dataset
        self.kind = kind
        self.state = state
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
        self.lastError = lastError
        self.remainingSeconds = remainingSeconds
        self.budgetSeconds = budgetSeconds
        self.notBefore = notBefore
        self.stepAtStart = stepAtStart
        self.node = node
        self.leaseToken = leaseToken
    }
}

extension Job {
    struct Damaged: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// What in a job is out of what synthd writes, or nil.
    var problem: String? {
        let seconds = [remainingSeconds, budgetSeconds].compactMap { $0 }
        if !(1...(1 << 53)).contains(id) { return "job id \(id)" }
        if !(0...(1 << 20)).contains(attempts) { return "job \(id): \(attempts) attempts" }
        if dataset.isEmpty || dataset == "." || dataset == ".." || dataset.contains("/") || dataset.contains("\0") {
            return "job \(id): dataset name '\(dataset)' is not a folder name"
        }
        if seconds.contains(where: { !$0.isFinite || $0 < 0 }) { return "job \(id): budget \(seconds)" }
        if let step = stepAtStart, step < 0 { return "job \(id): step \(step)" }
        return nil
    }
}

/// The single machine's persistent job queue: `queue.json` in the state folder, replaced atomically on
/// every change, so a kill -9 at any moment leaves the last consistent queue. Jobs that were
/// running when the daemon died go back to the queue when it is loaded.
public final class JobQueue: JobStore {
    public let path: String
    public private(set) var jobs: [Job] = []
    /// Jobs that were running when synthd died (put back in the queue by this load, attempts
    /// kept): the scheduler decides whether each resumes or is a crash loop.
    public private(set) var interrupted: [Job] = []
    private var nextID = 1

    /// A queue file that could not be decoded, moved aside by this load (kept for a person to
    /// look at), and why: the daemon starts with an empty queue and says so.
    public private(set) var setAside: (path: String, reason: String)?

    /// Loads the queue at `path`. A file that cannot be read (permissions, I/O) is an error;
    /// one that reads but does not decode (edited by hand, a damaged disk: synthd replaces it
    /// atomically) is renamed `queue.json.unreadable-<UTC time>` and the queue starts empty.
    /// Nothing is lost with it that the daemon cannot rebuild: start-up reconciliation
    /// queues training for every dataset whose files differ from what its model saw and
    /// generation for every model not yet published, from the datasets' records and the
    /// spool; quarantines live in the records. What goes is the finished jobs' history and
    /// the deaths counted toward a crash loop. Refusing to start instead (exit 78, as before)
    /// left every dataset unserved until a person came.
    public init(path: String, now: Date = Date()) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Configuration.Error(path: path, line: nil, reason: "cannot read the job queue: \(describeDecodingFailure(error))")
        }
        do {
            jobs = try RecordJSON.decode([Job].self, from: bytes)
            // JSON that decodes but holds what synthd never writes (an id of 2^63 - 1 overflowed
            // the next id, a trap at every start; a dataset named "../x" would lead its state
            // folder out of the state tree) is as unreadable as JSON that does not.
            if let problem = jobs.lazy.compactMap(\.problem).first { throw Job.Damaged(reason: problem) }
        } catch {
            jobs = []
            let reason = describeDecodingFailure(error)
            let aside = path + ".unreadable-" + Self.stamp(now)
            guard rename(path, aside) == 0 else {
                let cause = String(cString: strerror(errno))
                throw Configuration.Error(path: path, line: nil,
                                          reason: "unreadable job queue (\(reason)), and it cannot be moved aside (\(cause)); move it aside to start afresh")
            }
            setAside = (aside, reason)
            return
        }
        nextID = (jobs.map(\.id).max() ?? 0) + 1
        // Running when the daemon died: back to the queue, for the scheduler to judge.
        for index in jobs.indices where jobs[index].state == .running {
            jobs[index].state = .queued
            interrupted.append(jobs[index])
        }
    }

    /// Queues work unless the same work is already waiting. Returns the waiting job.
    @discardableResult
    public func enqueue(_ kind: Job.Kind, dataset: String, now: Date = Date()) throws -> Job {
        if let waiting = jobs.first(where: { $0.dataset == dataset && $0.kind == kind && $0.state == .queued }) {
            return waiting
        }
        let job = Job(id: nextID, dataset: dataset, kind: kind, state: .queued, enqueuedAt: now)
        nextID += 1
        jobs.append(job)
        save()
        return job
    }

    /// The next job to run: the oldest queued generation job, else the oldest queued training
    /// job, whose dataset has no job running and that is not waiting for a retry time.
    ///
    /// Generation goes first because it is short (seconds to minutes, against a training
    /// budget of many minutes) and it is what the user waits for: a dataset whose training is
    /// done publishes its images at once instead of after every other dataset's training, so
    /// the time from a drop to its first images does not grow with the queue behind it.
    /// `busy`: datasets that have a worker for other reasons (a cancelled job still winding down).
    public func next(now: Date = Date(), busy alsoBusy: Set<String> = []) -> Job? {
        let busy = Set(jobs.filter { $0.state == .running }.map(\.dataset)).union(alsoBusy)
        let ready = jobs.filter { $0.state == .queued && !busy.contains($0.dataset) && Self.isDue($0, now: now) }
        return ready.first { $0.kind == .generate } ?? ready.first
    }

    /// Whether a queued job's retry time has come (see `Job.waitingSince`).
    static func isDue(_ job: Job, now: Date) -> Bool {
        guard let notBefore = job.notBefore else { return true }
        if let since = job.waitingSince, now < since.addingTimeInterval(-60) { return true }
        return notBefore <= now
    }

    /// The dataset's jobs that are queued or running.
    public func pending(dataset: String) -> [Job] {
        jobs.filter { $0.dataset == dataset && [.queued, .running].contains($0.state) }
    }

    /// One machine's queue: a cancelled job winding down is its caller's own worker (`busy`).
    public func holdsWork(dataset: String) -> Bool { !pending(dataset: dataset).isEmpty }

    public func markRunning(_ id: Int, stepAtStart: Int? = nil) throws {
        try update(id) { $0.state = .running; $0.attempts += 1; $0.stepAtStart = stepAtStart }
    }

    /// An interrupted job that had made progress: its deaths start counting afresh, and a
    /// training job resumes with the budget it had left.
    public func resume(_ id: Int, remainingSeconds: Double?, budgetSeconds: Double?) throws {
        try update(id) {
            $0.attempts = 0
            if let remainingSeconds { $0.remainingSeconds = remainingSeconds }
            if let budgetSeconds { $0.budgetSeconds = budgetSeconds }
        }
    }
    public func markDone(_ id: Int) throws { try update(id) { $0.state = .done; $0.lastError = nil } }
    public func markFailed(_ id: Int, error: String) throws { try update(id) { $0.state = .failed; $0.lastError = error } }

    /// Back to queued where it stands (the daemon is stopping), with the budget it has left.
    public func pause(_ id: Int, remainingSeconds: Double?, budgetSeconds: Double? = nil) throws {
        try update(id) {
            $0.state = .queued
            $0.attempts = 0
            if let remainingSeconds { $0.remainingSeconds = remainingSeconds }
            if let budgetSeconds { $0.budgetSeconds = budgetSeconds }
        }
    }

    /// Back to the end of the queue: a training job whose time slice ended (with the budget
    /// it has left), or a failed job to be tried again after `notBefore`.
    public func requeue(_ id: Int, remainingSeconds: Double? = nil, budgetSeconds: Double? = nil, notBefore: Date? = nil,
                        error: String? = nil) throws {
        guard let index = jobs.firstIndex(where: { $0.id == id }) else { return }
        var job = jobs.remove(at: index)
        job.state = .queued
        if let remainingSeconds { job.remainingSeconds = remainingSeconds }
        if let budgetSeconds { job.budgetSeconds = budgetSeconds }
        job.notBefore = notBefore
        job.waitingSince = notBefore == nil ? nil : Date()
        job.lastError = error
        if error == nil { job.attempts = 0 }  // a time slice is not a failed attempt
        jobs.append(job)
        save()
    }

    /// Cancels the dataset's waiting and running jobs (its outputs stay). Returns the ids.
    @discardableResult
    public func cancel(dataset: String) throws -> [Int] {
        var cancelled: [Int] = []
        for index in jobs.indices where jobs[index].dataset == dataset && [.queued, .running].contains(jobs[index].state) {
            jobs[index].state = .cancelled
            cancelled.append(jobs[index].id)
        }
        if !cancelled.isEmpty { save() }
        return cancelled
    }

    /// Drops finished jobs beyond the newest `keep` (the queue file stays small).
    public func prune(keep: Int = 200) throws {
        let finished = jobs.filter { [.done, .failed, .cancelled].contains($0.state) }
        guard finished.count > keep else { return }
        let drop = Set(finished.prefix(finished.count - keep).map(\.id))
        jobs.removeAll { drop.contains($0.id) }
        save()
    }

    private func update(_ id: Int, _ change: (inout Job) -> Void) throws {
        guard let index = jobs.firstIndex(where: { $0.id == id }) else { return }
        change(&jobs[index])
        save()
    }

    /// `20261203T011500Z`: a file name's time, sortable.
    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    /// Why the file last failed to be written (a full disk, the state folder removed), while
    /// it lags behind the queue in memory; nil when it is up to date. The queue in memory
    /// stays right and the daemon goes on with it: a change whose save failed is still made
    /// (a training done still queues its generation), and `saveIfBehind` tries again. A kill
    /// meanwhile loses only what start-up reconciliation rebuilds from the spool and records.
    public private(set) var saveFailure: (any Error)?

    /// Writes the file again if the last write failed; returns why it still cannot be.
    @discardableResult
    public func saveIfBehind() -> (any Error)? {
        if saveFailure != nil { save() }
        return saveFailure
    }

    private func save() {
        do {
            // The folder too: one removed by hand (`rm -rf state`) is made again.
            try createFolders((path as NSString).deletingLastPathComponent)
            try writeFileAtomically(path: path, bytes: try RecordJSON.encode(jobs))
            saveFailure = nil
        } catch {
            saveFailure = error
        }
    }
}

extension JobQueue {
    public func snapshot() -> [Job] { jobs }

    public func claim(now: Date, busy: Set<String>, stepAtStart: (String) -> Int) throws -> Job? {
        guard let job = next(now: now, busy: busy) else { return nil }
        try markRunning(job.id, stepAtStart: stepAtStart(job.dataset))
        return jobs.first { $0.id == job.id }
    }

    public func hasWaiting(now: Date, busy: Set<String>) -> Bool { next(now: now, busy: busy) != nil }

    public func queuedCount() -> Int { jobs.filter { $0.state == .queued }.count }

    public func resume(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws {
        try resume(job.id, remainingSeconds: remainingSeconds, budgetSeconds: budgetSeconds)
    }
    public func markDone(_ job: Job) throws { try markDone(job.id) }
    public func markFailed(_ job: Job, error: String) throws { try markFailed(job.id, error: error) }
    public func pause(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?) throws {
        try pause(job.id, remainingSeconds: remainingSeconds, budgetSeconds: budgetSeconds)
    }
    public func requeue(_ job: Job, remainingSeconds: Double?, budgetSeconds: Double?, notBefore: Date?, error: String?) throws {
        try requeue(job.id, remainingSeconds: remainingSeconds, budgetSeconds: budgetSeconds, notBefore: notBefore, error: error)
    }

    /// The jobs found running when the queue was loaded, once.
    public func takeInterrupted() -> [Job] {
        defer { interrupted = [] }
        return interrupted
    }
}
