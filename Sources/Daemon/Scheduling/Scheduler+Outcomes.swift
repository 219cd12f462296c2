import Foundation
import GAN
import Logging

/// How a job's end becomes the next job: the next one started, an outcome recorded and what
/// follows it queued, a death without progress counted, a failure retried or held
/// (quarantine) until the dataset changes or, on a full disk, until space is freed.
extension Scheduler {
    /// The next job to start, marked running. `busy`: datasets that still have a worker (one
    /// whose job was cancelled may still be stopping); two workers never share a state folder.
    public func startNext(now: Date = Date(), busy: Set<String> = []) -> Job? {
        if let hold = spaceHold {
            let free = DiskSpace.freeBytes(at: hold.folder)
            if hold.holds(now: now, free: free) { return nil }
            spaceHold = nil
            let freed = free.map { "\(DiskSpace.megabytes($0)) free" } ?? "free space unknown"
            logger.info("jobs start again (the file system of \(hold.folder): \(freed))")
        }
        let job: Job?
        do { job = try queue.claim(now: now, busy: busy, stepAtStart: checkpointedSteps) } catch {
            logger.error("cannot take the next job: \(error)")
            return nil
        }
        if let job {
            cancellations.remove(job.dataset)
            // Unknown until the worker has fingerprinted the files it trains on (see `decide`).
            if job.kind == .train { store.update(job.dataset) { $0.trainingFingerprint = nil } }
        }
        return job
    }

    /// Whether anything (a folder, a file, a link) is at `path`.
    func entryExists(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 || errno != ENOENT
    }

