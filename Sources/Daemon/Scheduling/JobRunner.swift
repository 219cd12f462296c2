import CUDA
import Engine
import Foundation
import GAN
import Imaging
import Logging

/// How a job ended.
public enum JobOutcome: Sendable, Equatable {
    /// Finished. A training job reports the fingerprint of the files it trained on.
    case completed(fingerprint: String?)
    /// A training job used its time slice and has this much of its budget left.
    case sliceEnded(remainingSeconds: Double, budgetSeconds: Double)
    /// Asked to stop (the daemon is stopping, or the dataset left the spool); checkpointed.
    case stopped(remainingSeconds: Double?, budgetSeconds: Double?)
    /// `changeKey`: the dataset's files and settings when the job started (see
    /// `DatasetFingerprint.changeKey`), what a quarantine waits to see change.
    case failed(message: String, retry: Retry, changeKey: String? = nil)

    public enum Retry: Sendable, Equatable {
        /// Something outside the dataset (an output away, a model another process holds, a
        /// GPU error): try again later.
        case later
        /// A full disk (or quota) on the file system that holds `folder`, the state folder or
        /// the output: tried again on a timer a few times, then held until space is freed there.
        case afterSpaceFreed(folder: String)
        /// The dataset or its configuration is at fault: wait until it changes.
        case whenChanged

        /// The folder whose file system was full, for `afterSpaceFreed`; nil otherwise.
        public var fullFolder: String? {
            if case .afterSpaceFreed(let folder) = self { return folder }
            return nil
        }
    }
}

/// Runs one job to its end (or the end of its time slice) on the calling thread: the daemon
/// calls it on a worker thread of its own, never on the thread that watches or schedules.
public struct JobRunner: Sendable {
    public let configuration: Configuration
    public let store: RuntimeStore
    public let output: OutputTree
    public let logger: Logger
    /// Where jobs compute (recorded for `synthd status`), and what a GPU failure changes.
    public let compute: ComputeDevice
    /// The memory the daemon's jobs share (one ledger for all of them: the scheduler's).
    public let memory: MemoryLedger
    /// Seconds between the log's progress lines while a job reads images, trains or writes
    /// images (the journal of a 20-minute training said nothing between its start and its
    /// slice's end).
    public var progressLogSeconds = 60.0
    /// How a run whose last checkpoint met a full disk waits for space.
    public var spaceWait = SpaceWait()
    /// Sees each training job's trainer: a test holds it weakly, to check that nothing keeps
    /// it (its model, optimiser and data: hundreds of MB) once the job has ended.
    var madeTrainer: @Sendable (Trainer) -> Void = { _ in }

    public init(configuration: Configuration, store: RuntimeStore, output: OutputTree, logger: Logger,
                compute: ComputeDevice = .cpu(), memory: MemoryLedger = MemoryLedger()) {
        self.configuration = configuration
        self.store = store
        self.output = output
        self.logger = logger
        self.compute = compute
        self.memory = memory
    }

    var limits: ImageLimits { configuration.imageLimits }

    func datasetFolder(_ dataset: String) -> String { configuration.spool + "/" + dataset }

