import CUDA
import Engine
import Foundation
import Logging
import Spool
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `synthd run`: the long-running service.
///
/// Threads: the spool watcher (inotify) posts events; one worker thread per running
/// job trains or generates; this loop, on the calling thread, owns the scheduler and polls
/// five times a second: signals, events, settled datasets, finished jobs, new jobs, systemd
/// notifications. Nothing blocks it for long, so SIGTERM is answered at once: workers stop
/// after their current step, checkpoint, and the process exits 0 well within 10 seconds.
public final class Service {
    let configurationPath: String?
    let overrides: (inout Configuration) -> Void
    let logger: Logger
    let notifier = SystemdNotifier()
    private var warnedAboutPriority = false
    /// Joins the cluster named by `[cluster] database` (the `Cluster` module's `ClusterNode.join`),
    /// given the configuration and the device's label.
    public typealias JoinCluster = (Configuration, String) throws -> any ClusterMembership
    let joinCluster: JoinCluster?

    public init(configurationPath: String?, overrides: @escaping (inout Configuration) -> Void, logger: Logger,
                joinCluster: JoinCluster? = nil) {
        self.configurationPath = configurationPath
        self.overrides = overrides
        self.logger = logger
        self.joinCluster = joinCluster
    }

    /// The configuration file, with the command line's overrides applied.
    public func loadConfiguration() throws(Configuration.Error) -> Configuration {
        var configuration = try configurationPath.map { path throws(Configuration.Error) in try Configuration.load(path: path) }
            ?? Configuration()
        overrides(&configuration)
        try configuration.checkFolders(source: configurationPath ?? "the command line")
        return configuration
    }

