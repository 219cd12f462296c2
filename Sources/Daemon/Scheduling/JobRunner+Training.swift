import CUDA
import Engine
import Foundation
import GAN
import Imaging
import Logging

/// A training job: a new model, a fine-tuning round, or training on for more minutes, in
/// time slices, checkpointing as it goes.
extension JobRunner {
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
        func load() throws -> TrainingSet {
            try loadClaimingMemory(name) {
                try Trainer.loadDataset(folderPath, state: state, resolution: settings.resolution, limits: limits,
                                        confinedTo: configuration.spool, memory: $0,
                                        control: readingControl(name, phase: .training, shouldStop: shouldStop))
            }
        }
        var set = try load()
        let log = logger.with(dataset: name)
        var previous = try state.readRecord()
        if let made = previous, let why = ModelOutgrown.reason(record: made, set: set) {
            try fence()
            try state.setModelAside()
            log.notice("\(why): a new model is trained (the model of \(made.steps) steps is kept in \(state.previousModelPath))")
            previous = nil
            set = try load()  // read afresh: in colour, without the old model's classes
        }
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

        var options = TrainingOptions()
        options.seed = UInt64(settings.seed)
        options.batchSize = settings.batch
        options.checkpointSeconds = settings.checkpointSeconds
        settings.augmentation.configure(&options, forImages: set.count)
        options.classConditionalNorm = settings.conditioning.classConditionalNorm
        options.discriminatorNormalization = settings.discriminator
        options.holdOut = settings.holdOut
        options.modeSeekingWeight = settings.modeSeeking.weight(forImages: set.count)
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
}
