import CUDA
import Engine
import Foundation
import Imaging

/// How a dataset is trained. Saved with the model so a resumed run trains the same way.
public struct TrainingOptions: Sendable, Codable, Equatable {
    public var batchSize = 64
    public var seed: UInt64 = 0
    /// Hinge: on Fashion-MNIST (20 minutes, no DiffAugment) own-class share 90.4% and Frechet
    /// distance 10.3, against 89.9% and 10.8 with the non-saturating loss (one run each).
    public var loss: AdversarialLoss = .hinge
    /// DiffAugment on D's inputs (decided once, when the model is made; see AugmentationPolicy).
    public var augmentation = true
    /// With `augmentation`: each transform applied with an adaptive probability (ADA,
    /// `AdaptiveAugmentation`) instead of always. Models saved before it existed: false.
    public var adaptiveAugmentation = false
    /// Whether D sees its images augmented (DiffAugment, always or adaptively): such a model
    /// is not capped by passes, and many passes are not a memorisation warning.
    public var augmentsImages: Bool { augmentation || adaptiveAugmentation }
    public var emaDecay: Float = 0.999
    public var learningRate: Float = 2e-4
    /// D's own learning rate (two time-scale updates, Heusel et al. 2017); nil: `learningRate`.
    public var discriminatorLearningRate: Float?
    /// Seconds between checkpoints (and refreshed pictures).
    public var checkpointSeconds: Double = 60
    /// Class-conditional BatchNorm in the generator (see `ModelConfiguration`); new models only.
    public var classConditionalNorm = GeneratorConditioning.standard.classConditionalNorm
    /// BatchNorm or spectral normalisation in D (see `ModelConfiguration`); new models only.
    public var discriminatorNormalization = DiscriminatorNormalization.standard
    /// Weight of consistency regularisation in D's loss (`ConsistencyRegularization`); 0: off.
    public var consistencyWeight: Float = 0
    /// Weight of LeCam regularisation in D's loss (`LeCamRegularization`); 0: off.
    public var leCamWeight: Float = 0
    /// Weight of the mode-seeking term in G's loss (`ModeSeekingRegularization`); 0: off.
    /// Models saved before it existed: 0.
    public var modeSeekingWeight: Float = 0
    /// Channels of G's and D's widest-resolution layers (`ModelConfiguration.baseChannels`);
    /// new models only. Not stored here: model.json keeps it in the configuration.
    public var baseChannels = ModelConfiguration().baseChannels
    /// Keeps about one real image in ten out of training and generates from the checkpoint
    /// chosen on them (`HeldOutSplit`, `CheckpointSelection`). Off by default: from 50 images
    /// per class in 10 CPU-minutes it cost the mixed classifier (docs/quality.md); it is for
    /// runs long enough to overfit. Models saved before it existed: false.
    public var holdOut = false

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case batchSize, seed, loss, augmentation, adaptiveAugmentation, emaDecay, learningRate, checkpointSeconds, classConditionalNorm
        case discriminatorNormalization, discriminatorLearningRate, consistencyWeight, leCamWeight, holdOut
        case modeSeekingWeight
    }

    /// A key missing from an older model.json keeps its default here (what that model used).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var o = TrainingOptions()
        o.batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? o.batchSize
        o.seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? o.seed
        o.loss = try c.decodeIfPresent(AdversarialLoss.self, forKey: .loss) ?? o.loss
        o.augmentation = try c.decodeIfPresent(Bool.self, forKey: .augmentation) ?? o.augmentation
        o.adaptiveAugmentation = try c.decodeIfPresent(Bool.self, forKey: .adaptiveAugmentation) ?? false
        o.emaDecay = try c.decodeIfPresent(Float.self, forKey: .emaDecay) ?? o.emaDecay
        o.learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? o.learningRate
        o.discriminatorLearningRate = try c.decodeIfPresent(Float.self, forKey: .discriminatorLearningRate)
        o.checkpointSeconds = try c.decodeIfPresent(Double.self, forKey: .checkpointSeconds) ?? o.checkpointSeconds
        o.classConditionalNorm = try c.decodeIfPresent(Bool.self, forKey: .classConditionalNorm) ?? false
        o.discriminatorNormalization = try c.decodeIfPresent(DiscriminatorNormalization.self,
                                                             forKey: .discriminatorNormalization) ?? .batch
        o.consistencyWeight = try c.decodeIfPresent(Float.self, forKey: .consistencyWeight) ?? 0
        o.leCamWeight = try c.decodeIfPresent(Float.self, forKey: .leCamWeight) ?? 0
        o.modeSeekingWeight = try c.decodeIfPresent(Float.self, forKey: .modeSeekingWeight) ?? 0
        o.holdOut = try c.decodeIfPresent(Bool.self, forKey: .holdOut) ?? false
        self = o
    }
}