    /// Runs until SIGTERM or SIGINT. Throws only when it cannot start.
    public func run() throws {
        Signals.install(reloadOnHangup: true)
        let configuration = try loadConfiguration()
        // One daemon per state folder, for the process's life: a second one would rewrite the
        // queue and train the same models. Taken before anything in the folder is touched.
        // Nodes of a cluster share the state folder: the database's leases keep each
        // dataset's folder to one writer instead.
        try createFolders(configuration.state)
        var ownership = configuration.isClustered ? nil : try FileLock(configuration.state + "/" + DaemonPresence.lockName, holder: "synthd run")
        defer { ownership?.release() }
        var lostOwnership: (any Error)?, reportedLockTrouble = false
        // One daemon per output tree too (two with their own state folders and one output
        // folder): another's start-up sweep removes this one's generations in progress as an
        // interrupted run's leftovers, and both swap the same links. Not in a cluster, whose
        // nodes share the tree and never sweep it.
        var outputOwnership = configuration.isClustered ? nil : try Self.lockOutput(configuration)
        defer { outputOwnership?.release() }
        var reportedOutputLockTrouble = false
        lowerPriority(to: configuration.nice)
        let search = CUDALibrarySearch(explicitFolders: [configuration.cudaLibraries])
        let request = DeviceRequest(configuration.device)!
        let device = try DeviceChoice.choose(request, for: .training, probe: CUDAProbe(search: search))
        // Kernels compiled once per GPU architecture and kept with the state.
        let computeDevice = try device.open(search: search, kernelCache: configuration.state + "/kernels",
                                            products: configuration.gpuProducts)
        let precision = computeDevice == nil
            ? ", " + ComputeContext(threads: 1, products: configuration.bfloat16 ? .bfloat16 : .float32).productsDescription
                + (configuration.bfloat16 ? "" : " ([service] bfloat16 = false)")
            : ", \(configuration.gpuProducts)" + (configuration.gpuProducts == Configuration().gpuProducts ? ""
                : " ([service] gpu_products = \"\(configuration.gpuProducts.rawValue)\")")
        logger.info("device: \(device.label) (\(device.reason)\(precision))")
        var membership: (any ClusterMembership)?
        if configuration.isClustered {
            guard let joinCluster else { throw Configuration.Error(path: configurationPath ?? "the command line", line: nil,
                                                                   reason: "[cluster] database is set, but this synthd cannot join a cluster") }
            membership = try joinCluster(configuration, device.label)
        }
        // A cluster's leftovers may be another node's files in progress: there only the datasets
        // that no one holds are swept (by their locks, not by pids).
        let leftovers = configuration.isClustered ? LeftoverSweep.sweepIdleDatasets(state: configuration.state, output: configuration.output)
            : LeftoverSweep.sweep(state: configuration.state, output: configuration.output)
        if !leftovers.isEmpty {
            let listed = leftovers.prefix(10).joined(separator: ", ") + (leftovers.count > 10 ? ", ..." : "")
            logger.notice("removed \(leftovers.count) leftovers of an interrupted run: \(listed)")
        }
        defer { membership?.leave() }
        let scheduler = try Scheduler(configuration: configuration, logger: logger,
                                      compute: ComputeDevice(computeDevice, label: device.label, request: request), scanInBackground: true,
                                      jobs: membership?.jobs, shared: membership?.runtime)
        defer { scheduler.scanner.stop() }
        if let membership {
            scheduler.spaceHoldChanged = { membership.waitingForSpace($0?.statusText) }
            scheduler.spoolAbsenceChanged = { membership.spoolMissing($0?.statusText) }
            scheduler.mayScan = { membership.mayScan($0) }
            scheduler.archives.mayUnpack = { membership.mayScan($0) }
        }
        defer { scheduler.archives.stop() }

        let events = Mailbox<SpoolEvent>()
        let watcher = SpoolWatcher(spool: configuration.spool)
        try createFolders(configuration.spool)
        try watcher.start { events.post($0) }
        defer { watcher.stop() }
        scheduler.reconcile()
        let source = configurationPath.map { ", configuration \($0)" } ?? ", built-in configuration"
        logger.info("synthd running: spool \(configuration.spool), output \(configuration.output), state \(configuration.state)\(source)")

        let finished = Mailbox<(Job, JobOutcome)>()
        var running: [Int: Job] = [:]
        scheduler.isRunning = { dataset in running.values.contains { $0.dataset == dataset } }
        let stopping = SharedFlag(), othersWaiting = SharedFlag()
        notifier.notify("READY=1\nSTATUS=\(scheduler.summary(running: []))")
        // Every timer of the loop is on the monotonic clock (`Moment`): on the wall clock, a
        // step back by two hours stopped the watchdog's pings and every job for two hours.
        let started = Moment.now, longAgo = started.adding(seconds: -1e9)
        var lastStatus = "", lastStatusTime = longAgo, lastWatchdog = longAgo
        var lastPriority = started, lastSpaceCheck = started, lastPoll = started, reportedStall = false
        var stallWatch = StallWatch(limit: scheduler.configuration.stallMinutes * 60)
        // Without systemd's watchdog nothing restarts a stuck synthd: it watches itself (a stuck
        // job from this loop, a stuck loop from a thread of its own) and exits.
        let selfWatched = notifier.watchdogInterval == nil
        let loopGuard = selfWatched ? LoopGuard(limit: scheduler.configuration.stallMinutes * 60) { [logger] seconds in
            let message = "the main loop has not turned for \(durationText(seconds)) (a hung file system?); synthd exits "
                + "(status \(JobsStalled.exitStatus)) so that whatever supervises it restarts it; jobs resume from their last checkpoints"
            logger.critical("\(message)")
            _exit(JobsStalled.exitStatus)
        } : nil
        defer { loopGuard?.stop() }
        var stalledJobs: JobsStalled?, lastTurn = Moment.now
        // A cluster's queue is a database: ask it about once a second, not every turn.
        let queueInterval: TimeInterval = membership == nil ? 0 : 1
        var lastQueueLook = longAgo, lastLeaseLook = longAgo, wasDraining = false

        func collect() {
            let ended = finished.take()
            for (job, outcome) in ended {
                running[job.id] = nil
                if membership?.stopReason(job) == .cancelled { scheduler.cancelledElsewhere(job.dataset) }
                // Its lease let go of first: renewed once the end was recorded, the lease of a
                // job done read as lost to another node (an error line in a soak of two nodes).
                membership?.ended(job)
                scheduler.finish(job, outcome, stopping: stopping.isSet)
                lastQueueLook = longAgo  // a worker is free: look for the next job now
            }
            if !ended.isEmpty && running.isEmpty { FreedMemory.release() }
        }

        while !Signals.stopRequested && lostOwnership == nil && stalledJobs == nil {
            loopGuard?.feed()
            if lastTurn.secondsAgo > LoopGuard.pauseGap {
                // Stopped (Ctrl-Z) or asleep: no job could progress meanwhile.
                stallWatch.restartClocks(at: .now)
            }
            lastTurn = .now
            if Signals.takeReload() { reload(scheduler, membership: membership) }
            if Signals.takeDrain() {
                if let membership { membership.drain() } else { logger.warning("SIGUSR1 (drain) ignored: this synthd is not in a cluster") }
            }
            if let membership, membership.isDraining != wasDraining {
                wasDraining = membership.isDraining
                if wasDraining { logger.notice("draining: running slices end and go back to the queue; no new jobs") }
            }
            for event in events.take() { scheduler.handle(event) }
            scheduler.takeSettled()
            scheduler.takeArchives()
            collect()
            if let membership, lastLeaseLook.secondsAgo >= max(1, scheduler.configuration.leaseSeconds / 3) {
                // Jobs of nodes whose leases expired (while the database is away, the keeper
                // retries it and says so once; asking here too would only repeat that).
                if membership.databaseAnswers {
                    scheduler.takeInterrupted()
                    scheduler.sweepUnpublished(busy: Set(running.values.map(\.dataset)))
                }
                lastLeaseLook = .now
                for job in running.values where membership.stopReason(job) == .cancelled { scheduler.cancelledElsewhere(job.dataset) }
            }
            var busy = Set(running.values.map(\.dataset))
            if lastQueueLook.secondsAgo >= queueInterval {
                lastQueueLook = .now
                while running.count < scheduler.configuration.concurrency, membership?.takesJobs ?? true,
                      let job = scheduler.startNext(busy: busy) {
                    running[job.id] = job
                    busy.insert(job.dataset)
                    membership?.started(job)
                    startWorker(job, runner: scheduler.runner, threads: threadsPerJob(scheduler.configuration),
                                products: scheduler.configuration.bfloat16 ? .bfloat16 : .float32,
                                cancellations: scheduler.cancellations, membership: membership,
                                stopping: stopping, othersWaiting: othersWaiting, finished: finished)
                }
                othersWaiting.set(membership?.isDraining == true || ((try? scheduler.queue.hasWaiting(now: Date(), busy: busy)) ?? false))
            }
            let now = Moment.now
            if lastStatusTime.seconds(to: now) >= 2 {
                let status = scheduler.summary(running: Array(running.values))
                if status != lastStatus {
                    notifier.notify("STATUS=\(status)")
                    lastStatus = status
                }
                lastStatusTime = now
            }
            let pollSeconds = scheduler.pollSeconds
            if let pollSeconds, lastPoll.seconds(to: now) >= pollSeconds {
                scheduler.poll()
                lastPoll = now
            }
            if lastSpaceCheck.seconds(to: now) >= 30 {
                scheduler.saveQueueIfBehind()
                scheduler.forgetRemovedState()
                scheduler.forgetLongRemoved()
                scheduler.retryWhereSpaceWasFreed()
                scheduler.republishRemovedOutputs()
                lastSpaceCheck = now
            }
            if lastPriority.seconds(to: now) >= 5 {
                lowerPriority(to: scheduler.configuration.nice)
                lastPriority = now
                if let held = ownership, !held.isAtItsPath {
                    switch retake(held, reported: &reportedLockTrouble) {
                    case .success(let again):
                        ownership = again
                        // Removed with the state folder, perhaps: write the queue and look
                        // at every dataset whose state went with it now, not in 30 s.
                        scheduler.saveQueueIfBehind()
                        scheduler.forgetRemovedState()
                    case .failure(let error): lostOwnership = error
                    case nil: break
                    }
                }
                // The output's lock likewise (`rm -rf out`: its outputs are published again).
                if let held = outputOwnership, !held.isAtItsPath {
                    switch retake(held, folder: "output folder", holder: Self.outputHolder(scheduler.configuration),
                                  reported: &reportedOutputLockTrouble) {
                    case .success(let again): outputOwnership = again
                    case .failure(.held(_, let holder)): lostOwnership = OutputFolderInUse(output: scheduler.configuration.output, holder: holder)
                    case .failure(let error): lostOwnership = error
                    case nil: break
                    }
                }
            }
            if lastWatchdog.seconds(to: now) >= notifier.watchdogInterval ?? Self.selfWatchInterval(limit: stallWatch.limit) {
                stallWatch.setLimit(scheduler.configuration.stallMinutes * 60)
                let progress = Dictionary(running.values.map { ($0.dataset, scheduler.store.get($0.dataset).updatedAt) }) { a, _ in a }
                let stalled = stallWatch.stalled(progress: progress, now: now)
                let names = stalled.joined(separator: ", "), minutes = durationText(stallWatch.limit)
                if stalled.isEmpty {
                    notifier.notify("WATCHDOG=1")
                    reportedStall = false
                } else if selfWatched {
                    stalledJobs = JobsStalled(datasets: stalled, limit: stallWatch.limit)
                    let message = "no progress for \(minutes) from the job of \(names) (a hung file system or GPU?); synthd stops "
                        + "and exits (status \(JobsStalled.exitStatus)) so that whatever supervises it restarts it, as systemd's "
                        + "watchdog would: the job resumes from its last checkpoint, and a dataset whose job is cut short "
                        + "three times in a row is held as failed"
                    logger.error("\(message)")
                } else if !reportedStall {
                    reportedStall = true
                    logger.error("no progress for \(minutes) from the job of \(names); the watchdog is no longer fed, so systemd restarts synthd")
                }
                lastWatchdog = now
            }
            usleep(200_000)
        }

        logger.info("stopping: \(running.isEmpty ? "no job running" : "checkpointing \(counted(running.count, "running job"))")")
        notifier.notify("STOPPING=1\nSTATUS=stopping")
        stopping.set()
        let deadline = Moment.now.adding(seconds: 9)
        while !running.isEmpty && Moment.now < deadline {
            usleep(50_000)
            collect()
        }
        if !running.isEmpty {
            // Their files are written atomically: leaving now loses work, never a file.
            logger.warning("\(counted(running.count, "job")) did not stop within 9 s; exiting anyway (resumed from the last checkpoint at the next start)")
        }
        logger.info("stopped")
        if let lostOwnership { throw lostOwnership }
        if let stalledJobs { throw stalledJobs }
    }

