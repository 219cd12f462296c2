@testable import Daemon
import Engine
import Foundation
import GAN
import Imaging
import Logging
import LogTestSupport
import Spool
import Testing

@Suite final class JobRunnerTests {
    let root = NSTemporaryDirectory() + "synthd-runner-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func scheduler(sliceMinutes: Double) throws -> Scheduler {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.1  // 6 s: far more than a 60 ms slice, even on a busy machine
        configuration.sliceMinutes = sliceMinutes
        return try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
    }

    /// A scheduler whose pets train for 0.3 s, checkpointing every `checkpointSeconds`, its
    /// log lines into `lines`: for the tests of what a full disk does to a training's writes.
    func shortTraining(checkpointSeconds: Double, lines: CapturedLines = CapturedLines()) throws -> Scheduler {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.005
        configuration.checkpointSeconds = checkpointSeconds
        return try Scheduler(configuration: configuration, logger: .capturing(into: lines))
    }

    @Test func aTrainingJobGivesUpItsTurnOnlyWhenAnotherJobWaits() throws {
        let scheduler = try scheduler(sliceMinutes: 0.001)  // 60 ms slices
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .sliceEnded(let remaining, let budget) = scheduler.runner.run(job, shouldStop: { false }, othersWaiting: { true })
        else { Issue.record("no turn given up while another job waits"); return }
        #expect(budget == 6 && remaining > 0 && remaining < 6)

        // Alone, it trains the rest of its budget without giving up its turn (a short rest, so
        // that the test stays quick).
        var next = job
        next.remainingSeconds = min(remaining, 0.3)
        next.budgetSeconds = budget
        let outcome = scheduler.runner.run(next, shouldStop: { false }, othersWaiting: { false })
        guard case .completed(let fingerprint) = outcome else { Issue.record("\(outcome)"); return }
        #expect(fingerprint != nil, "alone, it trains its whole remaining budget in one go")
        let runtime = scheduler.store.get("pets")
        #expect(runtime.step ?? 0 > 0 && runtime.trainingFingerprint == fingerprint)
    }

    /// "auto" (the default) gives a small dataset's new model the mode-seeking term.
    @Test func aSmallDatasetsNewModelHasTheModeSeekingTerm() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(job, shouldStop: { false }) else { Issue.record("training failed"); return }
        let record = try #require(try StateFolder(scheduler.store.folder("pets")).readRecord())
        #expect(record.options.modeSeekingWeight == ModeSeekingPolicy.smallDatasetWeight)
    }

    /// Two datasets that each fit the memory synthd may use but not together: the second job
    /// waits (retried later, not held: it is not the dataset's fault) while the first job's
    /// claim stands, and runs once it is released; its own claim ends with its job. One that
    /// cannot fit even alone is still the dataset's fault.
    @Test func aDatasetThatFitsOnlyAloneWaitsForTheOtherJobs() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let needed = TrainingSet.leastMemory(images: 6, resolution: configuration.resolution, channels: 1)
        let ledger = MemoryLedger(limit: MemoryLimit(bytes: needed + (64 << 20), source: "cgroup memory.max of /synthd.service"))
        let runner = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output,
                               logger: Logger(label: "t"), memory: ledger)
        ledger.claim(128 << 20, by: "cars")
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .failed(let message, let retry, _) = runner.run(job, shouldStop: { false }) else {
            Issue.record("loaded beside the other job's claim"); return
        }
        #expect(retry == .later)
        #expect(message.contains("6 images need at least ") && message.contains("held by the jobs of cars"), "\(message)")
        #expect(ledger.held == ["cars": 128 << 20], "the failed job claims nothing")
        ledger.release("cars")
        var claimedWhileRunning = 0
        guard case .completed = runner.run(job, shouldStop: { claimedWhileRunning = ledger.held["pets"] ?? 0; return false }) else {
            Issue.record("training failed with the memory free"); return
        }
        #expect(claimedWhileRunning == needed, "its claim while it runs")
        #expect(ledger.held.isEmpty, "released when the job ends")

        let tiny = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"),
                             memory: MemoryLedger(limit: MemoryLimit(bytes: 64 << 20, source: "cgroup memory.max of /synthd.service")))
        guard case .failed(_, let held, _) = tiny.run(job, shouldStop: { false }) else { Issue.record("fitted in 64 MiB"); return }
        #expect(held == .whenChanged, "too large even alone: the dataset's fault")
    }

    /// A dataset with many broken files logs the first 20 by name and counts the rest (the
    /// record lists every one); the next round names only files newly rejected.
    @Test func manyRejectedFilesAreCountedNotAllLogged() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        for i in 0..<25 { try Data([0x89, 0x50, 0x4E, 0x47, 1]).write(to: URL(fileURLWithPath: "\(root)/spool/pets/a/broken-\(i).png")) }
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(job, shouldStop: { false }) else { Issue.record("training failed"); return }
        let rejected = lines.all.filter { $0.hasPrefix("warning rejected ") }
        #expect(rejected.count == 21, "\(rejected)")
        #expect(rejected.last == "warning rejected 5 more files (\(scheduler.store.folder("pets"))/dataset.json lists every one)")
        #expect(try StateFolder(scheduler.store.folder("pets")).readDatasetReport()?.rejected.count == 25)

        // The next round (a time slice, a fine-tuning) names only what is newly rejected.
        lines.removeAll()
        try Data().write(to: URL(fileURLWithPath: "\(root)/spool/pets/a/empty.png"))
        let again = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(again, shouldStop: { false }) else { Issue.record("fine-tuning failed"); return }
        #expect(lines.all.filter { $0.hasPrefix("warning rejected ") } == ["warning rejected \(root)/spool/pets/a/empty.png: cannot decode image: empty file"],
                "\(lines.all)")
        #expect(lines.all.contains("info 25 files rejected as before, for the same reasons (synthd status lists them)"), "\(lines.all)")
        #expect(try StateFolder(scheduler.store.folder("pets")).readDatasetReport()?.rejected.count == 26)

        // A run killed before its first checkpoint leaves no dataset.json of what it named:
        // the restart names nothing again.
        lines.removeAll()
        try FileManager.default.removeItem(atPath: StateFolder(scheduler.store.folder("pets")).datasetReportPath)
        let restarted = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(restarted, shouldStop: { false }) else { Issue.record("the restart failed"); return }
        #expect(lines.all.filter { $0.hasPrefix("warning rejected ") }.isEmpty, "\(lines.all)")
        #expect(lines.all.contains("info 26 files rejected as before, for the same reasons (synthd status lists them)"), "\(lines.all)")
    }

    /// Without augmentation a round ends after `max_epochs` passes over the images, long before
    /// its minutes (2 here): counted from the round's first step across its time slices.
    /// A model whose first training was cut short (its job cancelled: the dataset renamed, or
    /// changed, while it trained) goes on under a new job as its first training, with the
    /// training budget, and says so: it read "fine-tuning", with the fine-tuning budget's
    /// minutes in the log beside the training budget it got.
    @Test func aFirstTrainingCutShortGoesOnAsTheFirstTraining() throws {
        let scheduler = try scheduler(sliceMinutes: 0.001)
        let first = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .sliceEnded = scheduler.runner.run(first, shouldStop: { false }, othersWaiting: { true }) else {
            Issue.record("the first slice did not end for the waiting job"); return
        }
        let steps = try #require(scheduler.store.get("pets").step)
        _ = try scheduler.queue.cancel(dataset: "pets")
        let next = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        _ = scheduler.runner.run(next, shouldStop: { false }, othersWaiting: { true })
        let record = scheduler.store.get("pets")
        #expect(record.detail?.hasPrefix("continuing its first training from step \(steps)") == true, "\(record.detail ?? "")")
        #expect(record.budgetSeconds == 6, "the training budget (0.1 minutes), not fine-tuning's 5")
    }

    @Test func anUnaugmentedRoundEndsAfterItsPassesOverTheData() throws {
        var configuration = try Self.petsUnder(root)  // 6 images, batch 4
        configuration.augmentation = .off
        configuration.trainingMinutes = 2
        configuration.maxEpochs = 100  // 150 steps
        configuration.sliceMinutes = 0.001  // 60 ms slices while another job waits
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let started = Date()
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .sliceEnded(let remaining, let budget) = scheduler.runner.run(job, shouldStop: { false }, othersWaiting: { true })
        else { Issue.record("the first slice did not end for the waiting job"); return }
        let afterSlice = scheduler.store.get("pets").step ?? 0
        #expect(afterSlice > 0 && afterSlice < 150, "the first slice took part of the round")
        var next = job
        (next.remainingSeconds, next.budgetSeconds) = (remaining, budget)
        let outcome = scheduler.runner.run(next, shouldStop: { false }, othersWaiting: { false })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(scheduler.store.get("pets").step == 150, "100 passes of 6 images at batch 4, over both slices")
        #expect(scheduler.store.get("pets").roundStartStep == 0)
        #expect(Date().timeIntervalSince(started) < 100, "ended by its passes, not by its 120 s")
    }

    /// A round that its passes end long before its minutes shows that end: `synthd status`'s ETA
    /// and progress follow the passes, where they followed the minutes (10 here: "ETA 9m58s" to a
    /// round with a second to go). The log says where the training is, here at every report.
    @Test func aCappedRoundsETAIsItsPassesNotItsMinutes() throws {
        var configuration = try Self.petsUnder(root)  // 6 images, batch 4
        configuration.augmentation = .off
        configuration.trainingMinutes = 10
        configuration.maxEpochs = 400  // 600 steps
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        var runner = scheduler.runner
        runner.progressLogSeconds = 0
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        var seen: [(step: Int, progress: Double, eta: Date)] = []
        let outcome = runner.run(job, shouldStop: {
            let record = scheduler.store.get("pets")
            if let step = record.step, step > 0, let progress = record.progress, let eta = record.eta, seen.last?.step != step {
                seen.append((step, progress, eta))
            }
            return false
        })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(scheduler.store.get("pets").step == 600)
        let reported = try #require(seen.last, "no progress was recorded while it trained")
        #expect(reported.eta.timeIntervalSinceNow < 300, "ETA \(reported.eta.timeIntervalSinceNow) s: the minutes', not the passes'")
        #expect(seen.allSatisfy { $0.progress > Double($0.step) / 600 - 0.5 }, "progress by the minutes stays near 0: \(seen.map(\.progress))")
        let progress = lines.all.filter { $0.hasPrefix("info training ") && $0.contains("%: step ") }
        #expect(!progress.isEmpty, "no progress lines in \(lines.all)")
        #expect(progress.allSatisfy { $0.contains(" img/s, ETA ") }, "\(progress)")
    }

    /// Each unaugmented round is capped at `max_epochs` passes, but rounds add up: the round that
    /// takes the model past 100 says in the log what that means; the one before says nothing.
    @Test func roundsThatAddUpPastAHundredPassesWarn() throws {
        var configuration = try Self.petsUnder(root)  // 6 images, batch 4
        configuration.augmentation = .off
        configuration.trainingMinutes = 2
        configuration.fineTuneMinutes = 2
        configuration.maxEpochs = 60  // 90 steps a round
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        for (round, expectedSteps) in [(1, 90), (2, 180)] {
            let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
            guard case .completed = scheduler.runner.run(job, shouldStop: { false }) else { Issue.record("round \(round) failed"); return }
            #expect(scheduler.store.get("pets").step == expectedSteps, "round \(round)")
            let warnings = lines.all.filter { $0.contains("passes over its 6 images without augmentation") }
            if round == 1 {
                #expect(warnings.isEmpty, "60 passes: \(warnings)")
            } else {
                #expect(warnings == ["warning the model has now made about 120 passes over its 6 images without augmentation; "
                                     + "past 100 a discriminator memorises the images and classes collapse (docs/training.md): "
                                     + "more images, or a new model with augmentation (synthd train --augmentation on; the "
                                     + "daemon's [training] augmentation, for a model trained afresh), help more than more training"],
                        "\(lines.all)")
            }
        }
    }

    /// A full disk at a periodic checkpoint is warned of and trained past; the job completes
    /// (it failed there, losing the training since the checkpoint before, at each moment the
    /// disk was full). The fence stands in for the disk: it is the first thing a save does.
    @Test func aFullDiskAtAPeriodicCheckpointIsTrainedPast() throws {
        let lines = CapturedLines()
        let scheduler = try shortTraining(checkpointSeconds: 0, lines: lines)
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let full = FileError.io(path: scheduler.store.folder("pets") + "/checkpoint.ckpt", operation: "write", errno: ENOSPC)
        nonisolated(unsafe) var refusals = 2
        let outcome = scheduler.runner.run(job, shouldStop: { false }, fence: {
            guard refusals > 0 else { return }
            refusals -= 1
            throw full
        })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        let skipped = lines.all.filter { $0.hasPrefix("warning checkpoint at step") }
        #expect(skipped.count == 2, "\(lines.all)")
        #expect(skipped.first == "warning checkpoint at step 1 not written: \(full); training goes on and tries again in 0 s "
                + "(the last checkpoint written stays)", "\(skipped)")
        #expect(try StateFolder(scheduler.store.folder("pets")).readRecord() != nil)
    }

    /// A run whose last checkpoint meets a full disk keeps its model in memory and waits for
    /// space, saying so in the log and the status; once space is freed it writes the
    /// checkpoint, and the job completes (it failed there, losing the run's training).
    @Test func aFullDiskAtTheLastCheckpointIsWaitedOut() throws {
        let lines = CapturedLines()
        let scheduler = try shortTraining(checkpointSeconds: 1000, lines: lines)  // the run's last checkpoint only
        var runner = scheduler.runner
        runner.spaceWait.pollSeconds = 0.02
        nonisolated(unsafe) var looks = 0, details: [String] = []
        let store = scheduler.store
        runner.spaceWait.freeBytes = { _ in
            looks += 1
            if looks == 3 { details.append(store.get("pets").detail ?? "") }
            return looks < 4 ? 5 << 20 : 1 << 40
        }
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let folder = scheduler.store.folder("pets")
        let full = FileError.io(path: folder + "/checkpoint.ckpt", operation: "write", errno: ENOSPC)
        nonisolated(unsafe) var refusals = 1
        let outcome = runner.run(job, shouldStop: { false }, fence: {
            guard refusals > 0 else { return }
            refusals -= 1
            throw full
        })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(looks == 4, "looked until the space was there")
        #expect(details.count == 1 && details[0].hasPrefix("waiting for space to write its last checkpoint (step ")
                && details[0].contains(": 5.0 MiB free of ") && details[0].hasSuffix(" needed on the file system of \(folder)"), "\(details)")
        let record = try StateFolder(folder).readRecord()
        #expect(record?.steps ?? 0 > 0 && record?.steps == scheduler.store.get("pets").step)
        let said = lines.all.filter { $0.contains("last checkpoint") }
        #expect(said.count == 2 && said[0].hasPrefix("warning the last checkpoint (step \(record?.steps ?? 0)) cannot be written: \(full); "
                                                     + "the training since its start is kept in memory while the job waits up to 30m")
                && said[1].hasPrefix("info writing the last checkpoint (step \(record?.steps ?? 0)) again"), "\(said)")
    }

    /// Nothing keeps a training job's trainer once the job has ended: a closure of the job's
    /// that the trainer held and that held the trainer (the last checkpoint's wait for space,
    /// 2026-12-05) kept each job's model, optimiser and data, and an idle daemon stayed at
    /// 390 MB after one job of 60 images (75 MB without it); a soak's reached 1.8 GB.
    @Test func aTrainingJobsTrainerIsFreedWhenTheJobEnds() throws {
        final class Weak: @unchecked Sendable { weak var trainer: Trainer? }
        let seen = Weak()
        let scheduler = try shortTraining(checkpointSeconds: 0)
        var runner = scheduler.runner
        runner.madeTrainer = { seen.trainer = $0 }
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(job, shouldStop: { false }) else {
            Issue.record("training failed"); return
        }
        #expect(seen.trainer == nil, "the trainer outlived its job")
    }

    /// The wait for space at a run's last checkpoint ends at its limit (the job fails on the
    /// full disk as before, retried later from the checkpoint on disk) or at once when the
    /// daemon stops (the job stops); nothing half written.
    @Test func aLastCheckpointThatNeverFindsSpaceFailsAtTheLimitOrAStop() throws {
        let scheduler = try shortTraining(checkpointSeconds: 1000)
        var runner = scheduler.runner
        runner.spaceWait.pollSeconds = 0.05
        runner.spaceWait.limit = 0.3
        nonisolated(unsafe) var looks = 0
        runner.spaceWait.freeBytes = { _ in looks += 1; return 0 }
        let folder = scheduler.store.folder("pets")
        let full = FileError.io(path: folder + "/checkpoint.ckpt", operation: "write", errno: ENOSPC)
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let started = Moment.now
        let outcome = runner.run(job, shouldStop: { false }, fence: { throw full })
        guard case .failed(let message, .afterSpaceFreed, _) = outcome else { Issue.record("\(outcome)"); return }
        #expect(message.contains(String(cString: strerror(ENOSPC))))
        #expect(looks >= 2 && started.secondsAgo < 20, "\(looks) looks")
        #expect(!FileManager.default.fileExists(atPath: folder + "/model.json"))

        // A stop during the wait ends it within a poll, not at the limit: a stop like any
        // other (not a failure retried on a timer), from the checkpoint on disk.
        runner.spaceWait.limit = 600
        runner.spaceWait.pollSeconds = 0.05
        looks = 0
        nonisolated(unsafe) var stopping = false
        runner.spaceWait.freeBytes = { _ in looks += 1; if looks == 2 { stopping = true }; return 0 }
        let stopAsked = Moment.now
        let stopped = runner.run(job, shouldStop: { stopping }, fence: { throw full })
        guard case .stopped(let left?, _) = stopped, left < 1 else { Issue.record("\(stopped)"); return }
        #expect(looks == 2 && stopAsked.secondsAgo < 30)
    }

    /// A judge that cannot be saved on a full disk after the training's last checkpoint does
    /// not fail the training (its retry trained the model again); generation trains the judge.
    @Test func aJudgeThatMeetsAFullDiskLeavesTheTrainingDone() throws {
        let lines = CapturedLines()
        let scheduler = try shortTraining(checkpointSeconds: 1000, lines: lines)
        let folder = scheduler.store.folder("pets")
        let full = FileError.io(path: folder + "/judge.ckpt", operation: "write", errno: ENOSPC)
        nonisolated(unsafe) var writes = 0
        let fence: () throws -> Void = {
            writes += 1
            if writes == 2 { throw full }  // the checkpoint's write passes, the judge's does not
        }
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(train, shouldStop: { false }, fence: fence) else { Issue.record("training failed"); return }
        #expect(writes == 2)
        #expect(try Judge.load(from: StateFolder(folder)) == nil)
        #expect(lines.all.contains("warning the judge for the class check could not be saved: \(full); the training is done, "
                                   + "and generation trains the judge again"), "\(lines.all)")
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        #expect(try Judge.load(from: StateFolder(folder)) != nil)
    }

    /// A fence that refuses (a cluster node that lost the dataset's lease) stops the job before
    /// it writes: no checkpoint, no model record, no published images.
    @Test func aRefusingFenceKeepsTheJobFromWriting() throws {
        struct LeaseLost: Error {}
        let scheduler = try scheduler(sliceMinutes: 10)
        var configuration = scheduler.configuration
        configuration.trainingMinutes = 0.005
        let runner = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .failed = runner.run(train, shouldStop: { false }, fence: { throw LeaseLost() }) else {
            Issue.record("the training wrote past a refusing fence"); return
        }
        let folder = scheduler.store.folder("pets")
        #expect(!FileManager.default.fileExists(atPath: folder + "/model.json"))
        #expect(!FileManager.default.fileExists(atPath: folder + "/checkpoint.ckpt"))

        guard case .completed = runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .failed = runner.run(generate, shouldStop: { false }, fence: { throw LeaseLost() }) else {
            Issue.record("the generation published past a refusing fence"); return
        }
        #expect(scheduler.output.current("pets") == nil, "nothing published")
    }

    /// A node killed while it wrote a checkpoint leaves `checkpoint.ckpt.tmp.<pid>`; a cluster's
    /// nodes never sweep at start-up, so the next job on the dataset removes it, holding the
    /// folder's lock, and says so (a two-node soak found one left for good).
    @Test func aJobRemovesWhatAnInterruptedWriteLeft() throws {
        let lines = CapturedLines()
        let scheduler = try shortTraining(checkpointSeconds: 60, lines: lines)
        let runner = JobRunner(configuration: scheduler.configuration, store: scheduler.store, output: scheduler.output,
                               logger: .capturing(into: lines))
        let folder = scheduler.store.folder("pets")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "half".write(toFile: folder + "/checkpoint.ckpt.tmp.4194301", atomically: false, encoding: .utf8)
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        #expect(!FileManager.default.fileExists(atPath: folder + "/checkpoint.ckpt.tmp.4194301"))
        #expect(FileManager.default.fileExists(atPath: folder + "/checkpoint.ckpt"))
        #expect(lines.all.contains { $0.contains("removed what an interrupted write left: checkpoint.ckpt.tmp.4194301") }, "\(lines.all)")
    }

    /// A stop asked while a training job reads its images ends the job there (the daemon
    /// stops within a chunk of files, not after the whole dataset), writing nothing, its budget
    /// kept; while it reads, the status says how far it is and how long is left.
    @Test func aJobReadingItsImagesStopsAndSaysHowFarItIs() throws {
        let scheduler = try scheduler(sliceMinutes: 10)
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .stopped(nil, nil) = scheduler.runner.run(train, shouldStop: { true }) else {
            Issue.record("not stopped while reading"); return
        }
        #expect(!FileManager.default.fileExists(atPath: scheduler.store.folder("pets") + "/model.json"), "no step-0 checkpoint")

        scheduler.store.update("pets") { $0.phase = .failed; $0.lastError = "an earlier attempt's" }
        let control = scheduler.runner.readingControl("pets", phase: .training, shouldStop: { false })
        control.progress(10, 100)
        #expect(scheduler.store.get("pets").phase == .failed, "not said in the first second")
        Thread.sleep(forTimeInterval: 1.05)
        control.progress(25, 100)
        let runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .training && runtime.lastError == nil && runtime.progress == nil)
        #expect(runtime.detail?.hasPrefix("reading its images: 25 of 100, ") == true && runtime.detail?.hasSuffix("s left") == true,
                "\(runtime.detail ?? "nil")")
        control.progress(100, 100)
        #expect(scheduler.store.get("pets").detail?.hasPrefix("reading its images: 25 of 100") == true, "the end is the job's to say")
    }

    /// Generation is refused before anything is written when the dataset's synthd.toml asks for
    /// more images than the daemon's cap (its fault: held until it changes), or for more bytes
    /// than the output's file system has free (a full disk: retried later, then held).
    @Test func generationIsRefusedBeforeWritingOverTheCapOrTheFreeSpace() throws {
        let scheduler = try scheduler(sliceMinutes: 10)
        var configuration = scheduler.configuration
        configuration.trainingMinutes = 0.005
        configuration.maxImagesPerDataset = 1000
        configuration.classCheck = false
        let runner = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }

        let toml = root + "/spool/pets/synthd.toml"
        try "[generation]\npolicy = \"per-class\"\nper_class = 600\n".write(toFile: toml, atomically: true, encoding: .utf8)
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .failed(let message, let retry, _) = runner.run(generate, shouldStop: { false }) else { Issue.record("over the cap"); return }
        #expect(message == "\(toml): asks for 1200 images (per-class: 600 images of every class), over the daemon's cap of 1000 "
            + "per generation ([service] max_images_per_dataset)")
        #expect(retry == .whenChanged)

        try "[generation]\npolicy = \"per-class\"\nper_class = 10000000\n".write(toFile: toml, atomically: true, encoding: .utf8)
        configuration.maxImagesPerDataset = 1_000_000_000
        let roomy = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"))
        guard case .failed(let full, let later, _) = roomy.run(generate, shouldStop: { false }) else { Issue.record("87 TB fitted"); return }
        #expect(full.hasPrefix("\(configuration.output): No space left on device: writing these images needs up to "), "\(full)")
        #expect(later == .afterSpaceFreed(folder: configuration.output) && DiskFull.matches(full))
        #expect(!FileManager.default.fileExists(atPath: scheduler.output.generationsPath("pets")), "nothing written")
    }

    /// With images held out (40 a class), the daemon generates from the checkpoint that scored
    /// best on them, names the generation and the files after it, and status says which it is.
    /// The round ends on steps, not minutes, and checkpoints after every step: a 3-second
    /// budget on a loaded CI machine once made 2 steps and one scored checkpoint.
    @Test func generationUsesTheBestCheckpointOnHeldOutImages() throws {
        var configuration = try Self.petsUnder(root, imagesPerClass: 40)
        configuration.trainingMinutes = 10
        configuration.augmentation = .off
        configuration.maxEpochs = 0.2 // 4 steps of 4 images: 72 training images
        configuration.checkpointSeconds = 0
        configuration.holdOut = true
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        let state = try StateFolder(configuration.state + "/datasets/pets")
        let record = try #require(try state.readRecord())
        let best = try #require(record.best, "40 images a class: some are held out")
        let scores = state.readHeldOutScores()
        #expect(record.steps == 4 && scores.map(\.step) == [1, 2, 3, 4], "\(scores.map(\.step)) of \(record.steps) steps")
        #expect(scores.contains { $0.step == best.step && $0.distance == best.distance })

        try "[generation]\npolicy = \"per-class\"\nper_class = 5\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true,
                                                                       encoding: .utf8)
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        let manifest = try String(contentsOfFile: configuration.output + "/pets/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(manifest.count == 10 && manifest.allSatisfy { $0.contains("-step-\(best.step)-") && $0.contains("\"step\":\(best.step)") },
                "\(manifest.first ?? "")")
        #expect(scheduler.output.current("pets")?.contains("step-\(best.step)") == true)
        let status = try #require(try DatasetStatus.read(configuration.state).first)
        #expect(status.summary().contains("generator: step \(best.step), chosen on \(best.heldOutImages) held-out images"),
                "\(status.summary())")
        #expect(status.summary().contains("/samples.png, losses.png, heldout.png"), "the held-out curve is named with the pictures")
    }
}