/// Whether and how a new model trains with DiffAugment.
///
/// DiffAugment keeps D from memorising a small dataset, and costs a large one: on all 60,000
/// Fashion-MNIST images, 20 minutes with it gave a Frechet distance of 43.6 and a
/// synthetic-only classifier of 59.1% on the real test set; without it 10.8 and 79.3%.
/// `auto` uses it below `autoThreshold` images. `adaptive` (ADA) uses it at any size, each
/// transform with the probability that D's overfitting calls for (`AdaptiveAugmentation`).
public enum AugmentationPolicy: String, Sendable, CaseIterable {
    case auto, on, off, adaptive

    public static let autoThreshold = 10_000

    public func enabled(forImages count: Int) -> Bool {
        switch self {
        case .on, .adaptive: return true
        case .off: return false
        case .auto: return count < Self.autoThreshold
        }
    }

    /// What a model's options were made with ("auto" resolved): off, on (DiffAugment), or adaptive.
    public init(madeWith options: TrainingOptions) {
        self = !options.augmentation ? .off : options.adaptiveAugmentation ? .adaptive : .on
    }

    /// Sets `options.augmentation` and `options.adaptiveAugmentation` for a new model of
    /// `count` images.
    public func configure(_ options: inout TrainingOptions, forImages count: Int) {
        options.augmentation = enabled(forImages: count)
        options.adaptiveAugmentation = self == .adaptive
    }
}

/// How long to train in one run.
public enum TrainingBudget: Sendable, Equatable {
    case steps(Int)
    case seconds(Double)
    /// Whichever ends first (the daemon: its minutes, and its cap on passes over the data).
    case secondsOrSteps(seconds: Double, steps: Int)
}

extension TrainingBudget {
    /// The most passes over its images one training round of a model without augmentation
    /// makes by default, whichever ends first with its minutes (the daemon's `max_epochs`,
    /// `synthd train --max-epochs`). An unaugmented discriminator that sees the same images
    /// hundreds of times memorises them and the generator's classes collapse: on an H200 a
    /// minute on 10,000 images (286 passes) collapsed every class where 128 passes did not, and
    /// 20 GPU-minutes of the full Fashion-MNIST would be over a thousand. Augmented models
    /// (DiffAugment, ADA: small datasets) are not capped; many passes are what they are for.
    public static let defaultMaxEpochs = 100.0

    /// `seconds`, or `passes` over `trainer`'s images, whichever ends first; only the seconds
    /// where no cap applies (see `Trainer.steps(forPasses:)`). `done`: steps of the round
    /// already taken (a resumed round goes on counting).
    public static func minutes(_ seconds: Double, orPasses passes: Double, of trainer: Trainer, done: Int = 0) -> TrainingBudget {
        guard let cap = trainer.steps(forPasses: passes) else { return .seconds(seconds) }
        return .secondsOrSteps(seconds: seconds, steps: max(0, cap - done))
    }

    /// What a model that has made `unaugmentedPasses` passes over its `images` images without
    /// augmentation (`ModelRecord.unaugmentedPasses`) should be told, past `defaultMaxEpochs`;
    /// nil below it or with augmentation. Said at the end of the training that crosses the line
    /// (`synthd train`, the daemon's log), before the samples show it: `--steps` is never capped,
    /// and each round's cap does not stop rounds from adding up.
    public static func memorisationWarning(unaugmentedPasses: Double?, images: Int) -> String? {
        guard let passes = unaugmentedPasses, passes > defaultMaxEpochs else { return nil }
        return String(format: "the model has now made about %.0f passes over its %d images without augmentation; "
                      + "past %@ a discriminator memorises the images and classes collapse (docs/training.md): "
                      + "more images, or a new model with augmentation (synthd train --augmentation on; the daemon's "
                      + "[training] augmentation, for a model trained afresh), help more than more training",
                      passes, images, describe(passes: defaultMaxEpochs))
    }

    /// A number of passes as messages write it: "100", or "12.5".
    public static func describe(passes: Double) -> String {
        passes.rounded() == passes ? "\(Int(passes))" : "\(passes)"
    }
}