    /// Records how a job ended and queues what follows.
    public func finish(_ job: Job, _ outcome: JobOutcome, stopping: Bool, now: Date = Date()) {
        let name = job.dataset
        let log = logger.with(dataset: name)
        do {
            switch outcome {
            case .completed(let fingerprint):
                // The trained fingerprint first, then the job done: another node's `decide`
                // reads in the other order, so it never sees neither (and trains again).
                if job.kind == .train {
                    store.update(name) {
                        $0.trainedFingerprint = fingerprint
                        $0.nothingToWriteFor = nil  // a model now: its files decide
                        $0.trainedMinutes = $0.roundMinutes ?? $0.trainedMinutes
                        $0.roundMinutes = nil
                        $0.progress = 1
                        $0.eta = nil
                    }
                }
                try queue.markDone(job)
                if job.kind == .train { log.info("training done") }
                if isCancelled(name) && !directoryExists(configuration.spool + "/" + name) {
                    markRemoved(name)  // ended after its dataset left (it was said "done")
                } else if job.kind == .train {
                    if !isCancelled(name) {
                        enqueue(.generate, name, detail: "training done")
                        // What synthd.toml asked while it trained (more minutes, another model):
                        // the round read it when it began.
                        followSettings(name, jobs: pending(name))
                    }
                } else if pending(name).isEmpty && (isCancelled(name) || !followSettings(name, jobs: [])) {
                    // The generation read synthd.toml when it began: one changed since asks for another.
                    store.update(name) { $0.phase = .done; $0.detail = nil; $0.progress = 1; $0.eta = nil }
                }
            case .sliceEnded(let remaining, let budget):
                try queue.requeue(job, remainingSeconds: remaining, budgetSeconds: budget, notBefore: nil, error: nil)
                store.update(name) { $0.phase = .queued; $0.detail = "time slice over; \(Int(remaining)) s of training left" }
            case .stopped(let remaining, let budget):
                if isCancelled(name) {
                    // Cancelled because the folder left; it may be back already, queued anew.
                    if !directoryExists(configuration.spool + "/" + name) { markRemoved(name) }
                } else {
                    try queue.pause(job, remainingSeconds: remaining, budgetSeconds: budget)
                    store.update(name) { $0.phase = .queued; $0.detail = "stopped with the daemon; continues at the next start"; $0.eta = nil }
                }
            case .failed(let message, _, _) where isCancelled(name):
                // Cancelled while it ran (its dataset left the spool): what it failed on is
                // moot. It was retried on a timer, and a full disk held every other job: seen
                // in a soak, a dataset deleted to free space while its last checkpoint waited.
                log.info("\(job.kind.rawValue) ended after it was cancelled (the dataset left the spool): \(message)")
                if !directoryExists(configuration.spool + "/" + name) { markRemoved(name) }
            case .failed(let message, .whenChanged, _) where !entryExists(configuration.spool + "/" + name):
                // The folder left the spool while the job read it (renamed, moved out,
                // deleted): the job failed on a folder that is gone, and the dataset was held
                // as failed ("not a folder ...") until it changed, with an error line. It ends
                // as a removal does (the removal's own event may come after).
                log.info("\(job.kind.rawValue) ended: the dataset left the spool while it ran (\(message))")
                removed(name)
            case .failed(let message, let retry, let key):
                let fullFolder = retry.fullFolder, later = retry != .whenChanged
                let again = later && (fullFolder == nil || job.attempts < Self.maxDiskFullAttempts) && !stopping
                if again {
                    let delay = min(Self.maxRetryDelay, 30 * pow(2, Double(min(20, max(0, job.attempts - 1)))))
                    try queue.requeue(job, remainingSeconds: nil, budgetSeconds: nil, notBefore: now.addingTimeInterval(delay), error: message)
                    log.error("\(job.kind.rawValue) failed, retrying in \(Int(delay)) s: \(message)")
                    store.update(name) { $0.phase = .failed; $0.lastError = message; $0.retryAt = now.addingTimeInterval(delay) }
                    if let fullFolder { holdForSpace(on: fullFolder, until: now.addingTimeInterval(delay), now: now) }
                } else if stopping && later {
                    // Failed while the daemon stops: tried again at the next start.
                    try queue.pause(job, remainingSeconds: nil, budgetSeconds: nil)
                    log.error("\(job.kind.rawValue) failed while stopping, tried again at the next start: \(message)")
                    store.update(name) { $0.phase = .failed; $0.lastError = message; $0.retryAt = nil; $0.eta = nil }
                } else if let fullFolder {
                    try queue.markFailed(job, error: message)
                    log.error("\(job.kind.rawValue) failed \(job.attempts) times on a full disk: \(message); tried again when space is freed")
                    quarantine(name, message: message, key: key, waitingForSpace: (job.kind, fullFolder))
                    holdForSpace(on: fullFolder, until: now.addingTimeInterval(Self.maxRetryDelay), now: now)
                } else {
                    try queue.markFailed(job, error: message)
                    log.error("\(job.kind.rawValue) failed: \(message); not tried again until the dataset's files or synthd.toml change")
                    quarantine(name, message: message, key: key)
                }
            }
            try queue.prune(keep: 200)
        } catch let refusal as any JobRefusal where refusal.jobNoLongerHeld && isCancelled(name) {
            // It ended while its dataset left the spool, and was cancelled (in a cluster, by
            // whichever node saw the folder go): nothing is left to record for it. This was
            // logged as an error that said another node might run the job now.
            log.info("job \(job.id) (\(job.kind.rawValue)) ended after it was cancelled; nothing more is recorded for it")
        } catch {
            logger.error("cannot save the job queue: \(error)")
        }
        saveQueueIfBehind()
    }

    /// Deaths in a row without progress after which a job is a crash loop.
    static let maxInterruptions = 3

    /// A job that was running when synthd died (kill -9, OOM killer, crash, power loss).
    /// Training that had moved its model on since that run started made progress: it resumes
    /// with the budget it had left, and its deaths count afresh. A job that dies
    /// `maxInterruptions` times in a row without progress (a dataset that crashes synthd while
    /// it loads, say) fails, and its dataset waits for a change: no restart loop.
    func judgeInterruption(_ job: Job) {
        let runtime = store.get(job.dataset)
        let progressed = job.kind == .train && checkpointedSteps(job.dataset) > (job.stepAtStart ?? .max)
        do {
            if progressed {
                let remaining = runtime.budgetSeconds.flatMap { total in runtime.progress.map { max(0, (1 - $0) * total) } }
                try queue.resume(job, remainingSeconds: remaining, budgetSeconds: runtime.budgetSeconds)
            } else if job.attempts >= Self.maxInterruptions {
                let message = "synthd stopped while running this job \(job.attempts) times in a row without progress "
                    + "(a crash, the OOM killer, kill -9, or a job stuck past stall_minutes); not retried until the dataset changes"
                try queue.markFailed(job, error: message)
                logger.error("\(job.kind.rawValue) failed: \(message)", metadata: ["dataset": "\(job.dataset)"])
                quarantine(job.dataset, message: message)
            }
        } catch {
            logger.error("cannot save the job queue: \(error)")
        }
    }