    /// How often the loop looks for stuck jobs when systemd's watchdog does not set the pace:
    /// a quarter of the limit, at most every 30 s (as often as systemd's asks at its 60 s).
    static func selfWatchInterval(limit: TimeInterval) -> TimeInterval { min(30, limit / 4) }

    static func outputHolder(_ configuration: Configuration) -> String { "synthd run with the state folder \(configuration.state)" }

    static func lockOutput(_ configuration: Configuration) throws -> FileLock {
        try createFolders(configuration.output)
        let path = configuration.output + "/" + OutputFolderInUse.lockName
        do {
            return try FileLock(path, holder: outputHolder(configuration))
        } catch .held(_, let holder) {
            throw OutputFolderInUse(output: configuration.output, holder: holder)
        }
    }

    /// A lock file of this daemon's (its state folder's, its output folder's) was removed or
    /// replaced while it ran, so a second daemon could take the folder. Takes the lock again
    /// at its path; when another process holds it already, that one owns the folder now and
    /// this daemon must stop (returned as the failure). nil: not possible now (the folder
    /// cannot be made, say), tried again later, said once.
    /// `folder`: what the lock keeps to one daemon ("state folder", "output folder"); `holder`:
    /// the line written in it.
    func retake(_ held: FileLock, folder: String = "state folder", holder: String = "synthd run",
                reported: inout Bool) -> Result<FileLock, FileLock.Error>? {
        do {
            try createFolders((held.path as NSString).deletingLastPathComponent)
            let again = try FileLock(held.path, holder: holder)
            held.release()
            logger.warning("\(held.path) was removed while synthd ran (with the \(folder)?); taken again, so that no second daemon takes this \(folder)")
            reported = false
            return .success(again)
        } catch {
            if let taken = error as? FileLock.Error, case .held = taken {
                logger.critical("\(taken) since \(held.path) was removed under this daemon: two daemons must not share a \(folder); this one stops")
                return .failure(taken)
            }
            if !reported { logger.error("\(held.path) was removed while synthd ran and cannot be taken again: \(error); trying every 5 s") }
            reported = true
            return nil
        }
    }