extension Trainer {
    /// The steps of `passes` passes over the training images at the model's batch size; nil
    /// where the cap does not apply: a model that trains with augmentation, or `passes` 0.
    public func steps(forPasses passes: Double) -> Int? {
        guard !record.options.augmentsImages, passes > 0 else { return nil }
        return Int((passes * Double(training.count) / Double(record.options.batchSize)).rounded(.up))
    }
}

/// A progress report, sent after every step.
public struct TrainingProgress: Sendable {
    public var step: Int
    /// Steps of this run so far.
    public var runSteps: Int
    public var elapsed: Double
    /// Fraction of this run's budget done, 0...1.
    public var fraction: Double
    /// Seconds left in this run's budget (by steps/s for a step budget).
    public var remaining: Double
    public var imagesPerSecond: Double
    public var report: StepReport

    /// The step, its losses and the speed, as `synthd train`'s progress line and the daemon's
    /// log show them.
    public var summary: String {
        // The speed last, where the daemon's log line puts the ETA after it.
        String(format: "step %d  D %.3f  G %.3f", step, report.discriminatorLoss, report.generatorLoss)
            + (report.augmentationProbability.map { String(format: "  augment p %.2f", $0) } ?? "")
            + (report.pairSpread.map { String(format: "  pair spread %.3f", $0) } ?? "")
            + String(format: "  %.0f img/s", imagesPerSecond)
    }
}

/// Trains one dataset's GAN in a state folder, resuming and fine-tuning from what is there.
///
/// State folder: `model.json` (what the model is: shapes, classes, image size, options, step),
/// `checkpoint.ckpt` (weights, optimisers, EMA, random streams, data order), `losses.csv`,
/// `dataset.json` (images per class, rejected files and why), `judge.ckpt` (see
/// `refreshJudge`), with images held out `heldout.csv` (each checkpoint's score on them) and
/// `best-step-N.ckpt` (the best-scoring generator, what generation uses), and the pictures `samples.png` (one row per class, `classes.txt` names the
/// rows) and `losses.png`. Every file is replaced atomically.
public final class Trainer {
    /// The dataset.
    public let set: TrainingSet
    /// What G and D train on: `set` less the held-out images (all of it without them).
    public let training: TrainingSet
    /// The images held out (`TrainingOptions.holdOut`); nil when none are (the option is off,
    /// or no class has `HeldOutSplit.smallestClass` images).
    public let split: HeldOutSplit?
    public let state: StateFolder
    public private(set) var record: ModelRecord
    public let step: TrainingStep
    public let ema: ExponentialMovingAverage
    /// Where the steps run (`CPUStepEngine` unless a device was given).
    public private(set) var engine: any StepEngine
    private let emaGenerator: Generator
    private var order: DataOrder
    private var history: [LossPoint]
    private var heldOutScores: [HeldOutScore] = []
    /// Scores checkpoints once the judge is at hand (`prepareSelection`).
    private var selection: CheckpointSelection?
    private var lastCheckpoint = Moment.now
    /// Called before anything is written to the state folder; throwing refuses the write. A
    /// cluster node passes its lease check here, so a node that lost a dataset's lease to
    /// another node never overwrites what the new owner writes.
    public var beforeWrite: () throws -> Void = {}
    /// Whether training goes on past a periodic checkpoint that failed with this error (the
    /// daemon: a full disk), trying again at the next interval; `skippedCheckpoint` hears of
    /// each one, with the steps it would have saved. Failing the job there lost the training
    /// since the last checkpoint each time a disk filled for a moment; now only a run whose
    /// last checkpoint cannot be written fails (the one before it stays on disk).
    public var mayTrainPastFailedCheckpoint: (any Error) -> Bool = { _ in false }
    public var skippedCheckpoint: (_ error: any Error, _ steps: Int) -> Void = { _, _ in }
    /// Whether to write the run's last checkpoint again after it failed with this error. The
    /// caller waits first for what failed it (the daemon: space on a full disk, the model kept
    /// in memory meanwhile) and answers false to fail the run, the checkpoint before it intact.
    public var mayRetryLastCheckpoint: (any Error) -> Bool = { _ in false }