    /// `othersWaiting` says whether another dataset's job is waiting: a training job gives up
    /// its turn after `slice_minutes` only then (otherwise it trains on, without reloading).
    /// `fence` is asked before the job writes the dataset's state folder or publishes its
    /// outputs, and refuses by throwing (a cluster node that lost the job's lease).
    public func run(_ job: Job, shouldStop: @escaping () -> Bool, othersWaiting: @escaping () -> Bool = { false },
                    fence: @escaping () throws -> Void = {}) -> JobOutcome {
        // Scanned here, on the job's thread, not the daemon's main loop: training needs the
        // fingerprint first (the files it then loads), and a failure needs the change key.
        // Generation reads no images, so it scans only if it fails.
        let folder = datasetFolder(job.dataset)
        let scan = { Result { try DatasetFingerprint.of(folder, confinedTo: self.configuration.spool) } }
        let scanned = job.kind == .train ? scan() : nil
        defer { memory.release(job.dataset) }
        if case .success(let fingerprint) = scanned {
            // At once, not after loading: the scheduler waits for it to tell whether a
            // change it sees is newer than what this job trains on.
            store.update(job.dataset) { $0.trainingFingerprint = fingerprint.value }
        }
        do {
            // One writer per model: `synthd train` or `generate` on this dataset's state folder
            // is refused while the job runs, and the job waits for theirs (retried later).
            let state = try StateFolder(store.folder(job.dataset))
            let lock = try state.lock(for: "synthd run: \(job.kind.rawValue) job \(job.id)")
            defer { lock.release() }
            let leftovers = state.removeInterruptedWrites()
            if !leftovers.isEmpty {
                logger.with(dataset: job.dataset).notice("removed what an interrupted write left: \(leftovers.joined(separator: ", "))")
            }
            let (gpu, label) = compute.current
            do {
                return try attempt(job, on: gpu, label: label, fingerprint: scanned, shouldStop: shouldStop,
                                   othersWaiting: othersWaiting, fence: fence)
            } catch let error as CUDAError where gpu != nil {
                let failure = DeviceFailure(dataset: job.dataset, work: job.kind == .train ? .training : .generation,
                                            device: label, error: error,
                                            intact: job.kind == .train ? DeviceFailure.checkpoint(lastCheckpoint(job.dataset))
                                                : "nothing of this generation was published")
                let retired = compute.failed(error)
                guard compute.retriesOnCPU else { throw failure }
                // The state folder holds the last checkpoint, the output tree nothing of this
                // job: the CPU starts from there, with the job's whole budget.
                let log = logger.with(dataset: job.dataset)
                log.warning("\(failure); retrying on the CPU (device = auto)\(retired ? "; the next jobs run on the CPU too" : "")")
                return try attempt(job, on: nil, label: "cpu (after a GPU failure)", fingerprint: scanned, shouldStop: shouldStop,
                                   othersWaiting: othersWaiting, fence: fence)
            }
        } catch is GenerationStopped {
            return .stopped(remainingSeconds: nil, budgetSeconds: nil)
        } catch TrainingSet.Error.stopped(path: _) {
            return .stopped(remainingSeconds: nil, budgetSeconds: nil)  // the job keeps its budget
        } catch {
            let changeKey = (try? (scanned ?? scan()).get())?.changeKey(folder: folder)
            return .failed(message: String(describing: error), retry: Self.retry(for: error, configuration: configuration),
                           changeKey: changeKey)
        }
    }

    /// The job on `gpu` (nil: the CPU), `label` recorded for `synthd status`.
    func attempt(_ job: Job, on gpu: (any KernelDevice)?, label: String, fingerprint: Result<DatasetFingerprint, any Error>?,
                 shouldStop: @escaping () -> Bool, othersWaiting: @escaping () -> Bool,
                 fence: @escaping () throws -> Void) throws -> JobOutcome {
        store.update(job.dataset) { $0.device = label }
        switch job.kind {
        case .train: return try train(job, fingerprint: fingerprint!.get(), on: gpu, shouldStop: shouldStop,
                                      othersWaiting: othersWaiting, fence: fence)
        case .generate: return try generate(job, on: gpu, shouldStop: shouldStop, fence: fence)
        }
    }

    /// The checkpoint the dataset's state folder holds ("step-1200"), for a failure's message.
    func lastCheckpoint(_ dataset: String) -> String? {
        (try? StateFolder(reading: store.folder(dataset)).readRecord())?.checkpointID
    }

    /// Where a run's unsaved training began, for the messages of a last checkpoint that
    /// cannot be written: "its checkpoint step-1200", or "its start".
    func unsavedSince(_ dataset: String) -> String {
        lastCheckpoint(dataset).map { "its checkpoint \($0)" } ?? "its start"
    }

    // MARK: Reading the dataset (both kinds of job: JobRunner+Training, JobRunner+Generation)