    /// Reads the configuration again. A failure is kept for `synthd status` until a reload
    /// reads: in the state folder on one machine, with the node's heartbeat in a cluster (whose
    /// nodes share the state folder).
    func reload(_ scheduler: Scheduler, membership: (any ClusterMembership)?) {
        notifier.notify("RELOADING=1")
        // The state folder the daemon runs with (a reload changes paths only at the next start).
        let state = scheduler.configuration.state
        let keep = { (failure: ReloadFailure?) in
            if let membership { membership.reloadFailed(failure?.statusText) } else { ReloadFailure.record(failure, stateFolder: state) }
        }
        do {
            let configuration = try loadConfiguration()
            scheduler.reload(configuration)
            lowerPriority(to: configuration.nice)
            logger.info("configuration reloaded")
            keep(nil)
        } catch {
            logger.error("configuration not reloaded, keeping the previous one: \(error)")
            keep(ReloadFailure(error: "\(error)", at: Date()))
        }
        notifier.notify("READY=1")
    }

    /// Runs the job on a thread of its own, in a `ComputeContext` of `threads` and `products`
    /// that stays as it is until the job ends (a reload applies to the next job).
    /// In a cluster, the worker also stops when `membership` says so (lease lost, job
    /// cancelled elsewhere, database gone), and asks it before every write.
    func startWorker(_ job: Job, runner: JobRunner, threads: Int, products: ProductPrecision, cancellations: Cancellations, membership: (any ClusterMembership)?,
                     stopping: SharedFlag, othersWaiting: SharedFlag, finished: Mailbox<(Job, JobOutcome)>) {
        let context = ComputeContext(threads: threads, products: products)
        let thread = Thread {
            let outcome = context.run {
                runner.run(job, shouldStop: { stopping.isSet || cancellations.contains(job.dataset) || membership?.stopReason(job) != nil },
                           othersWaiting: { othersWaiting.isSet }, fence: { try membership?.checkWrite(job) })
            }
            finished.post((job, outcome))
        }
        thread.name = "synthd \(job.kind.rawValue) \(job.dataset)"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Numeric threads per job: as configured, else the cores shared among concurrent jobs.
    func threadsPerJob(_ configuration: Configuration) -> Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return configuration.threads > 0 ? configuration.threads : max(1, cores / configuration.concurrency)
    }