extension JobRunnerTests {
    /// Reading the images, training and writing images each say in the log where they are
    /// (every minute; here at every report).
    @Test func longWorkSaysInTheLogWhereItIs() throws {
        var configuration = try Self.petsUnder(root, imagesPerClass: 36)  // 72 images: read in chunks of 32
        configuration.trainingMinutes = 0.02
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        var runner = scheduler.runner
        runner.progressLogSeconds = 0
        let queue = scheduler.queue
        let train = try queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        try "[generation]\npolicy = \"per-class\"\nper_class = 300\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true,
                                                                          encoding: .utf8)
        let generate = try queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = runner.run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        let said = lines.all
        #expect(said.contains { $0.hasPrefix("info reading its images: 32 of 72, ") && $0.hasSuffix(" left") }, "\(said)")
        #expect(said.contains { $0.hasPrefix("info training ") && $0.contains("%: step ") }, "\(said)")
        #expect(said.contains { $0.hasPrefix("info generating ") && $0.contains(" of 600 images, ") && $0.contains(" images/s, ETA ") },
                "\(said)")
    }

    /// A judge's training shows in the dataset's record, at most once a second: `synthd status`
    /// says how far it is, and the stall watch sees progress (a large dataset's judge trains
    /// for minutes, which read as a stuck job).
    @Test func aJudgesTrainingShowsInTheRecord() throws {
        let scheduler = try scheduler(sliceMinutes: 10)
        let before = scheduler.store.get("pets").updatedAt
        let report = scheduler.runner.judgeProgress("pets", "training the judge for the class check")
        report(0.4)
        let first = scheduler.store.get("pets")
        #expect(first.detail == "training the judge for the class check: 40%" && first.updatedAt > before)
        report(0.5)
        #expect(scheduler.store.get("pets").detail == "training the judge for the class check: 40%", "once a second")
    }

    /// A generation with the class check measures each class's diversity: kept in the
    /// dataset's record and shown by `synthd status`.
    @Test func generationRecordsDiversityForStatus() throws {
        let scheduler = try scheduler(sliceMinutes: 10)
        var configuration = scheduler.configuration
        configuration.trainingMinutes = 0.005
        let runner = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        try "[generation]\npolicy = \"per-class\"\nper_class = 20\nshift = 0.25\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true,
                                                                        encoding: .utf8)
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = runner.run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        let diversity = try #require(scheduler.store.get("pets").diversity)
        #expect(diversity.keys.sorted() == ["a", "b"] && diversity.values.allSatisfy { $0 >= 0 })
        let status = try #require(try DatasetStatus.read(configuration.state).first)
        #expect(status.diversity == diversity)
        #expect(status.summary().contains(String(format: "a: 20 (real: 3), diversity %.2f", diversity["a"]!)), "\(status.summary())")
        #expect(status.summary().contains("\n  synthetic per real image: 6.67 (measured: beyond 0.5"), "\(status.summary())")
        #expect(status.summary().contains("\n  model: 2 classes, 6 images (grey, "), "the last checkpoint's: \(status.summary())")
        #expect(status.summary().contains("\n  outputs: 40 images from step-"), "written at the dataset's size: \(status.summary())")
        let located = status.withOutputs(under: configuration.output)
        #expect(located.summary().contains("\n  outputs: 40 images in \(configuration.output)/pets, from step-"), "\(located.summary())")
        // Every manifest line says how many real images its class had, for readers that weigh.
        let manifest = try String(contentsOfFile: configuration.output + "/pets/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(manifest.count == 40 && manifest.allSatisfy { $0.contains("\"real_in_class\":3") }, "\(manifest.first ?? "")")
        // The dataset's shift (a quarter of 8 pixels: 2) moved every image, and says by how much.
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let offsets = try manifest.map { line in
            let parsed = try decoder.decode(SyntheticWriter.ManifestLine.self, from: Data(line.utf8))
            return [try #require(parsed.shiftRight), try #require(parsed.shiftDown)]
        }
        #expect(offsets.allSatisfy { $0.allSatisfy { abs($0) <= 2 } && $0 != [0, 0] } && offsets.contains { $0.contains { abs($0) == 2 } },
                "\(offsets)")
    }
}