    /// Reading a dataset's images as `synthd status` shows it ("reading its images: 3,200 of
    /// 50,000, 40 s left"; at most once a second), stopped by `shouldStop`. Without it a
    /// dataset of many photos read for minutes under "queued", and a stop waited it out.
    func readingControl(_ name: String, phase: DatasetRuntime.Phase, shouldStop: @escaping () -> Bool) -> TrainingSet.LoadControl {
        let started = Moment.now
        var shown: Moment?, logged = started
        let log = logger.with(dataset: name), logSeconds = progressLogSeconds
        return TrainingSet.LoadControl(progress: { [store] read, total in
            guard read < total else { return }
            let left = started.secondsAgo * Double(total - read) / Double(read)
            if logged.secondsAgo >= logSeconds {
                logged = .now
                log.info("reading its images: \(read) of \(total), \(durationText(left)) left")
            }
            guard shown.map({ $0.secondsAgo >= 1 }) ?? (started.secondsAgo >= 1) else { return }
            shown = .now
            store.update(name) {
                $0.phase = phase
                $0.detail = "reading its images: \(read) of \(total), \(durationText(left)) left"
                $0.progress = nil
                $0.eta = nil
                $0.lastError = nil  // this attempt's, if any, comes when it ends
                $0.retryAt = nil
            }
        }, shouldStop: shouldStop)
    }

    /// Loads a dataset within what the other running jobs leave of the memory synthd may use
    /// (`load` is given that), and claims its share until the job ends (`run` releases it).
    /// A dataset that would fit alone waits for the others (`MemoryHeldByOthers`, retried
    /// later); one that cannot fit at all is the dataset's fault (`TrainingSet.Error`).
    func loadClaimingMemory(_ name: String, _ load: (MemoryLimit?) throws -> TrainingSet) throws -> TrainingSet {
        let available = memory.available(to: name)
        do {
            let set = try load(available)
            memory.claim(TrainingSet.leastMemory(images: set.count, resolution: set.resolution, channels: set.channels), by: name)
            return set
        } catch TrainingSet.Error.tooManyImages(let path, let images, _, let bytes, _)
                    where memory.limit.map({ bytes <= $0.bytes }) == true && available != memory.limit {
            throw MemoryHeldByOthers(path: path, images: images, bytes: bytes, available: available!, limit: memory.limit!)
        }
    }

    // MARK: Failures

    /// What follows a job's failure with `error`, the daemon's folders as `configuration` has them.
    static func retry(for error: any Error, configuration: Configuration) -> JobOutcome.Retry {
        if DiskFull.matches(error) { return .afterSpaceFreed(folder: fullFolder(of: error, configuration: configuration)) }
        switch error {
        case is FileLock.Error: return .later  // another process has the state folder
        case is Configuration.Error, is TrainingSet.Error, is ImageFolder.Error, is CheckpointError, is StateFolder.Error:
            return .whenChanged
        default:
            return .later
        }
    }

    /// The folder whose file system a disk-full error is about: the state folder when the
    /// path it names lies in it (a checkpoint that could not be written), else the output.
    /// Watching only the output's left a job that failed on a full state file system waiting
    /// for space that came there.
    static func fullFolder(of error: any Error, configuration: Configuration) -> String {
        let path = DiskFull.path(of: error) ?? String(describing: error)
        let state = configuration.state.hasSuffix("/") ? configuration.state : configuration.state + "/"
        return path.hasPrefix(state) || path == configuration.state ? configuration.state : configuration.output
    }
}


extension Logger {
    /// A logger whose lines name the dataset.
    func with(dataset: String) -> Logger {
        var copy = self
        copy[metadataKey: "dataset"] = "\(dataset)"
        return copy
    }
}

/// A dataset that fits in the memory synthd may use, but not beside what the other running
/// jobs claim (`MemoryLedger`): not the dataset's fault, so retried later (`Retry.later`).
public struct MemoryHeldByOthers: Error, CustomStringConvertible {
    public let path: String
    public let images: Int
    public let bytes: Int
    public let available: MemoryLimit
    public let limit: MemoryLimit

    public var description: String {
        "\(path): \(images) images need at least \(MemoryLimit.gibibytes(bytes)) of memory; synthd may use \(limit), "
            + "and \(MemoryLimit.gibibytes(available.bytes)) of it is not claimed by the jobs running now (\(available.source)); "
            + "tried again later, when they may be done (a lower [service] concurrency runs fewer jobs at once)"
    }
}