    /// Loads the dataset as the state folder's model expects (its classes first, its channel
    /// mode and resolution), so that classes keep their indices.
    /// `memory`: what loading may take (see `TrainingSet.load`).
    public static func loadDataset(_ root: String, state: StateFolder, resolution: Int,
                                   limits: ImageLimits = .standard, confinedTo confinement: String? = nil,
                                   memory: MemoryLimit? = .current(),
                                   control: TrainingSet.LoadControl = TrainingSet.LoadControl()) throws -> TrainingSet {
        if let record = try state.readRecord() {
            return try TrainingSet.load(root, classMap: ClassMap(names: record.classes),
                                        resolution: record.configuration.resolution, fitting: record.imageFitting,
                                        mode: record.mode, limits: limits,
                                        confinedTo: confinement, memory: memory, control: control)
        }
        return try TrainingSet.load(root, resolution: resolution, limits: limits, confinedTo: confinement, memory: memory,
                                    control: control)
    }

    /// A trainer for `set`: a fresh model, or the state folder's, grown by any new classes.
    /// With a `device` the steps run there (`DeviceStepEngine`; every model option has a device
    /// implementation).
    public init(set: TrainingSet, state: StateFolder, options requested: TrainingOptions,
                device: (any KernelDevice)? = nil) throws {
        self.set = set
        self.state = state
        let previous = try state.readRecord()
        // A resumed model trains as it began (seed, batch, loss...); how often it checkpoints
        // is the caller's choice.
        var options = previous?.options ?? requested
        options.checkpointSeconds = requested.checkpointSeconds
        let split = options.holdOut ? HeldOutSplit(set) : nil
        self.split = (split?.heldOut.count ?? 0) >= CheckpointSelection.smallestHeldOut ? split : nil
        training = self.split?.training ?? set
        var configuration = previous?.configuration
            ?? ModelConfiguration(imageChannels: set.channels, classes: set.classMap.count, resolution: set.resolution,
                                  baseChannels: requested.baseChannels, classConditionalNorm: options.classConditionalNorm,
                                  discriminatorNormalization: options.discriminatorNormalization)
        configuration.classes = set.classMap.count
        let generator = Generator(configuration), discriminator = Discriminator(configuration)
        initializeDCGAN(generator.parameters, seed: options.seed)
        initializeDCGAN(discriminator.parameters, seed: options.seed &+ 1000)
        step = TrainingStep(generator: generator, discriminator: discriminator, learningRate: options.learningRate,
                            discriminatorLearningRate: options.discriminatorLearningRate,
                            loss: options.loss, seed: options.seed &+ 2000)
        if options.augmentation {
            let augmentation = DiffAugment(seed: options.seed &+ 3000)
            if options.adaptiveAugmentation { augmentation.adaptive = AdaptiveAugmentation() }
            step.augmentation = augmentation
        }
        if options.consistencyWeight > 0 {
            step.consistency = ConsistencyRegularization(weight: options.consistencyWeight, seed: options.seed &+ 5000)
        }
        if options.leCamWeight > 0 { step.leCam = LeCamRegularization(weight: options.leCamWeight) }
        if options.modeSeekingWeight > 0 { step.modeSeeking = ModeSeekingRegularization(weight: options.modeSeekingWeight) }
        ema = ExponentialMovingAverage(generator.parameters, decay: options.emaDecay)
        emaGenerator = Generator(configuration)
        order = DataOrder(seed: options.seed &+ 4000, count: training.count)
        history = []
        record = ModelRecord(configuration: configuration, classes: set.classMap.names, mode: set.mode,
                             imageWidth: set.imageWidth, imageHeight: set.imageHeight, fitting: set.fitting, steps: 0,
                             imagesAtLastRun: set.count, options: options)
        engine = CPUStepEngine(step, average: ema)
        if let previous {
            try resume(previous)
        }
        // After the resume: the device starts from the checkpoint's weights.
        if let device {
            engine = try DeviceStepEngine(step, average: ema, set: training, batch: record.options.batchSize, seed: options.seed &+ 6000,
                                          mostDecay: record.options.emaDecay, on: device)
        }
    }

    private var emaTensors: [NamedTensor] {
        zip(step.generator.parameters, ema.shadows).map { NamedTensor("ema.\($0.name)", $1) }
    }