extension JobRunnerTests {
    /// Photos larger than the cap come back scaled down to a shorter side of the dataset's
    /// `max_short_side`, the log says so, and the dataset's shift is a share of the written side.
    @Test func largeImagesAreWrittenAtTheCappedSize() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: "\(root)/spool/photos/\(name)", withIntermediateDirectories: true)
            for i in 0..<3 {
                try PNG.write(Image(width: 300, height: 200, mode: .grey, fill: UInt8(name == "a" ? 40 + i : 200 - i)),
                              to: "\(root)/spool/photos/\(name)/\(i).png")
            }
        }
        try "[generation]\npolicy = \"per-class\"\nper_class = 6\nmax_short_side = 64\nshift = 0.25\n"
            .write(toFile: root + "/spool/photos/synthd.toml", atomically: true, encoding: .utf8)
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let train = try scheduler.queue.enqueue(.train, dataset: "photos", now: Date())
        guard case .completed = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        let generate = try scheduler.queue.enqueue(.generate, dataset: "photos", now: Date())
        guard case .completed = scheduler.runner.run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        let out = configuration.output + "/photos"
        // The dataset's output folder is a link to its current generation.
        let files = try ["a", "b"].flatMap { name in
            try FileManager.default.contentsOfDirectory(atPath: out + "/" + name).map { name + "/" + $0 }
        }
        #expect(files.count == 12)
        let sizes = Set(try files.map { file in try PNG.read(path: out + "/" + file) }.map { "\($0.width)x\($0.height)" })
        #expect(sizes == ["96x64"])
        #expect(lines.all.contains { $0.hasPrefix("info images written at 96x64, the dataset's 300x200 scaled down") }, "\(lines.all)")
        let status = try #require(try DatasetStatus.read(configuration.state).first { $0.dataset == "photos" })
        #expect(status.summary().contains("(grey, 300x200)"), "\(status.summary())")
        #expect(status.summary().contains("\n  outputs: 12 images at 96x64 from step-"), "\(status.summary())")
        // A quarter of the written 64 pixels (16), not of the dataset's 200 (50).
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let offsets = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            let parsed = try decoder.decode(SyntheticWriter.ManifestLine.self, from: Data(line.utf8))
            return max(abs(try #require(parsed.shiftRight)), abs(try #require(parsed.shiftDown)))
        }
        #expect(offsets.count == 12 && offsets.allSatisfy { $0 <= 16 }, "\(offsets)")
    }

    /// `resolution = 64` written into a trained dataset's synthd.toml makes a new 64 x 64
    /// model (it used to do nothing): the settled dataset gets a training job, which sets the
    /// 32 x 32 model aside in previous-model/ and trains a new one with the first training's
    /// budget; the daemon-wide default stays the 32 of new datasets.
    @Test func aSynthdTomlAskingForAnotherModelTrainsANewOne() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        configuration.settleSeconds = 0
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed(let fingerprint) = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        scheduler.finish(train, .completed(fingerprint: fingerprint), stopping: false)
        let state = try StateFolder(scheduler.store.folder("pets"))
        let first = try #require(try state.readRecord())
        #expect(first.configuration.resolution == 32)

        try "[training]\nresolution = 64\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true, encoding: .utf8)
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        let jobs = try scheduler.queue.snapshot().filter { $0.dataset == "pets" && $0.state == .queued }
        #expect(jobs.map(\.kind) == [.generate, .train], "the first model's outputs, then the new model: \(jobs)")
        #expect(scheduler.store.get("pets").detail == "synthd.toml asks for a new model: resolution 64 (the model's: 32)")

        guard let job = jobs.last, case .completed = scheduler.runner.run(job, shouldStop: { false }) else {
            Issue.record("the new model's training failed"); return
        }
        let made = try #require(try state.readRecord())
        #expect(made.configuration.resolution == 64 && made.steps > 0)
        #expect(try StateFolder(state.previousModelPath).readRecord() == first)
        #expect(lines.all.contains { $0.contains("synthd.toml asks for a new model (resolution 64 (the model's: 32)): the model of \(first.steps) steps is kept in") },
                "\(lines.all)")
    }

    /// Files a model cannot learn by fine-tuning make a new one, the old set aside: colour
    /// images added to a dataset whose model is grey (read as grey, they were learnt and written
    /// grey, silently), and then every class replaced (another dataset under the same name). A
    /// grey image added to a colour model's dataset, and a class added, are fine-tuned.
    @Test func filesTheModelCannotLearnTrainANewOne() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        configuration.fineTuneMinutes = 0.002
        configuration.settleSeconds = 0
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let state = try StateFolder(scheduler.store.folder("pets"))
        func train() throws -> ModelRecord {
            let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
            guard case .completed(let fingerprint) = scheduler.runner.run(job, shouldStop: { false }) else {
                Issue.record("training failed: \(lines.all)")
                throw CancellationError()
            }
            scheduler.finish(job, .completed(fingerprint: fingerprint), stopping: false)
            return try #require(try state.readRecord())
        }
        func addColour(_ path: String, red: Bool) throws {
            var image = Image(width: 8, height: 8, mode: .rgb)
            for p in 0..<64 { image.pixels[3 * p] = red ? 200 : 90; image.pixels[3 * p + 1] = 90; image.pixels[3 * p + 2] = 90 }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try PNG.write(image, to: path)
        }
        let grey = try train()
        #expect(grey.mode == .grey && grey.classes == ["a", "b"])

        // A grey image stored as RGB (equal channels) is grey: fine-tuned.
        try addColour(root + "/spool/pets/a/grey.png", red: false)
        let tuned = try train()
        #expect(tuned.mode == .grey && tuned.steps > grey.steps && !FileManager.default.fileExists(atPath: state.previousModelPath))

        try addColour(root + "/spool/pets/b/red.png", red: true)
        let colour = try train()
        #expect(colour.mode == .rgb && colour.classes == ["a", "b"])
        #expect(try StateFolder(state.previousModelPath).readRecord() == tuned)
        #expect(lines.all.contains { $0.contains("1 image is in colour now (\(root)/spool/pets/b/red.png), and its model is grey: "
                                                 + "a new model is trained (the model of \(tuned.steps) steps is kept in") }, "\(lines.all)")

        // Every class replaced: a new model of the new classes only.
        for name in ["a", "b"] { try FileManager.default.removeItem(atPath: root + "/spool/pets/" + name) }
        for name in ["cups", "mugs"] { for i in 0..<3 { try addColour("\(root)/spool/pets/\(name)/\(i).png", red: i % 2 == 0) } }
        let other = try train()
        #expect(other.classes == ["cups", "mugs"] && other.mode == .rgb)
        #expect(try StateFolder(state.previousModelPath).readRecord() == colour)
        #expect(lines.all.contains { $0.contains("none of its model's 2 classes (a, b) has images now: a new model is trained") })

        // A class added: fine-tuned, the map grown.
        for i in 0..<3 { try addColour("\(root)/spool/pets/jugs/\(i).png", red: i == 1) }
        let grown = try train()
        #expect(grown.classes == ["cups", "mugs", "jugs"] && grown.steps > other.steps)
        #expect(try StateFolder(state.previousModelPath).readRecord() == colour)
    }

    /// `minutes` raised in a trained dataset's synthd.toml trains its model on for the
    /// difference (it did nothing: `minutes` was read for new models only), from its last
    /// step; once the model has had them nothing more is queued, and the daemon-wide `minutes`
    /// changed trains no model again.
    @Test func aSynthdTomlAskingForMoreMinutesTrainsTheModelOn() throws {
        var configuration = try Self.petsUnder(root)
        configuration.trainingMinutes = 0.002
        configuration.settleSeconds = 0
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed(let fingerprint) = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        scheduler.finish(train, .completed(fingerprint: fingerprint), stopping: false)
        #expect(scheduler.store.get("pets").trainedMinutes == 0.002)
        let state = try StateFolder(scheduler.store.folder("pets"))
        let first = try #require(try state.readRecord())
        func queuedKinds() throws -> [Job] { try scheduler.queue.snapshot().filter { $0.dataset == "pets" && $0.state == .queued } }
        func settle() { scheduler.handle(.changed(dataset: "pets")); scheduler.takeSettled() }

        try "[training]\nminutes = 0.025\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true, encoding: .utf8)
        settle()
        var jobs = try queuedKinds()
        #expect(jobs.map(\.kind) == [.generate, .train], "\(jobs)")
        #expect(scheduler.store.get("pets").detail == "synthd.toml asks for 2s of training, the model has had 0s: training on for 1s",
                "\(scheduler.store.get("pets").detail ?? "")")
        let on = try #require(jobs.last)
        guard case .completed(let again) = scheduler.runner.run(on, shouldStop: { false }) else { Issue.record("training on failed"); return }
        let round = scheduler.store.get("pets")
        #expect(abs((round.budgetSeconds ?? 0) - 0.023 * 60) < 1e-9, "the difference, not fine-tuning's 5 minutes: \(round.budgetSeconds ?? 0)")
        #expect(lines.all.contains { $0.contains("training on from step \(first.steps): synthd.toml asks for 2s of training, the model has had "
                                                 + "0s: training on for 1s: 6 images in 2 classes, 1 s of budget left") }, "\(lines.all)")
        #expect(try #require(try state.readRecord()).steps > first.steps, "from the model's last step")
        scheduler.finish(on, .completed(fingerprint: again), stopping: false)
        #expect(scheduler.store.get("pets").trainedMinutes == 0.025 && scheduler.store.get("pets").roundMinutes == nil)
        jobs = try queuedKinds()
        #expect(jobs.map(\.kind) == [.generate], "\(jobs)")
        settle()
        #expect(try queuedKinds().map(\.kind) == [.generate], "had what it asks: nothing more")

        // The daemon's own minutes raised (the dataset's file gone): new datasets' budget only.
        try FileManager.default.removeItem(atPath: root + "/spool/pets/synthd.toml")
        configuration.trainingMinutes = 0.05
        let restarted = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        restarted.handle(.changed(dataset: "pets"))
        restarted.takeSettled()
        #expect(try restarted.queue.snapshot().filter { $0.state == .queued }.map(\.kind) == [.generate])
    }

    /// A configuration with spool, output and state under `root`, batches of 4, and a spool
    /// holding "pets": classes a and b of three (or `imagesPerClass`) small grey images each.
    static func petsUnder(_ root: String, imagesPerClass: Int = 3) throws -> Configuration {
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (root + "/spool", root + "/out", root + "/state")
        configuration.batch = 4
        for (name, shade) in [("a", 60), ("b", 190)] {
            try FileManager.default.createDirectory(atPath: "\(root)/spool/pets/\(name)", withIntermediateDirectories: true)
            for i in 0..<imagesPerClass {
                var image = Image(width: 8, height: 8, mode: .grey)
                for p in 0..<64 { image.pixels[p] = UInt8((shade + 5 * i + p) % 256) }
                try PNG.write(image, to: "\(root)/spool/pets/\(name)/\(i).png")
            }
        }
        return configuration
    }
}

