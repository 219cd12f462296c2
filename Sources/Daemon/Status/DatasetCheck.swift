import Engine
import Foundation
import GAN
import Imaging

/// What the daemon would do with a dataset folder, found by reading it as a training job reads
/// it (every image decoded, with the daemon's limits and the dataset's own `synthd.toml`)
/// without training: for `synthd check`, before a large dataset is dropped into the spool and
/// its problems come out one by one in the log.
public struct DatasetCheck: Sendable, Codable, Equatable {
    public struct ClassLine: Sendable, Codable, Equatable {
        public var name: String
        public var images: Int
        /// Synthetic images the first generation would write.
        public var synthetic: Int
    }

    public var dataset: String
    /// Classes with images, sorted by name.
    public var classes: [ClassLine]
    public var images: Int
    public var colour: Bool
    /// The size synthetic images would be written at (`[generation] max_short_side` applied).
    public var writtenWidth: Int, writtenHeight: Int
    public var rejected: [RejectedFile]
    public var emptyClasses: [String]
    /// `TrainingSet.advice`: the layout, photos stored turned.
    public var advice: [String]
    /// What a training job would do with the model, in words: make a new one (and for how
    /// long), fine-tune the daemon's (for how long), or nothing (trained on these files).
    public var model: String
    public var trainingMinutes: Double
    public var fineTuneMinutes: Double
    /// The generation rule in words (`GenerationPlan.rule`), and what it writes in all.
    public var generationRule: String
    public var synthetic: Int
    /// Why the first generation would be refused, if it would (over `max_images_per_dataset`).
    public var generationRefused: String?
    /// Whether the daemon would train no model: a dataset new to it whose settings write no
    /// synthetic images (`Scheduler.needsNoModel`).
    public var trainsNoModel = false
    /// What the images take in memory while the model trains (R x R bytes each).
    public var trainingBytes: Int
    public var readSeconds: Double

    /// The daemon's model of a dataset in its spool, and what it knows of it.
    public struct Existing: Sendable {
        public var record: ModelRecord
        /// `ModelChange.asked`: what the dataset's synthd.toml asks for that the model was not
        /// made with (a job then makes a new model).
        public var changes: [String]
        /// Whether the daemon's last training read these very files (its trained fingerprint
        /// is the folder's now): nothing to train.
        public var trainedOnTheseFiles: Bool
        /// Whether the daemon has not finished a training of the model yet (stopped, between
        /// slices, or a model `synthd train` left in its state folder): a job then continues the
        /// first training, with the training budget or what a stopped job left of it, instead
        /// of fine-tuning (`JobRunner`).
        public var firstTrainingUnfinished: Bool
        /// More minutes of training than the model has had, asked by the dataset's synthd.toml
        /// (a job trains on for them).
        public var trainingOn: TrainingOn?

        public init(record: ModelRecord, changes: [String], trainedOnTheseFiles: Bool, firstTrainingUnfinished: Bool = false,
                    trainingOn: TrainingOn? = nil) {
            (self.record, self.changes, self.trainedOnTheseFiles) = (record, changes, trainedOnTheseFiles)
            self.firstTrainingUnfinished = firstTrainingUnfinished
            self.trainingOn = trainingOn
        }
    }