    private func resume(_ previous: ModelRecord) throws {
        let path = state.checkpointPath
        let checkpoint = try Checkpoint.read(from: path)
        var growable = step.classTableNames
        for table in [step.generator.embedding.weight] + step.generator.classNorms.flatMap({ [$0.scale, $0.shift] }) {
            growable.insert("ema.\(table.name)")
        }
        record.steps = try step.restore(from: checkpoint, extra: emaTensors, path: path,
                                        growableRows: set.classMap.count > previous.classes.count ? growable : [])
        if let augmentation = step.augmentation, let saved = checkpoint.metadata["augment.rng"] {
            augmentation.rng = try RandomGenerator(decoding: saved, path: path)
        }
        if let saved = checkpoint.metadata["data.order"] {
            order = try DataOrder(decoding: saved, path: path)
        }
        // New images: a new epoch over the new count (the old position means nothing now).
        if order.count != training.count { order.restart(count: training.count) }
        history = state.readHistory()
        record.imageWidth = previous.imageWidth
        record.imageHeight = previous.imageHeight
        record.fitting = previous.fitting
        // The best generator stands while the data does: a fine-tune (images or classes added)
        // is scored against other held-out images by another judge, and the old best does not
        // know a new class.
        let sameData = previous.imagesAtLastRun == set.count && previous.classes == set.classMap.names
        record.dataChanges = previous.dataChanges
        if !sameData, previous.dataChanges?.last != record.steps {  // once, however often a run is cut short before its checkpoint
            record.dataChanges = (previous.dataChanges ?? []) + [record.steps]
        }
        if let best = previous.best, sameData, let split, best.heldOut == BestGenerator.describe(split.fingerprint) {
            record.best = best
            heldOutScores = state.readHeldOutScores()
        } else {
            // The old scores and their picture were measured against images this run does
            // not hold out: left, classes.txt would go on describing them.
            state.removeHeldOutScores()
        }
    }

    /// Trains until the budget is spent or `shouldStop()` says so, then checkpoints.
    /// Returns the number of steps taken in this run.
    @discardableResult
    public func train(_ budget: TrainingBudget, shouldStop: () -> Bool = { false },
                      progress: (TrainingProgress) -> Void = { _ in }) throws -> Int {
        let batch = record.options.batchSize
        let real = Tensor(zeros: [batch, set.channels, set.resolution, set.resolution])
        var labels: [Int32] = []
        var indices = [Int](repeating: 0, count: batch)
        let start = Moment.now  // budgets on the monotonic clock: see `Moment`
        lastCheckpoint = start
        var runSteps = 0
        try prepareSelection(shouldStop: shouldStop)
        while !shouldStop() {
            let elapsed = start.secondsAgo
            if case .steps(let n) = budget, runSteps >= n { break }
            if case .seconds(let s) = budget, elapsed >= s { break }
            if case .secondsOrSteps(let s, let n) = budget, elapsed >= s || runSteps >= n { break }

            // EMA warm-up: early on the average would mostly remember the initialisation.
            let t = record.steps + 1
            let reports = try engine.step(averageDecay: min(record.options.emaDecay, Float(1 + t) / Float(10 + t))) {
                for i in 0..<batch { indices[i] = order.next() }
                training.fill(real, labels: &labels, indices: indices)
                return (real, labels)
            }
            record.steps += 1
            runSteps += 1
            // A device engine reports every few steps (`StepEngine.step`): progress goes with them.
            guard let report = reports.last else { continue }
            appendHistory(reports)

            let now = start.secondsAgo
            let rate = Double(runSteps) / max(now, 1e-9)
            let fraction: Double, remaining: Double
            switch budget {
            case .steps(let n): fraction = Double(runSteps) / Double(n); remaining = Double(n - runSteps) / rate
            case .seconds(let s): fraction = min(1, now / s); remaining = max(0, s - now)
            case .secondsOrSteps(let s, let n):
                fraction = min(1, max(now / s, Double(runSteps) / Double(max(n, 1))))
                remaining = max(0, min(s - now, Double(n - runSteps) / rate))
            }
            progress(TrainingProgress(step: record.steps, runSteps: runSteps, elapsed: now, fraction: fraction,
                                      remaining: remaining, imagesPerSecond: rate * Double(batch), report: report))
            if lastCheckpoint.secondsAgo >= record.options.checkpointSeconds {
                do { try saveCheckpoint() } catch where mayTrainPastFailedCheckpoint(error) {
                    lastCheckpoint = .now
                    skippedCheckpoint(error, record.steps)
                }
            }
        }
        while true {
            do { try saveCheckpoint(); break } catch where mayRetryLastCheckpoint(error) { continue }
        }
        return runSteps
    }