@Suite struct DiskSpaceTests {
    @Test func estimatesWholeBlocksPerFileAndChecksTheFreeSpace() throws {
        #expect(DiskSpace.estimate(images: 10, width: 28, height: 28, channels: 1) == 10 * (4096 + 256))
        #expect(DiskSpace.estimate(images: 2, width: 100, height: 100, channels: 3) == 2 * (32768 + 256))
        let free = try #require(DiskSpace.freeBytes(at: NSTemporaryDirectory()))
        try DiskSpace.check(NSTemporaryDirectory(), neededBytes: 4096)
        #expect(throws: DiskSpace.Shortage.self) { try DiskSpace.check(NSTemporaryDirectory(), neededBytes: free) }
        // A folder not made yet is measured where it would be (so nothing is made to measure it).
        let unmade = NSTemporaryDirectory() + "synthd-\(UUID().uuidString)/out"
        let there = try #require(DiskSpace.freeBytes(at: unmade))
        #expect(abs(there - free) < 1 << 30 && !FileManager.default.fileExists(atPath: unmade))
        #expect(throws: DiskSpace.Shortage.self) { try DiskSpace.check(unmade, neededBytes: free) }
        // Counts past what an Int holds saturate rather than trap.
        #expect(DiskSpace.estimate(images: .max, width: 28, height: 28, channels: 1) == .max)
        #expect(throws: DiskSpace.Shortage.self) { try DiskSpace.check(unmade, neededBytes: .max) }
    }
}

