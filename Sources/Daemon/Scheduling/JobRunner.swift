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

    // MARK: Training

    func train(_ job: Job, fingerprint: DatasetFingerprint, on gpu: (any KernelDevice)?, shouldStop: @escaping () -> Bool,
               othersWaiting: @escaping () -> Bool, fence: @escaping () throws -> Void = {}) throws -> JobOutcome {
        let name = job.dataset, folderPath = datasetFolder(name)
        let settings = try Configuration.forDataset(at: folderPath, base: configuration)
        let state = try StateFolder(store.folder(name))
        if let made = try state.readRecord() {
            let changes = ModelChange.asked(by: settings, over: configuration, of: made)
            if !changes.isEmpty {
                try fence()  // in a cluster: only while this node still holds the job
                try state.setModelAside()
                let said = "synthd.toml asks for a new model (\(changes.joined(separator: ", "))): the model of \(made.steps) steps "
                    + "is kept in \(state.previousModelPath), and a new one is trained"
                logger.with(dataset: name).info("\(said)")
            }
        }
        // The fingerprint was taken first: files that change while loading make a newer one,
        // and another round.
        // Named once: each time slice and fine-tuning loads the dataset again, and its damaged
        // files were named again each time (one file four times in a soak of six minutes).
        let named = state.readNamedRejections()
        let rejectedBefore = Set(((try? state.readDatasetReport()) ?? nil)?.rejected.map(\.reason) ?? []).union(named)
        let set = try loadClaimingMemory(name) {
            try Trainer.loadDataset(folderPath, state: state, resolution: settings.resolution, limits: limits,
                                    confinedTo: configuration.spool, memory: $0,
                                    control: readingControl(name, phase: .training, shouldStop: shouldStop))
        }
        let log = logger.with(dataset: name)
        let newlyRejected = set.rejected.filter { !rejectedBefore.contains($0.reason) }
        let rejected = RejectedFile.listed(newlyRejected)
        for reason in rejected.reasons { log.warning("rejected \(reason)") }
        if rejected.unnamed > 0 { log.warning("rejected \(rejected.unnamed) more files (\(state.path)/dataset.json lists every one)") }
        if case let again = set.rejected.count - newlyRejected.count, again > 0 {
            log.info("\(again) file\(again == 1 ? "" : "s") rejected as before, for the same reason\(again == 1 ? "" : "s") (synthd status lists them)")
        }
        // Recorded at once (what is rejected now: a file fixed and broken again is named
        // again): a run killed before its first checkpoint, which writes dataset.json, named
        // them all again after the restart.
        if case let now = Set(set.rejected.map(\.reason)), now != named {
            do {
                try state.writeNamedRejections(now)
            } catch {
                log.debug("\(state.namedRejectionsPath) not written (\(error)): a restart before the first checkpoint names the rejected files again")
            }
        }
        for empty in set.emptyClasses { log.warning("class '\(empty)' has no images; skipped") }
        for advice in set.advice { log.warning("\(advice)") }

        let previous = try state.readRecord()
        var options = TrainingOptions()
        options.seed = UInt64(settings.seed)
        options.batchSize = settings.batch
        options.checkpointSeconds = settings.checkpointSeconds
        settings.augmentation.configure(&options, forImages: set.count)
        options.classConditionalNorm = settings.conditioning.classConditionalNorm
        options.discriminatorNormalization = settings.discriminator
        options.holdOut = settings.holdOut
        let trainer = try Trainer(set: set, state: state, options: options, device: gpu)
        madeTrainer(trainer)
        trainer.beforeWrite = fence
        trainer.mayTrainPastFailedCheckpoint = { DiskFull.matches($0) }
        trainer.skippedCheckpoint = { [log = logger.with(dataset: name)] error, steps in
            let message = "checkpoint at step \(steps) not written: \(error); training goes on and tries again in "
                + "\(Int(settings.checkpointSeconds.rounded())) s (the last checkpoint written stays)"
            log.warning("\(message)")
        }
        // The wait's limit counts from the first failure; a write that failed again at once
        // (after the space was there) is tried again a poll later, not in a loop.
        var lastCheckpointWait: (deadline: Moment, earliest: Moment)?
        trainer.mayRetryLastCheckpoint = { [self, unowned trainer] error in  // held by the trainer: no cycle
            let now = Moment.now
            let deadline = lastCheckpointWait?.deadline ?? now.adding(seconds: spaceWait.limit)
            let earliest = lastCheckpointWait == nil ? now : now.adding(seconds: spaceWait.pollSeconds)
            lastCheckpointWait = (deadline, earliest)
            return waitForSpace(name, error: error, notBefore: earliest, until: deadline, trainer: trainer, state: state,
                                shouldStop: shouldStop)
        }
        // Room for its checkpoints before the training, not after its first minute: a full
        // state file system failed each retry at its first checkpoint, its training lost.
        try DiskSpace.check(state.path, neededBytes: trainer.checkpointBytes,
                            remedy: "move [paths] state to a larger file system", what: "writing its checkpoints")

        // A model that never finished a training gets the whole budget, also when it has a
        // checkpoint (a job whose budget was lost with its node resumes from it).
        let runtime = store.get(name), resumed = job.remainingSeconds != nil
        let firstTraining = previous == nil || runtime.firstTrainingUnfinished
        // A trained model whose dataset's synthd.toml asks for more minutes trains on for the
        // difference (`TrainingOn`); with new images as well, for at least a fine-tuning's.
        let trainingOn = firstTraining ? nil : TrainingOn.asked(by: settings, over: configuration, of: runtime)
        let changed = fingerprint.value != runtime.trainedFingerprint
        let budgetMinutes = firstTraining ? settings.trainingMinutes
            : trainingOn.map { max($0.minutes, changed ? settings.fineTuneMinutes : 0) } ?? settings.fineTuneMinutes
        let total = job.budgetSeconds ?? budgetMinutes * 60
        let remaining = min(total, job.remainingSeconds ?? total)
        let slice = settings.sliceMinutes * 60
        let detail = Self.describe(previous: previous, set: set, resumed: resumed, firstTraining: firstTraining, trainingOn: trainingOn)
        // The cap on passes over the data (unaugmented models only; see `maxEpochs`), counted
        // from the round's first step: a resumed round (another slice, a restart) goes on counting.
        let roundStart = (resumed ? runtime.roundStartStep : nil) ?? trainer.record.steps
        // What the model will have had once this round completes (a resumed round keeps what it began with).
        let reaches = resumed ? runtime.roundMinutes : firstTraining || trainingOn != nil ? settings.trainingMinutes : nil
        let capSteps = trainer.steps(forPasses: settings.maxEpochs)
        log.info("\(detail): \(counted(set.count, "image")) in \(counted(set.classMap.count, "class")), \(Int(remaining.rounded())) s of budget left")
        store.update(name) {
            $0.phase = .training
            $0.detail = detail
            $0.progress = max(0, (total - remaining) / total)
            $0.eta = Date().addingTimeInterval(remaining)
            $0.step = trainer.record.steps
            $0.budgetSeconds = total
            $0.roundStartStep = roundStart
            $0.roundMinutes = reaches
            $0.trainingFingerprint = fingerprint.value
            $0.lastError = nil
            $0.settingsError = nil  // it read them
            $0.retryAt = nil
        }

        let started = Moment.now  // slices and budgets on the monotonic clock: see `Moment`
        if let split = trainer.split {
            // The judge scores the checkpoints (`CheckpointSelection`); trained here, where the
            // status can say so, when the dataset changed since the last one.
            let what = "\(detail): training the judge that scores checkpoints on \(split.heldOut.count) held-out images"
            store.update(name) { $0.detail = what }
            if try trainer.refreshJudge(shouldStop: shouldStop, progress: judgeProgress(name, what)) == .trained {
                log.info("judge trained: it scores checkpoints on \(split.heldOut.count) held-out images, and checks classes in generation")
            }
            store.update(name) { $0.detail = detail }
        }
        var lastReport = started.adding(seconds: -1e9)
        var lastLogged = Moment.now  // the line above said where it starts
        let turnOver = { started.secondsAgo >= slice && othersWaiting() }
        let budget = TrainingBudget.minutes(remaining, orPasses: settings.maxEpochs, of: trainer, done: trainer.record.steps - roundStart)
        do {
            try trainer.train(budget, shouldStop: { shouldStop() || turnOver() }) { progress in
                guard lastReport.secondsAgo >= 1 else { return }
                lastReport = .now
                let estimate = TrainingEstimate(budget: total, remainingAtStart: remaining, progress: progress)
                store.update(name) {
                    $0.progress = estimate.fraction
                    $0.eta = Date().addingTimeInterval(estimate.secondsLeft)
                    $0.step = progress.step
                }
                if configuration.injectedFault == .trainingHangs {
                    while true { sleep(60) }  // stuck, as on a hung file system: no progress, no stop
                }
                if lastLogged.secondsAgo >= progressLogSeconds {
                    lastLogged = .now
                    log.info("\(estimate.line(progress))")
                }
            }
        } catch where shouldStop() && DiskFull.matches(error) {
            // Stopped (the daemon, or the dataset's removal) while its last checkpoint waited
            // for space: a stop like any other, from the checkpoint on disk, not a failure
            // retried on a timer.
            log.warning("stopped while its last checkpoint waited for space: the training since \(unsavedSince(name)) is lost")
            return .stopped(remainingSeconds: max(0, remaining - started.secondsAgo), budgetSeconds: total)
        }
        let capReached = capSteps.map { trainer.record.steps >= roundStart + $0 } ?? false
        let left = capReached ? 0 : max(0, remaining - started.secondsAgo)
        store.update(name) { $0.step = trainer.record.steps }
        if capReached {
            log.info("checkpoint at step \(trainer.record.steps): \(TrainingBudget.describe(passes: settings.maxEpochs)) passes over the images (max_epochs), before the minutes ran out")
        } else {
            log.info("checkpoint at step \(trainer.record.steps); \(Int(left.rounded())) s of budget left")
        }
        if let best = trainer.record.best {
            log.info("generation uses step \(best.step), chosen on \(best.heldOutImages) held-out images (kernel distance \(String(format: "%.4f", best.distance)))")
        }
        // Each round is capped at max_epochs passes, but fine-tuning rounds add up.
        if left <= 0.5, let warning = TrainingBudget.memorisationWarning(unaugmentedPasses: trainer.record.unaugmentedPasses,
                                                                           images: trainer.record.imagesAtLastRun) {
            log.warning("\(warning)")
        }
        if shouldStop() && left > 0.5 { return .stopped(remainingSeconds: left, budgetSeconds: total) }
        if left > 0.5 { return .sliceEnded(remainingSeconds: left, budgetSeconds: total) }
        if settings.classCheck {
            store.update(name) { $0.detail = Self.trainingTheJudge; $0.eta = nil }
            // Stopped here, the model is complete: generation trains the judge if it is missing.
            let judging = judgeProgress(name, Self.trainingTheJudge)
            do {
                if try trainer.refreshJudge(shouldStop: shouldStop, progress: judging) == .trained { log.info("judge trained for the class check") }
            } catch where DiskFull.matches(error) {
                // The model is whole on disk. Failing here retried the job as a new round of
                // training (a fine-tuning's budget on the same images); generation trains the
                // judge it lacks, and meets a disk still full as any generation does.
                log.warning("the judge for the class check could not be saved: \(error); the training is done, and generation trains the judge again")
            }
        }
        return .completed(fingerprint: fingerprint.value)
    }

    /// After the run's last checkpoint failed: on a full disk, waits (`spaceWait`) for the
    /// checkpoint's space, saying so in the log and the status, and answers whether to write it
    /// again, not before `earliest` and not after `deadline`.
    func waitForSpace(_ name: String, error: any Error, notBefore earliest: Moment, until deadline: Moment,
                      trainer: Trainer, state: StateFolder, shouldStop: () -> Bool) -> Bool {
        guard DiskFull.matches(error), !shouldStop(), Moment.now < deadline else { return false }
        let log = logger.with(dataset: name)
        let needed = DiskSpace.withHeadroom(trainer.checkpointBytes), steps = trainer.record.steps
        let message = "the last checkpoint (step \(steps)) cannot be written: \(error); the training since \(unsavedSince(name)) "
            + "is kept in memory while the job waits up to \(durationText(Moment.now.seconds(to: deadline))) "
            + "for \(DiskSpace.megabytes(needed)) to be free on the file system of \(state.path)"
        log.warning("\(message)")
        let freed = spaceWait.wait(for: trainer.checkpointBytes, at: state.path, notBefore: earliest, until: deadline,
                                   shouldStop: shouldStop) { free in
            store.update(name) {
                $0.detail = "waiting for space to write its last checkpoint (step \(steps)): "
                    + (free.map { "\(DiskSpace.megabytes($0)) free" } ?? "free space unknown")
                    + " of \(DiskSpace.megabytes(needed)) needed on the file system of \(state.path)"
                $0.eta = nil
            }
        }
        if freed { log.info("writing the last checkpoint (step \(steps)) again: space was freed on the file system of \(state.path)") }
        return freed
    }

    /// What a training job does, for the log and status. `firstTraining`: the model has not
    /// finished a training yet; a new job for it (its first one cancelled when the dataset was
    /// renamed or changed meanwhile) goes on with the whole training budget, which is not a
    /// fine-tuning, whatever images were added.
    static func describe(previous: ModelRecord?, set: TrainingSet, resumed: Bool, firstTraining: Bool,
                         trainingOn: TrainingOn? = nil) -> String {
        guard let previous else { return "training a new model" }
        if resumed { return "continuing training" }
        let changes = previous.additions(classes: set.classMap.count, images: set.count)
        let what = firstTraining ? "continuing its first training from step \(previous.steps)"
            : trainingOn.map { "training on from step \(previous.steps): \($0)" } ?? "fine-tuning"
        return what + (changes.isEmpty ? "" : " (" + changes.joined(separator: ", ") + ")")
    }

    // MARK: Generation

    func generate(_ job: Job, on gpu: (any KernelDevice)?, shouldStop: @escaping () -> Bool, fence: () throws -> Void = {}) throws -> JobOutcome {
        let name = job.dataset
        let settings = try Configuration.forDataset(at: datasetFolder(name), base: configuration)
        let state = try StateFolder(store.folder(name))
        let (generator, record) = try SavedGenerator.load(state)
        let log = logger.with(dataset: name)
        let real = state.realImageCounts(for: record.classes, dataset: datasetFolder(name), confinedTo: configuration.spool)
        if let note = real.note { log.warning("\(note)") }
        let plan = GenerationPlan(settings: settings, record: record, real: real.counts)
        let counts = plan.counts, total = plan.total
        guard total <= configuration.maxImagesPerDataset else {
            throw Configuration.Error(path: datasetFolder(name) + "/synthd.toml", line: nil, reason:
                "asks for \(total) images (\(plan.rule)), over the daemon's cap of \(configuration.maxImagesPerDataset) "
                + "per generation ([service] max_images_per_dataset)")
        }
        let size = record.writtenSize(maxShortSide: settings.maxShortSide)
        try DiskSpace.check(configuration.output, neededBytes: DiskSpace.estimate(
            images: total, width: size.width, height: size.height, channels: record.mode.channels))
        log.info("generating \(total) images with \(record.generatorID): \(plan.rule)")
        if let note = SyntheticWriter.sizeNote(record, maxShortSide: settings.maxShortSide, setting: "[generation] max_short_side") {
            log.info("\(note)")
        }
        store.update(name) {
            $0.planned = Dictionary(uniqueKeysWithValues: zip(record.classes, counts))
            $0.plannedRule = plan.rule
            $0.phase = .generating
            $0.detail = "writing \(total) images with \(record.generatorID)"
            $0.progress = 0
            $0.eta = nil
            $0.lastError = nil
            $0.settingsError = nil  // it read them
            $0.retryAt = nil
        }
        let generation = settings.generationID(checkpoint: record.generatorID, record: record)
        var judge: (any SampleJudge)?
        if settings.classCheck, total > 0 {
            judge = try Judge.current(in: state, for: record, loadSet: {
                log.info("no current judge for this model (none yet, or one saved by an older synthd): training one")
                store.update(name) { $0.detail = Self.trainingTheJudge }
                let set = try loadClaimingMemory(name) {
                    try Trainer.loadDataset(datasetFolder(name), state: state, resolution: record.configuration.resolution,
                                            limits: limits, confinedTo: configuration.spool, memory: $0,
                                            control: readingControl(name, phase: .generating, shouldStop: shouldStop))
                }
                store.update(name) { $0.detail = Self.trainingTheJudge }
                return set
            }, shouldStop: shouldStop, progress: judgeProgress(name, Self.trainingTheJudge), beforeSave: fence)
            if shouldStop() { throw GenerationStopped() }
            (judge as? Judge)?.dropsNearCopies = settings.dropNearCopies
            if judge == nil { log.warning("the dataset has classes the model was not trained on; writing without the class check") }
            store.update(name) { $0.detail = "writing \(total) images with \(record.generatorID)" }
        }
        let temperature = settings.temperature.map(Float.init) ?? Sampler.defaultTemperature(classCheck: judge != nil,
                                                                                           trainingImages: record.imagesAtLastRun)
        var diversity: [String: Double]?
        let publication = try output.publish(name, generation: generation) { folder in
            var writer = SyntheticWriter(generator: generator, record: record, root: folder)
            writer.device = gpu
            writer.realCounts = real.counts
            writer.temperature = temperature
            writer.maxShortSide = settings.maxShortSide
            writer.maxShift = SyntheticWriter.pixels(ofShift: settings.shift, width: size.width, height: size.height)
            writer.judge = judge
            // The rate counts from here: a judge trained first is not writing, and its minutes
            // made the first ETAs run long.
            let started = Moment.now
            var lastLogged = Moment.now
            let summary = try writer.write(counts: counts, seed: UInt64(settings.seed) &+ 1, shouldStop: shouldStop) { written in
                let rate = Double(written) / max(1e-3, started.secondsAgo)
                let left = Double(total - written) / max(rate, 1e-3)
                store.update(name) {
                    $0.progress = Double(written) / Double(max(1, total))
                    $0.eta = Date().addingTimeInterval(left)
                }
                if lastLogged.secondsAgo >= progressLogSeconds {
                    lastLogged = .now
                    let percent = Int(100 * Double(written) / Double(max(1, total)))
                    log.info("generating \(percent)%: \(written) of \(total) images, \(Int(rate.rounded())) images/s, ETA \(durationText(left))")
                }
            }
            if judge != nil {
                log.info("class check: \(summary.classCheckLine(classes: record.classes))")
                if let warning = SyntheticWriter.Summary.uncheckedWarning(summary.unchecked) { log.warning("\(warning)") }
            }
            if let line = summary.diversityLine(classes: record.classes) { log.info("\(line)") }
            let empty = SyntheticWriter.Summary.emptyFolders(classes: record.classes, counts: counts, realCounts: real.counts)
            if let note = SyntheticWriter.Summary.emptyFoldersNote(empty) { log.info("\(note)") }
            if let warning = SyntheticWriter.Summary.collapseWarning(summary.collapsed(classes: record.classes),
                                                                          unaugmentedPasses: record.unaugmentedPasses) {
                log.warning("\(warning)")
            }
            diversity = Dictionary(uniqueKeysWithValues: zip(record.classes, summary.diversity).compactMap { name, value in value.map { (name, $0) } })
            try fence()  // the generation is renamed into place right after this
        }
        let written = output.imagesPublished(name)
        store.update(name) {
            $0.outputsWritten = written
            $0.generation = generation
            $0.outputSize = size == (record.imageWidth, record.imageHeight) ? nil : "\(size.width)x\(size.height)"
            if publication.published { $0.diversity = diversity?.isEmpty == false ? diversity : nil }
        }
        if let kept = publication.movedAside {
            log.warning("\(output.linkPath(name)) was a folder, not synthd's link to its outputs (written there by synthd generate --out, or copied): moved to \(kept), where it is kept (synthd never deletes it; remove it once it is not needed)")
        }
        log.info(publication.published ? "published \(written) images in \(output.linkPath(name))" : "outputs of \(generation) already published")
        return .completed(fingerprint: nil)
    }

    /// What the record says while the class check's judge trains.
    static let trainingTheJudge = "training the judge for the class check"

    /// A judge's training in the dataset's record ("training the judge for the class check:
    /// 40%", at most once a second): what `synthd status` shows, and the progress that the
    /// stall watch looks for, since a large dataset's judge trains for minutes.
    func judgeProgress(_ name: String, _ what: String) -> (Double) -> Void {
        var last = Moment.now.adding(seconds: -1e9)
        return { fraction in
            guard last.secondsAgo >= 1 else { return }
            last = .now
            store.update(name) { $0.detail = "\(what): \(Int(fraction * 100))%" }
        }
    }

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

/// Recognises a full disk (or quota) in the errors that file writes throw.
public enum DiskFull {
    public static func matches(_ error: any Error) -> Bool {
        if let error = error as? FileError, let code = error.errno { return code == ENOSPC || code == EDQUOT }
        if error is DiskSpace.Shortage { return true }
        return matches(String(describing: error))
    }

    /// The file or folder that a disk-full error names, where its type says (a write's
    /// `FileError`, a generation's or checkpoint's `DiskSpace.Shortage`); nil for errors known
    /// only by their text, whose messages begin with the path all the same.
    public static func path(of error: any Error) -> String? {
        switch error {
        case FileError.io(let path, _, _): return path
        case let shortage as DiskSpace.Shortage: return shortage.path
        default: return nil
        }
    }

    /// By the system's own words for ENOSPC and EDQUOT in a message (errors wrapped by other
    /// layers, and a failed job's saved message, keep only the text).
    public static func matches(_ message: String) -> Bool {
        message.contains(String(cString: strerror(ENOSPC))) || message.contains(String(cString: strerror(EDQUOT)))
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
