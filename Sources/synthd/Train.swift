import ArgumentParser
import CUDA
import CommandLineSupport
import Engine
import Foundation
import GAN
import Imaging
import Daemon

/// `synthd train`: trains (or resumes, or fine-tunes) a dataset's GAN in a state folder.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a class-conditional GAN on an ImageFolder dataset, resuming from the state folder.",
        discussion: """
        Run it again to continue where it stopped; after images or classes were added, it fine-tunes the \
        existing model (new classes get new embedding rows, old ones keep theirs). Ctrl-C or SIGTERM \
        checkpoints and exits. The state folder gets samples.png (a row per class, named in classes.txt) \
        and losses.png at every checkpoint. A run that finishes its budget also trains the judge of generation's \
        class check on the real images (judge.ckpt), when the data changed since the last one.

        With --hold-out a new model keeps about one real image in ten out of training (classes of \(HeldOutSplit.smallestClass) \
        images or more), scores every checkpoint's generator on them (heldout.csv and heldout.png: kernel distance in the judge's \
        features, lower is better; the judge is trained first for that) and generates from the chosen one \
        (best-step-N.ckpt: the latest within the noise of the lowest score), so that a late, overfitted checkpoint is \
        not what you get on a long run.
        """)

    @Argument(help: "Dataset folder: <dataset>/<class>/<images>.") var dataset: String
    @Option(help: "State folder for the model, checkpoints and pictures.") var state: String
    @Option(help: "Train for this many minutes.") var minutes: Double?
    @Option(help: "Train for this many steps.") var steps: Int?
    @Option(help: "With --minutes, a model without augmentation stops after this many passes over the images if the minutes last longer (as the daemon's max_epochs; on a GPU a few minutes are hundreds of passes, and an unaugmented discriminator that sees the same images that often memorises them); 0: no cap.")
    var maxEpochs = TrainingBudget.defaultMaxEpochs
    @Option(help: "Seed of weights, noise, augmentation and data order (new models only).") var seed: UInt64 = 0
    @Option(help: "Model resolution, 32 or 64 (new models only).") var resolution = 32
    @Option(help: "Images per step (new models only: a resumed model keeps its batch).") var batch = 64
    @Option(help: "Adversarial loss: hinge or non-saturating (new models only).") var loss = "hinge"
    @Option(help: "DiffAugment: auto (on below \(AugmentationPolicy.autoThreshold) images), on, off, or adaptive (ADA: each transform as often as D's overfitting calls for) (new models only).")
    var augmentation = "auto"
    @Option(help: "Seconds between checkpoints.") var checkpointSeconds: Double = 60
    @Option(help: "Generator conditioning: input (the class embedding at G's input, the reference model) or norm (also a per-class scale and shift after every BatchNorm) (new models only).")
    var conditioning = GeneratorConditioning.standard.rawValue
    @Option(help: "Discriminator normalisation: batch (BatchNorm, the reference model) or spectral (every weight divided by its largest singular value) (new models only).")
    var discriminator = DiscriminatorNormalization.standard.rawValue
    @Option(help: "Adam's learning rate for G, and for D unless --discriminator-learning-rate is given (new models only).")
    var learningRate: Float = TrainingOptions().learningRate
    @Option(help: "Adam's learning rate for D (new models only; default: --learning-rate).")
    var discriminatorLearningRate: Float?
    @Option(help: "Decay of the moving average of G that samples are drawn from, in [0, 1) (new models only).")
    var emaDecay: Float = TrainingOptions().emaDecay
    @Option(help: "Weight of consistency regularisation in D's loss: D's logits for real images and slightly moved copies should agree (0: off; the paper's value: 10) (new models only).")
    var consistencyWeight: Float = TrainingOptions().consistencyWeight
    @Option(name: .customLong("lecam-weight"), help: "Weight of LeCam regularisation in D's loss: D's logits for real and generated images are kept near each other's moving averages, for small datasets (0: off; the paper's value: 0.3) (new models only).")
    var leCamWeight: Float = TrainingOptions().leCamWeight
    @Option(help: "Weight of the mode-seeking term in G's loss: two latent vectors of one class should give images as far apart as the vectors are, for more varied samples: auto (\(ModeSeekingPolicy.smallDatasetWeight) under \(AugmentationPolicy.autoThreshold) images, else off), 0 (off) or a weight (new models only).")
    var modeSeekingWeight = "auto"
    @Option(help: "Channels of the networks' widest-resolution layers, doubling at each halving (new models only; the reference model: 64).")
    var baseChannels = TrainingOptions().baseChannels
    @Flag(help: "Hold about one image in ten out of training and generate from the checkpoint chosen on them, instead of the last (new models only; for long runs that overfit).")
    var holdOut = false

    @OptionGroup var compute: DeviceOption

    func validate() throws {
        guard (minutes == nil) != (steps == nil) else { throw ValidationError("give exactly one of --minutes and --steps") }
        if let minutes, minutes <= 0 { throw ValidationError("--minutes must be positive") }
        if let steps, steps <= 0 { throw ValidationError("--steps must be positive") }
        guard maxEpochs >= 0, maxEpochs.isFinite else { throw ValidationError("--max-epochs must be 0 (no cap) or more") }
        guard [32, 64].contains(resolution) else { throw ValidationError("--resolution must be 32 or 64") }
        guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (BatchNorm needs a batch)") }
        guard AdversarialLoss(rawValue: loss) != nil else { throw ValidationError("--loss must be non-saturating or hinge") }
        guard GeneratorConditioning(rawValue: conditioning) != nil else { throw ValidationError("--conditioning must be input or norm") }
        guard DiscriminatorNormalization(rawValue: discriminator) != nil else {
            throw ValidationError("--discriminator must be batch or spectral")
        }
        guard AugmentationPolicy(rawValue: augmentation) != nil else { throw ValidationError("--augmentation must be auto, on, off or adaptive") }
        guard learningRate > 0, learningRate < 1 else { throw ValidationError("--learning-rate must be in (0, 1)") }
        if let rate = discriminatorLearningRate, !(rate > 0 && rate < 1) {
            throw ValidationError("--discriminator-learning-rate must be in (0, 1)")
        }
        guard emaDecay >= 0, emaDecay < 1 else { throw ValidationError("--ema-decay must be in [0, 1)") }
        guard consistencyWeight >= 0, consistencyWeight.isFinite else { throw ValidationError("--consistency-weight must be 0 or more") }
        guard leCamWeight >= 0, leCamWeight.isFinite else { throw ValidationError("--lecam-weight must be 0 or more") }
        guard ModeSeekingPolicy(modeSeekingWeight) != nil else {
            throw ValidationError("--mode-seeking-weight must be auto or a weight in 0...\(Int(ModeSeekingPolicy.largestWeight)), not \(modeSeekingWeight)")
        }
        guard (8...256).contains(baseChannels) else { throw ValidationError("--base-channels must be in 8...256") }
    }

    func run() throws {
        try DatasetPath.refuseArchive(dataset)
        try compute.cpuContext().run { () throws in try train() }
    }

    /// The long options on a command line ("--seed 3" and "--seed=3" give "seed").
    static func givenOptions(_ arguments: [String]) -> Set<String> {
        Set(arguments.dropFirst().prefix { $0 != "--" }.filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2).prefix { $0 != "=" }) })
    }

    /// The options `given` that only a new model takes, where `asked` differs from how `model`
    /// was made: each as asked ("--seed 3") and as made ("seed 0").
    static func newModelOptions(given: Set<String>, asked: TrainingOptions, resolution: Int,
                                model: ModelRecord) -> [(asked: String, made: String)] {
        let made = model.options, shape = model.configuration
        let compared: [(flag: String, asked: String, made: String)] = [
            ("resolution", "\(resolution)", "\(shape.resolution)"),
            ("seed", "\(asked.seed)", "\(made.seed)"),
            ("batch", "\(asked.batchSize)", "\(made.batchSize)"),
            ("loss", asked.loss.rawValue, made.loss.rawValue),
            ("augmentation", AugmentationPolicy(madeWith: asked).rawValue, AugmentationPolicy(madeWith: made).rawValue),
            ("conditioning", GeneratorConditioning(classConditionalNorm: asked.classConditionalNorm).rawValue,
             GeneratorConditioning(classConditionalNorm: shape.classConditionalNorm).rawValue),
            ("discriminator", asked.discriminatorNormalization.rawValue, shape.discriminatorNormalization.rawValue),
            ("learning-rate", "\(asked.learningRate)", "\(made.learningRate)"),
            ("discriminator-learning-rate", "\(asked.discriminatorLearningRate ?? asked.learningRate)",
             "\(made.discriminatorLearningRate ?? made.learningRate)"),
            ("ema-decay", "\(asked.emaDecay)", "\(made.emaDecay)"),
            ("consistency-weight", "\(asked.consistencyWeight)", "\(made.consistencyWeight)"),
            ("lecam-weight", "\(asked.leCamWeight)", "\(made.leCamWeight)"),
            ("mode-seeking-weight", "\(asked.modeSeekingWeight)", "\(made.modeSeekingWeight)"),
            ("base-channels", "\(asked.baseChannels)", "\(shape.baseChannels)"),
            ("hold-out", "\(asked.holdOut)", "\(made.holdOut)"),
        ]
        return compared.filter { given.contains($0.flag) && $0.asked != $0.made }.map { item in
            (item.flag == "hold-out" ? "--hold-out" : "--\(item.flag) \(item.asked)", "\(item.flag) \(item.made)")
        }
    }

    func train() throws {
        Signals.install()
        try DatasetPath.refuseState(state, inside: dataset)
        let device = try compute.open(for: .training)
        let folder = try StateFolder(state)
        let lock = try lockOrExit(folder, purpose: "synthd train \(dataset)")
        defer { lock.release() }
        if let record = try folder.readRecord(),
           let mixedUp = CommandFailure.modelOfAnotherDataset(dataset, state: state, modelClasses: record.classes) {
            throw CommandFailure(mixedUp.description + " (a new --state trains a model of its own)")
        }
        let loadStart = Moment.now
        let progress = ProgressLine()
        let set: TrainingSet
        do {
            set = try Trainer.loadDataset(dataset, state: folder, resolution: resolution, control: TrainingSet.LoadControl(
                progress: { read, total in
                    guard read < total else { return }
                    progress.update(fraction: Double(read) / Double(total), remaining: loadStart.secondsAgo * Double(total - read) / Double(read),
                                    text: "reading images: \(read) of \(total)")
                }, shouldStop: { Signals.stopRequested }))
        } catch TrainingSet.Error.stopped(path: _) {
            progress.finish("stopped while reading the images; nothing was written")
            return
        }
        if set.mode == .grey, set.colourImages.count > 0 {
            // The daemon makes a new model then (`ModelOutgrown`); here the state folder is the user's to choose.
            throw CommandFailure("\(counted(set.colourImages.count, "image")) of \(dataset) \(set.colourImages.count == 1 ? "is" : "are") in colour "
                                 + "(\(set.colourImages.first ?? "")), and the model in \(state) is grey: it would learn them as grey "
                                 + "images (a new --state trains a colour model)")
        }
        progress.finish("loaded \(counted(set.count, "image")) in \(counted(set.classMap.count, "class"))"
                              + String(format: " (%@, %dx%d) in %.1f s", set.mode == .rgb ? "colour" : "grey", set.imageWidth, set.imageHeight,
                              loadStart.secondsAgo))
        // A file name may hold a line break: one line per file, escaped as the daemon's log does.
        let rejected = RejectedFile.listed(set.rejected)
        for reason in rejected.reasons { progress.write("rejected \(LineLogHandler.oneLine(reason))\n") }
        if rejected.unnamed > 0 { progress.write("rejected \(rejected.unnamed) more files (synthd status --json lists every one)\n") }
        for name in set.emptyClasses { progress.write("warning: class folder '\(name)' has no images; skipped\n") }
        for advice in set.advice { progress.write("warning: \(LineLogHandler.oneLine(advice))\n") }

        var options = TrainingOptions()
        options.seed = seed
        options.batchSize = batch
        options.loss = AdversarialLoss(rawValue: loss)!
        AugmentationPolicy(rawValue: augmentation)!.configure(&options, forImages: set.count)
        options.checkpointSeconds = checkpointSeconds
        options.classConditionalNorm = GeneratorConditioning(rawValue: conditioning)!.classConditionalNorm
        options.discriminatorNormalization = DiscriminatorNormalization(rawValue: discriminator)!
        options.learningRate = learningRate
        options.discriminatorLearningRate = discriminatorLearningRate
        options.emaDecay = emaDecay
        options.baseChannels = baseChannels
        options.consistencyWeight = consistencyWeight
        options.leCamWeight = leCamWeight
        options.modeSeekingWeight = ModeSeekingPolicy(modeSeekingWeight)!.weight(forImages: set.count)
        options.holdOut = holdOut
        let previous = try folder.readRecord()
        // A GPU failure names the dataset and what is left on disk (the last checkpoint).
        let checkpoint = { DeviceFailure.checkpoint(try? folder.readRecord()?.checkpointID) }
        let trainer = try DeviceFailure.naming(dataset: dataset, work: .training, on: device, intact: checkpoint) {
            try Trainer(set: set, state: folder, options: options, device: device)
        }
        if let previous {
            let added = set.classMap.count - previous.classes.count
            let side = previous.configuration.resolution
            progress.write("resuming at step \(previous.steps) of a \(side)x\(side) model"
                + (set.count != previous.imagesAtLastRun ? ", fine-tuning on \(set.count) images (was \(previous.imagesAtLastRun))" : "")
                + (added > 0 ? ", \(added) new class\(added == 1 ? "" : "es")" : "") + "\n")
            // A resumed model trains as it was made: say so where that is not what was asked.
            let ignored = Self.newModelOptions(given: Self.givenOptions(CommandLine.arguments), asked: options,
                                               resolution: resolution, model: previous)
            if !ignored.isEmpty {
                progress.write("note: \(ignored.map(\.asked).joined(separator: ", ")) \(ignored.count == 1 ? "is" : "are") for new models; "
                               + "\(state)'s model was made with \(ignored.map(\.made).joined(separator: ", ")) "
                               + "(another --state trains a new model)\n")
            }
        }
        if let split = trainer.split {
            progress.write("holding out \(split.heldOut.count) of \(set.count) images to choose the checkpoint on\n")
            let judgeStart = Moment.now
            // Scoring checkpoints needs the judge: trained now, with progress, rather than silently at the first checkpoint.
            if try trainer.refreshJudge(shouldStop: { Signals.stopRequested }, progress: { fraction in
                progress.update(fraction: fraction, remaining: .nan, text: "training the judge (a classifier of the real images) that scores checkpoints")
            }) == .trained {
                progress.finish(String(format: "judge trained in %.0f s: %@/judge.ckpt", judgeStart.secondsAgo, state))
            }
        }
        let budget: TrainingBudget = steps.map { .steps($0) } ?? .minutes(minutes! * 60, orPasses: maxEpochs, of: trainer)
        // The steps that end the run before its minutes, where the cap applies.
        let capped: Int? = if case .secondsOrSteps(_, let cap) = budget { cap } else { nil }
        let taken = try DeviceFailure.naming(dataset: dataset, work: .training, on: device, intact: checkpoint) {
            try trainer.train(budget, shouldStop: { Signals.stopRequested }) { p in
                progress.update(fraction: p.fraction, remaining: p.remaining, text: p.summary)
            }
        }
        progress.finish("\(Signals.stopRequested ? "stopped" : "done"): \(taken) steps this run, "
            + "\(trainer.record.steps) in all; checkpoint and pictures in \(state)")
        if let capped, taken >= capped, !Signals.stopRequested {
            progress.write(String(format: "stopped after %@ passes over the %d images (--max-epochs) before the minutes ran out\n",
                                  TrainingBudget.describe(passes: maxEpochs), trainer.training.count))
        }
        if let warning = TrainingBudget.memorisationWarning(unaugmentedPasses: trainer.record.unaugmentedPasses,
                                                             images: trainer.record.imagesAtLastRun) {
            progress.write("warning: \(warning)\n")
        }
        if let best = trainer.record.best {
            progress.write(String(format: "generation uses step %d, chosen on %d held-out images (kernel distance %.4f; heldout.csv has every checkpoint's)\n",
                                  best.step, best.heldOutImages, best.distance))
        }
        guard !Signals.stopRequested else { return }
        let judgeStart = Moment.now
        let judge = try trainer.refreshJudge(shouldStop: { Signals.stopRequested }) { fraction in
            progress.update(fraction: fraction, remaining: .nan,
                            text: "training the judge (a classifier of the real images) for generation's class check")
        }
        switch judge {
        case .trained: progress.finish(String(format: "judge trained in %.0f s: %@/judge.ckpt", judgeStart.secondsAgo, state))
        case .upToDate: break
        case .stopped: progress.finish("stopped before the judge was trained; generation runs without the class check until it is")
        }
    }
}