    /// The losses of the steps up to `record.steps`, the last of them `reports.last`.
    private func appendHistory(_ reports: [StepReport]) {
        for (i, report) in reports.enumerated() {
            history.append(LossPoint(step: record.steps - reports.count + 1 + i, discriminator: report.discriminatorLoss,
                                     generator: report.generatorLoss, augmentationProbability: report.augmentationProbability,
                                     pairSpread: report.pairSpread))
        }
    }

    /// What writing a checkpoint takes on disk (next to the previous one, which an atomic
    /// write keeps until the new one is whole), with room for the pictures and records.
    /// With images held out, a new best generator too (written before the old one is removed).
    public var checkpointBytes: Int {
        let checkpoint = step.checkpointBytesAtMost(steps: record.steps, extra: emaTensors, metadata: checkpointMetadata)
        let best = split == nil ? 0
            : Checkpoint.bytesAtMost(bestGeneratorTensors, metadata: bestGeneratorMetadata(step: .max, distance: -.greatestFiniteMagnitude))
        return checkpoint + best + (8 << 20)
    }

    /// What a best generator's file holds: the averaged generator (`SavedGenerator` reads it).
    private var bestGeneratorTensors: [NamedTensor] {
        emaGenerator.parameters.map { NamedTensor("ema.\($0.name)", $0.value) } + step.generator.buffers
    }

    private func bestGeneratorMetadata(step: Int, distance: Double) -> [String: String] {
        ["best.step": String(step), "best.kernel_distance": String(distance)]
    }

    /// What the trainer keeps in a checkpoint beside the step's own state: the data order and
    /// the augmentation's random stream.
    private var checkpointMetadata: [String: String] {
        var metadata: [String: String] = ["data.order": order.encoded]
        if let augmentation = step.augmentation { metadata["augment.rng"] = augmentation.rng.encoded }
        return metadata
    }

    /// Writes the checkpoint, the model record, the loss history and the pictures.
    public func saveCheckpoint() throws {
        try beforeWrite()
        appendHistory(try engine.flushReports())
        try engine.synchronize()
        try step.checkpoint(steps: record.steps, extra: emaTensors, metadata: checkpointMetadata).write(to: state.checkpointPath)
        record.imagesAtLastRun = set.count
        record.checkpointID = "step-\(record.steps)"
        history = LossPoint.thinned(history, toAtMost: LossPoint.historyLimit)
        try state.writeHistory(history)
        try state.writeDatasetReport(DatasetReport(set))
        try scoreOnHeldOutImages()
        try state.writePictures(samples: sampleGrid(), losses: LossCurve.render(history, dataChanges: record.dataChanges ?? []), classes: record.classes)
        // The record last: it names the checkpoint (and the best generator) now on disk.
        try state.writeRecord(record)
        if split != nil { state.removeBestGenerators(except: record.best) }
        lastCheckpoint = .now
    }

    /// With images held out: the judge that scores checkpoints, trained first when the state
    /// folder's is not this dataset's (the same judge as the class check's, which `refreshJudge`
    /// then finds current). Without it (stopped first) checkpoints go unscored.
    private func prepareSelection(shouldStop: () -> Bool) throws {
        guard let split, selection == nil else { return }
        guard try refreshJudge(shouldStop: shouldStop) != .stopped, let judge = try Judge.load(from: state) else { return }
        selection = CheckpointSelection(split: split, judge: judge, seed: record.options.seed &+ 7000)
    }

    /// Scores the EMA generator on the held-out images (`heldout.csv`, `heldout.png`) and, when
    /// it beats the best so far, writes it to a new best file that the record will name.
    private func scoreOnHeldOutImages() throws {
        guard let selection, heldOutScores.last?.step != record.steps else { return }
        let measure = try selection.score(averagedGenerator(), record: record)
        // The scores of this data's checkpoints only: a fine-tune starts the list again.
        let lowest = heldOutScores.map(\.distance).min()
        heldOutScores.append(HeldOutScore(step: record.steps, measure))
        if CheckpointSelection.isChosen(measure, lowest: lowest) {
            let best = BestGenerator(step: record.steps, distance: measure.distance, heldOutImages: selection.heldOutCount,
                                     heldOut: selection.fingerprint)
            var checkpoint = Checkpoint()
            checkpoint.add(bestGeneratorTensors)
            checkpoint.metadata = bestGeneratorMetadata(step: best.step, distance: measure.distance)
            try checkpoint.write(to: state.bestGeneratorPath(best))
            record.best = best
        }
        try state.writeHeldOutScores(heldOutScores, chosenStep: record.best?.step)
    }