    /// What decides whether a failed dataset may be tried again: its files (the fingerprint)
    /// and its own `synthd.toml` (size and time), so that fixing either lifts the quarantine.
    /// nil when the folder cannot be scanned.
    func changeKey(_ name: String, fingerprint: DatasetFingerprint? = nil) -> String? {
        let folder = configuration.spool + "/" + name
        guard let fingerprint = fingerprint ?? (try? DatasetFingerprint.of(folder, confinedTo: configuration.spool)) else { return nil }
        return fingerprint.changeKey(folder: folder)
    }

    /// What `synthd status` says of a held dataset after "failed", with the way to try it again
    /// as it is (an empty synthd.toml is valid and changes nothing else; touching one changes
    /// its time).
    func quarantineDetail(_ name: String) -> String {
        "tried again when its images, classes or synthd.toml change; "
            + "to try again as it is: touch \(configuration.spool)/\(name)/synthd.toml"
    }

    /// Marks the dataset failed until its files or settings change (see `changeKey`), or
    /// with `waitingForSpace` (the job, and the state folder or the output), also until that
    /// folder's file system has space again.
    /// `key`: the dataset's change key when the job started (its worker takes it, so that the
    /// main loop does not scan); nil: taken here. `detail`: what status says instead of
    /// `quarantineDetail`.
    func quarantine(_ name: String, message: String, key known: String? = nil,
                    waitingForSpace waiting: (job: Job.Kind, folder: String)? = nil, detail: String? = nil) {
        let key = known ?? changeKey(name)
        let full = waiting.map { (folder: $0.folder, what: $0.folder == configuration.state ? "the state folder" : "the output") }
        let free = full.flatMap { DiskSpace.freeBytes(at: $0.folder) }
        store.update(name) {
            $0.phase = .failed
            $0.lastError = message
            $0.detail = full.map { "the disk stayed full; tried again when space is freed on \($0.what)'s file system, or the dataset changes" }
                ?? detail ?? quarantineDetail(name)
            $0.quarantinedFor = key ?? "unscannable"
            $0.freeBytesAtFailure = free
            $0.fullFolder = full?.folder
            $0.failedJob = waiting?.job
            $0.retryAt = nil
            $0.eta = nil
        }
    }

    /// Starts no job until space is freed on `folder`'s file system or `until` (see
    /// `SpaceHold`); said once, when it begins.
    func holdForSpace(on folder: String, until: Date, now: Date) {
        if let hold = spaceHold, hold.holds(now: now, free: nil) {
            spaceHold = SpaceHold(folder: hold.folder, freeBytesAtFailure: hold.freeBytesAtFailure, until: max(until, hold.until))
            return
        }
        let free = DiskSpace.freeBytes(at: folder)
        spaceHold = SpaceHold(folder: folder, freeBytesAtFailure: free, until: until)
        let waiting = (try? queue.queuedCount()) ?? 0
        let message = "the file system of \(folder) is full (\(free.map(DiskSpace.megabytes) ?? "free space unknown") free): "
            + "no job starts until \(DiskSpace.megabytes(SpaceHold.freedEnough)) more is freed there, or for "
            + "\(Int(until.timeIntervalSince(now).rounded())) s; \(waiting) queued jobs wait"
        logger.warning("\(message)")
    }

    /// Queues again the jobs that failed on a full disk, once its free space has grown by
    /// 64 MiB since. Call it now and then (the daemon: every 30 s). A retry that still does not
    /// fit fails at once on the free-space check, so a small gain costs little.
    public func retryWhereSpaceWasFreed() {
        var freeAt: [String: Int?] = [:]
        for name in store.datasets {
            let runtime = store.get(name)
            guard let before = runtime.freeBytesAtFailure, let kind = runtime.failedJob else { continue }
            let folder = runtime.fullFolder ?? configuration.output
            if freeAt[folder] == nil { freeAt[folder] = DiskSpace.freeBytes(at: folder) }
            guard let free = freeAt[folder] ?? nil, free >= before + SpaceHold.freedEnough else { continue }
            logger.info("space freed on the file system of \(folder) (\(free >> 20) MiB free); trying again", metadata: ["dataset": "\(name)"])
            store.update(name) { $0.liftQuarantine() }
            enqueue(kind, name, detail: "space freed")
        }
    }
}