    /// Raises the nice value of every thread of the process to `nice` (on Linux it is a
    /// per-thread attribute). Threads inherit it from the thread that creates them, but
    /// Dispatch creates its pool threads from its own threads, some of which exist before this
    /// runs, so the main loop calls this again every few seconds. Lowering a value needs
    /// privileges, so a thread already nicer is left alone. (Under systemd, `Nice=` in the
    /// unit covers the whole process from the start.)
    func lowerPriority(to nice: Int) {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for id in tasks.compactMap({ id_t($0) }) {
            errno = 0
            let current = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id)
            if errno != 0 || Int(current) >= nice { continue }
            if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id, Int32(nice)) != 0 && !warnedAboutPriority {
                warnedAboutPriority = true
                logger.warning("cannot set CPU priority (nice) to \(nice): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// A flag the main loop sets and workers read: the daemon is stopping; another job waits.
final class SharedFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set(_ value: Bool = true) { flag.store(value, ordering: .relaxed) }
}

/// Messages from other threads to the main loop.
final class Mailbox<Message>: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [Message] = []

    func post(_ message: Message) {
        lock.lock()
        messages.append(message)
        lock.unlock()
    }

    func take() -> [Message] {
        lock.lock()
        defer { lock.unlock() }
        let taken = messages
        messages.removeAll()
        return taken
    }
}