    /// What `refreshJudge` did.
    public enum JudgeRefresh: Sendable, Equatable {
        case upToDate, trained, stopped
    }

    /// Trains the judge of generation's class check (`judge.ckpt`, see `Judge`) on this
    /// dataset unless the state folder's judge was trained on the same classes and counts.
    /// Call it when training is done: it depends on the data only, not on the model.
    @discardableResult
    /// With images held out, `train` calls it first (its judge scores the checkpoints).
    public func refreshJudge(shouldStop: () -> Bool = { false }, progress: (Double) -> Void = { _ in }) throws -> JudgeRefresh {
        if let judge = try? Judge.load(from: state), judge.isCurrent(for: set) { return .upToDate }
        guard let judge = Judge.train(on: set, seed: Judge.seed(for: record.options), shouldStop: shouldStop,
                                      progress: progress) else { return .stopped }
        try beforeWrite()
        try judge.save(in: state)
        return .trained
    }

    /// The EMA generator, ready to sample (as of the last checkpoint when a device trains:
    /// `train` ends with one).
    public func averagedGenerator() -> Generator {
        ema.copy(into: emaGenerator.parameters)
        return emaGenerator
    }

    /// Samples of every class (up to `SampleLayout.maxClasses`), from fixed noise, beside the
    /// first real images of the class, so that a look tells how close they come: a block of
    /// up to 16 classes, one row each, named on the left; more blocks side by side, four to a
    /// band. Tiles at the dataset's size up to 128 pixels a side (64 beyond one block), else
    /// at the model's resolution: 128 tiles of 12-megapixel photos would take 4.6 GB for a
    /// preview.
    func sampleGrid() throws -> Image {
        let layout = SampleLayout(classes: record.classes.count)
        let sampler = Sampler(generator: averagedGenerator(), record: record)
        let labels = (0..<layout.shown).flatMap { Array(repeating: Int32($0), count: layout.columns) }
        let squares = try sampler.sampleSquares([(labels, record.options.seed &+ 5000)], judges: nil).images
        let largest = layout.blocks > 1 ? 64 : 128
        let small = record.imageWidth <= largest && record.imageHeight <= largest
        let tiles = small ? squares.map(sampler.finish) : squares
        let reals = realSquares(classes: layout.shown, each: SampleLayout.realColumns).map { small ? sampler.finish($0) : $0 }
        let perBlock = SampleLayout.classesPerBlock * layout.columns
        let blocks = stride(from: 0, to: tiles.count, by: perBlock).map { start in
            let classes = start / layout.columns..<min(start / layout.columns + SampleLayout.classesPerBlock, layout.shown)
            let names = Array(record.classes[classes])
            let real = ImageGrid.compose(Array(reals[classes.lowerBound * SampleLayout.realColumns..<classes.upperBound * SampleLayout.realColumns]),
                                         columns: SampleLayout.realColumns, rowLabels: names)
            let synthetic = ImageGrid.compose(Array(tiles[start..<min(start + perBlock, tiles.count)]), columns: layout.columns)
            return ImageGrid.titled([("real", real, ImageGrid.labelMargin(names)), ("synthetic", synthetic, 0)])
        }
        return blocks.count == 1 ? blocks[0] : ImageGrid.tile(blocks, columns: SampleLayout.blocksPerBand)
    }

    /// The first `each` images of each of the first `classes` classes as trained on, class by
    /// class; a class with fewer (one the dataset no longer has) is filled with mid-grey.
    private func realSquares(classes: Int, each: Int) -> [Image] {
        var found = [[Image]](repeating: [], count: classes)
        for (index, label) in set.labels.enumerated() where Int(label) < classes && found[Int(label)].count < each {
            found[Int(label)].append(set.square(index))
        }
        let blank = Image(width: set.resolution, height: set.resolution, mode: set.mode, fill: 128)
        return found.flatMap { $0 + Array(repeating: blank, count: each - $0.count) }
    }
}

/// How `samples.png` shows a model's classes. Up to 16 classes: one block of eight samples a
/// class. Beyond (Caltech-101, CIFAR-100, 120 dog breeds), where the picture used to show the
/// first 16 classes only: blocks of 16 classes, four to a band, fewer samples a class as the
/// classes grow (about 1,024 samples in all), up to 256 classes.
public struct SampleLayout: Sendable, Equatable {
    public static let classesPerBlock = 16, blocksPerBand = 4, maxClasses = 256
    /// Real images shown beside each class's samples.
    public static let realColumns = 2