/// What the daemon does after a failure: a dataset too large for memory is the dataset's
/// fault (held until it or its synthd.toml changes: the OOM killer would otherwise take the
/// daemon down three times before the crash-loop rule gave up on it); a full disk is retried.
@Test func aDatasetTooLargeForMemoryWaitsForAChange() {
    let tooLarge = TrainingSet.Error.tooManyImages(path: "spool/huge", images: 9_000_000, resolution: 64, bytes: 200 << 30,
                                                   limit: MemoryLimit(bytes: 12 << 30, source: "cgroup memory.max of /system.slice/synthd.service"))
    var configuration = Configuration()
    (configuration.state, configuration.output) = ("/var/lib/synthd", "/srv/out")
    #expect(JobRunner.retry(for: tooLarge, configuration: configuration) == .whenChanged)
    // A full disk: held until space is freed on the file system of the folder the error names.
    let full = FileError.io(path: "/srv/out/pets/x.png", operation: "write", errno: ENOSPC)
    #expect(JobRunner.retry(for: full, configuration: configuration) == .afterSpaceFreed(folder: "/srv/out"))
    let checkpoint = FileError.io(path: "/var/lib/synthd/datasets/pets/checkpoint.ckpt", operation: "write", errno: EDQUOT)
    #expect(JobRunner.retry(for: checkpoint, configuration: configuration) == .afterSpaceFreed(folder: "/var/lib/synthd"))
    let shortage = DiskSpace.Shortage(path: "/var/lib/synthd/datasets/pets", neededBytes: 1 << 30, freeBytes: 1 << 20)
    #expect(JobRunner.retry(for: shortage, configuration: configuration) == .afterSpaceFreed(folder: "/var/lib/synthd"))
    // Known only by its text (wrapped by another layer): the path its message begins with.
    struct Wrapped: Error, CustomStringConvertible { let description: String }
    let wrapped = Wrapped(description: "/var/lib/synthd/datasets/pets/samples.png: \(String(cString: strerror(ENOSPC)))")
    #expect(JobRunner.retry(for: wrapped, configuration: configuration) == .afterSpaceFreed(folder: "/var/lib/synthd"))
    // A neighbour whose name merely starts like the state folder's is not in it.
    let neighbour = FileError.io(path: "/var/lib/synthd-old/x", operation: "write", errno: ENOSPC)
    #expect(JobRunner.retry(for: neighbour, configuration: configuration) == .afterSpaceFreed(folder: "/srv/out"))
    #expect(JobRunner.retry(for: FileError.io(path: "/srv/out/x.png", operation: "write", errno: EIO), configuration: configuration) == .later)
}