    /// Reads `folder` with `settings` (the daemon's configuration with the dataset's own
    /// `synthd.toml` over it); symbolic links that lead out of `confinement` are not followed
    /// (the daemon passes its spool). `existing`: the daemon's model of it, which a job
    /// fine-tunes (read at its resolution, its classes first) unless the settings ask for a
    /// new one. Throws what a training job would fail with: no readable images, more than fit
    /// in memory, a folder that cannot be read.
    public static func of(_ folder: String, settings: Configuration, existing: Existing? = nil, confinedTo confinement: String? = nil,
                          memory: MemoryLimit? = .current(),
                          control: TrainingSet.LoadControl = TrainingSet.LoadControl()) throws(TrainingSet.Error) -> DatasetCheck {
        let started = Moment.now
        // As a training job reads it: in the model's classes, size and mode, unless the files
        // have outgrown the model (`ModelOutgrown`), when a new model reads them afresh.
        func read(_ model: ModelRecord?) throws(TrainingSet.Error) -> TrainingSet {
            try TrainingSet.load(folder, classMap: ClassMap(names: model?.classes ?? []),
                                 resolution: model?.configuration.resolution ?? settings.resolution,
                                 fitting: model?.imageFitting ?? .wholeImage, mode: model?.mode, limits: settings.imageLimits,
                                 confinedTo: confinement, memory: memory, control: control)
        }
        var kept = existing.flatMap { $0.changes.isEmpty ? $0.record : nil }
        var set = try read(kept)
        var outgrown: String?
        if let model = kept, let why = ModelOutgrown.reason(record: model, set: set) {
            (outgrown, kept) = (why, nil)
            set = try read(nil)
        }
        let counts = set.classCounts
        let plan = GenerationPlan(settings: settings, real: counts)
        let written = settings.maxShortSide > 0
            ? Resampling.cappedSize(width: set.imageWidth, height: set.imageHeight, maxShortSide: max(settings.maxShortSide, set.resolution))
            : (set.imageWidth, set.imageHeight)
        let augmented = settings.augmentation.enabled(forImages: set.count)
        let augmentation = switch settings.augmentation {
        case .adaptive: "adaptive augmentation (ADA)"
        case .auto: augmented ? "DiffAugment (under \(AugmentationPolicy.autoThreshold) images)" : "no augmentation (\(AugmentationPolicy.autoThreshold) images or more)"
        case .on: "DiffAugment"
        case .off: "no augmentation"
        }
        let budgets = "\(durationText(settings.trainingMinutes * 60)) of training, then "
            + "\(durationText(settings.fineTuneMinutes * 60)) a fine-tuning round when images or classes are added"
        var model = "a new \(set.resolution)x\(set.resolution) class-conditional GAN, batch \(settings.batch), \(augmentation)"
            + (settings.holdOut ? ", about one image in ten held out to choose the checkpoint" : "")
            + (settings.modeSeeking.weight(forImages: set.count) > 0 ? ", the mode-seeking term in G's loss" : "") + "; " + budgets
        if let existing, let kept {
            let r = kept.configuration.resolution
            let added = kept.additions(classes: set.classMap.count, images: set.count)
            let round = existing.firstTrainingUnfinished
                ? "its first training goes on, up to \(durationText(settings.trainingMinutes * 60)) of it"
                : existing.trainingOn.map { "\($0)" + (existing.trainedOnTheseFiles ? "" : " (at least a fine-tuning round's "
                                                        + "\(durationText(settings.fineTuneMinutes * 60)) with the files changed)") }
                ?? "a fine-tuning round of \(durationText(settings.fineTuneMinutes * 60))"
            model = "the daemon's \(r)x\(r) model of \(kept.steps) steps"
                + (existing.trainedOnTheseFiles && existing.trainingOn == nil ? ", trained on these files: nothing to train"
                    : ": \(round)" + (added.isEmpty ? "" : " (\(added.joined(separator: ", ")))"))
        } else if let existing {
            let why = outgrown ?? "synthd.toml asks for a new model: \(existing.changes.joined(separator: ", "))"
            model += " (\(why); the daemon's model of \(existing.record.steps) steps is kept aside)"
        }
        let trainsNoModel = existing == nil && plan.total == 0
        if trainsNoModel {
            model = "none: these settings write no synthetic images, and the daemon trains a model only when they ask for some"
        }
        let refused = plan.total > settings.maxImagesPerDataset
            ? "\(plan.total) images are over the daemon's cap of \(settings.maxImagesPerDataset) a generation (max_images_per_dataset)" : nil
        var check = DatasetCheck(
            dataset: folder,
            classes: set.classMap.names.indices.filter { counts[$0] > 0 }
                .map { ClassLine(name: set.classMap.names[$0], images: counts[$0], synthetic: plan.counts[$0]) }
                .sorted { $0.name < $1.name },  // a model's classes come in its order, new ones after
            images: set.count, colour: set.mode == .rgb, writtenWidth: written.0, writtenHeight: written.1,
            rejected: set.rejected, emptyClasses: set.emptyClasses, advice: set.advice,
            model: model,
            trainingMinutes: settings.trainingMinutes, fineTuneMinutes: settings.fineTuneMinutes,
            generationRule: plan.rule, synthetic: plan.total, generationRefused: refused,
            trainingBytes: set.pixels.count, readSeconds: started.secondsAgo)
        check.trainsNoModel = trainsNoModel
        return check
    }

    /// The report a person reads: the classes as a table, what was left out and why, the
    /// warnings, then what the daemon would train and write.
    public func summary() -> String {
        let width = max(5, classes.map(\.name.count).max() ?? 0)
        func padded(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        var lines = ["\(dataset): \(counted(images, "image")) in \(counted(classes.count, "class")), \(colour ? "colour" : "grey"); read in "
                     + String(format: "%.1f s", readSeconds)]
        lines.append("  " + padded("class", width) + "  images  synthetic")
        for line in classes {
            lines.append("  " + padded(line.name, width) + "  " + padded(String(line.images), 6) + "  \(line.synthetic)")
        }
        for name in emptyClasses { lines.append("  empty class skipped: \(name)") }
        let listed = RejectedFile.listed(rejected)
        if !rejected.isEmpty { lines.append("  rejected \(rejected.count) file\(rejected.count == 1 ? "" : "s"):") }
        for reason in listed.reasons { lines.append("    " + LineLogHandler.oneLine(reason)) }
        if listed.unnamed > 0 { lines.append("    and \(listed.unnamed) more (--json lists every one)") }
        for line in advice { lines.append("  warning: " + LineLogHandler.oneLine(line)) }
        lines.append("  model: \(model)")
        lines.append("  memory: \(MemoryLimit.gibibytes(trainingBytes)) of images while it trains")
        lines.append("  outputs: \(synthetic) synthetic images at \(writtenWidth)x\(writtenHeight) (\(generationRule))")
        if let generationRefused { lines.append("  warning: the first generation would be refused: \(generationRefused)") }
        if trainsNoModel {
            lines.append("  warning: these settings write no synthetic images: the daemon trains no model for it, and writes nothing, "
                         + "until its images or settings ([generation] enlarge, balance_to, max_synthetic_per_real, policy) ask for some")
        } else if synthetic == 0 {
            // A model it has already is trained on (it is ready when images or settings change): say what that buys now.
            lines.append("  warning: these settings write no synthetic images: the daemon would train its model and publish empty "
                         + "class folders until images or settings ([generation] enlarge, max_synthetic_per_real, policy) change")
        }
        return lines.joined(separator: "\n")
    }
}