    /// Classes shown, samples a class, blocks.
    public let shown: Int, columns: Int, blocks: Int

    public init(classes: Int) {
        shown = min(classes, Self.maxClasses)
        columns = shown <= Self.classesPerBlock ? 8 : max(4, min(8, 1024 / max(shown, 1)))
        blocks = (shown + Self.classesPerBlock - 1) / Self.classesPerBlock
    }

    /// Where class `index` is in the picture, in words ("block 2, row 3"; "row 3" with one
    /// block); nil when it is not shown.
    public func place(ofClass index: Int) -> String? {
        guard index < shown else { return nil }
        let row = index % Self.classesPerBlock + 1
        guard blocks > 1 else { return "row \(row)" }
        let block = index / Self.classesPerBlock
        return "band \(block / Self.blocksPerBand + 1), block \(block % Self.blocksPerBand + 1), row \(row)"
    }
}

/// One point of the loss history.
public struct LossPoint: Sendable, Equatable {
    public var step: Int
    public var discriminator: Float
    public var generator: Float
    /// Adaptive augmentation's probability after the step; nil without it.
    public var augmentationProbability: Float?
    /// The mode-seeking term's pair spread (`StepReport.pairSpread`); nil without it.
    public var pairSpread: Float?

    public init(step: Int, discriminator: Float, generator: Float, augmentationProbability: Float? = nil, pairSpread: Float? = nil) {
        self.step = step
        self.discriminator = discriminator
        self.generator = generator
        self.augmentationProbability = augmentationProbability
        self.pairSpread = pairSpread
    }

    /// The most points `losses.csv` keeps. A point a step grew without end: a GPU's twenty
    /// minutes are a million steps, whose file was rewritten at every checkpoint and read
    /// whole by `synthd status`, and a model fine-tuned daily on a CPU adds 3,000 a round.
    public static let historyLimit = 20_000

    /// `history` in at most `limit` points: the newest half of them as they are, the older
    /// ones averaged in adjacent pairs, again and again, until they fit (a merged point is at
    /// the later step). The older a stretch of training, the coarser its points, as a chart of
    /// a long run wants them; the losses' course survives, the step-to-step noise of old steps
    /// does not.
    public static func thinned(_ history: [LossPoint], toAtMost limit: Int) -> [LossPoint] {
        guard history.count > limit, limit >= 2 else { return history }
        let recent = limit / 2
        var older = Array(history.dropLast(recent))
        while older.count + recent > limit {
            older = stride(from: 0, to: older.count, by: 2).map { i in
                guard i + 1 < older.count else { return older[i] }
                let (a, b) = (older[i], older[i + 1])
                func mean(_ value: KeyPath<LossPoint, Float?>) -> Float? {
                    a[keyPath: value].flatMap { first in b[keyPath: value].map { (first + $0) / 2 } }
                }
                return LossPoint(step: b.step, discriminator: (a.discriminator + b.discriminator) / 2,
                                 generator: (a.generator + b.generator) / 2, augmentationProbability: mean(\.augmentationProbability),
                                 pairSpread: mean(\.pairSpread))
            }
        }
        return older + history.suffix(recent)
    }
}

/// The order in which images are drawn: a seeded permutation per epoch, resumable.
struct DataOrder {
    let seed: UInt64
    private(set) var count: Int
    private(set) var epoch = 0
    private(set) var position = 0
    private var permutation: [Int] = []

    init(seed: UInt64, count: Int) {
        self.seed = seed
        self.count = count
        shuffle()
    }

    mutating func next() -> Int {
        if position >= count { epoch += 1; position = 0; shuffle() }
        defer { position += 1 }
        return permutation[position]
    }

    mutating func restart(count: Int) {
        self.count = count
        epoch += 1
        position = 0
        shuffle()
    }

    private mutating func shuffle() {
        var rng = RandomGenerator(seed: seed &+ UInt64(epoch) &* 7919)
        permutation = Array(0..<count)
        rng.shuffle(&permutation)
    }

    var encoded: String { "\(seed) \(count) \(epoch) \(position)" }

    init(decoding text: String, path: String) throws {
        let parts = text.split(separator: " ").compactMap { UInt64($0) }
        guard parts.count == 4 else { throw CheckpointError.malformed(path: path, reason: "bad data order '\(text)'") }
        seed = parts[0]
        count = Int(parts[1])
        epoch = Int(parts[2])
        position = Int(parts[3])
        shuffle()
    }
}