@Suite struct GenerationPlanTests {
    /// The default policy enlarges a balanced dataset (it used to get nothing), and tops an
    /// unbalanced one up before adding the same share to every class, no class past 0.5
    /// synthetic images per real one; without the cap the result is balanced.
    @Test func balanceThenEnlarge() {
        let defaults = Configuration()
        #expect(defaults.policy == .balance && defaults.enlarge == 0.5 && defaults.maxSyntheticPerReal == 0.5)
        let balanced = GenerationPlan(settings: defaults, real: [100, 100, 100])
        #expect(balanced.counts == [50, 50, 50])
        #expect(balanced.rule == "balance: every class topped up to the largest class (100), then 50 more each (enlarge 0.5 x 100)")
        let capped = GenerationPlan(settings: defaults, real: [100, 20, 0, 95, 7])
        #expect(capped.counts == [50, 10, 0, 47, 3], "0.5 per real image, rounded down: never beyond the cap")
        #expect(capped.rule == "balance: every class topped up to the largest class (100), then 50 more each (enlarge 0.5 x 100); "
            + "3 of 5 classes capped at 0.5 per real image (max_synthetic_per_real); 1 of 5 classes left out: no real images now")

        var settings = defaults
        settings.maxSyntheticPerReal = 0
        let unbalanced = GenerationPlan(settings: settings, real: [100, 20, 40])
        #expect(unbalanced.counts == [50, 130, 110])
        #expect(zip(unbalanced.counts, [100, 20, 40]).allSatisfy { $0 + $1 == 150 })
        // A class the dataset lost (the class map only grows) is not written, whatever the policy.
        #expect(GenerationPlan(settings: settings, real: [100, 20, 0]).counts == [50, 130, 0])
        settings.maxSyntheticPerReal = 2
        #expect(GenerationPlan(settings: settings, real: [100, 20, 0]).counts == [50, 40, 0])
        settings.maxSyntheticPerReal = 0
        settings.enlarge = 0
        #expect(GenerationPlan(settings: settings, real: [100, 100]).counts == [0, 0], "enlarge 0: balance only")
        #expect(GenerationPlan(settings: settings, real: [100, 100]).rule == "balance: every class topped up to the largest class (100)")
        settings.balanceTo = 70
        settings.enlarge = 1
        #expect(GenerationPlan(settings: settings, real: [100, 7]).counts == [70, 133], "balance_to below a class: only the extra")
        settings.enlarge = 0.01
        #expect(GenerationPlan(settings: settings, real: [3]).counts == [68], "67 to balance, and 0.7 rounds up to 1")
        settings.policy = .perClass
        settings.perClass = 9
        #expect(GenerationPlan(settings: settings, real: [100, 7]).counts == [9, 9])
        let lost = GenerationPlan(settings: settings, real: [100, 0, 7])
        #expect(lost.counts == [9, 0, 9])
        #expect(lost.rule == "per-class: 9 images of every class; 1 of 3 classes left out: no real images now")
    }

    /// A model with no image counts (neither its last training's nor the dataset's files):
    /// `per_class` writes every class, balance has nothing to go by.
    @Test func withoutTheLastTrainingsCountsOnlyPerClassWrites() {
        let record = ModelRecord(configuration: ModelConfiguration(), classes: ["cat", "dog"], mode: .grey, imageWidth: 28,
                                 imageHeight: 28, steps: 10, imagesAtLastRun: 8, options: TrainingOptions())
        var settings = Configuration()
        #expect(GenerationPlan(settings: settings, record: record, real: nil).counts == [0, 0])
        settings.policy = .perClass
        settings.perClass = 3
        #expect(GenerationPlan(settings: settings, record: record, real: nil).counts == [3, 3])
    }

    @Test func theEnlargeShareAndTheCapAreSettingsAndPartOfTheGeneration() throws {
        let c = try Configuration.parse("[generation]\nenlarge = 2\nmax_synthetic_per_real = 0\n", path: "t.toml")
        #expect(c.enlarge == 2 && c.maxSyntheticPerReal == 0)
        #expect(c.generationID(checkpoint: "s") != Configuration().generationID(checkpoint: "s"))
        var uncapped = Configuration()
        uncapped.maxSyntheticPerReal = 0
        #expect(uncapped.generationID(checkpoint: "s") != Configuration().generationID(checkpoint: "s"), "the cap decides counts")
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[generation]\nenlarge = -1\n", path: "t.toml") }
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[generation]\nmax_synthetic_per_real = -1\n", path: "t.toml") }
        let unshifted = try Configuration.parse("[generation]\nshift = 0\n", path: "t.toml")
        #expect(Configuration().shift == 0 && unshifted.shift == 0)
        let shifted = try Configuration.parse("[generation]\nshift = 0.07\n", path: "t.toml")
        #expect(shifted.shift == 0.07 && shifted.generationID(checkpoint: "s") != Configuration().generationID(checkpoint: "s"))
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[generation]\nshift = 0.5\n", path: "t.toml") }
        #expect(SyntheticWriter.pixels(ofShift: 0.07, width: 28, height: 28) == 2 && SyntheticWriter.pixels(ofShift: 0.07, width: 64, height: 80) == 4)
    }
}
