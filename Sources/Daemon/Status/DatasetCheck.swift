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
    /// The model a first training makes, in words.
    public var model: String
    public var trainingMinutes: Double
    public var fineTuneMinutes: Double
    /// The generation rule in words (`GenerationPlan.rule`), and what it writes in all.
    public var generationRule: String
    public var synthetic: Int
    /// Why the first generation would be refused, if it would (over `max_images_per_dataset`).
    public var generationRefused: String?
    /// What the images take in memory while the model trains (R x R bytes each).
    public var trainingBytes: Int
    public var readSeconds: Double

    /// Reads `folder` with `settings` (the daemon's configuration with the dataset's own
    /// `synthd.toml` over it); symbolic links that lead out of `confinement` are not followed
    /// (the daemon passes its spool). Throws what a training job would fail with: no readable
    /// images, more than fit in memory, a folder that cannot be read.
    public static func of(_ folder: String, settings: Configuration, confinedTo confinement: String? = nil, memory: MemoryLimit? = .current(),
                          control: TrainingSet.LoadControl = TrainingSet.LoadControl()) throws(TrainingSet.Error) -> DatasetCheck {
        let started = Moment.now
        let set = try TrainingSet.load(folder, resolution: settings.resolution, limits: settings.imageLimits,
                                       confinedTo: confinement, memory: memory, control: control)
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
        let refused = plan.total > settings.maxImagesPerDataset
            ? "\(plan.total) images are over the daemon's cap of \(settings.maxImagesPerDataset) a generation (max_images_per_dataset)" : nil
        return DatasetCheck(
            dataset: folder,
            classes: set.classMap.names.indices.filter { counts[$0] > 0 }
                .map { ClassLine(name: set.classMap.names[$0], images: counts[$0], synthetic: plan.counts[$0]) },
            images: set.count, colour: set.mode == .rgb, writtenWidth: written.0, writtenHeight: written.1,
            rejected: set.rejected, emptyClasses: set.emptyClasses, advice: set.advice,
            model: "a new \(set.resolution)x\(set.resolution) class-conditional GAN, batch \(settings.batch), \(augmentation)"
                + (settings.holdOut ? ", about one image in ten held out to choose the checkpoint" : ""),
            trainingMinutes: settings.trainingMinutes, fineTuneMinutes: settings.fineTuneMinutes,
            generationRule: plan.rule, synthetic: plan.total, generationRefused: refused,
            trainingBytes: set.pixels.count, readSeconds: started.secondsAgo)
    }

    /// The report a person reads: the classes as a table, what was left out and why, the
    /// warnings, then what the daemon would train and write.
    public func summary() -> String {
        let width = max(5, classes.map(\.name.count).max() ?? 0)
        func padded(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        var lines = ["\(dataset): \(images) images in \(classes.count) classes, \(colour ? "colour" : "grey"); read in "
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
        lines.append("  model: \(model); \(DatasetStatus.duration(trainingMinutes * 60)) of training, then "
                     + "\(DatasetStatus.duration(fineTuneMinutes * 60)) a fine-tuning round when images or classes are added")
        lines.append("  memory: \(MemoryLimit.gibibytes(trainingBytes)) of images while it trains")
        lines.append("  outputs: \(synthetic) synthetic images at \(writtenWidth)x\(writtenHeight) (\(generationRule))")
        if let generationRefused { lines.append("  warning: the first generation would be refused: \(generationRefused)") }
        return lines.joined(separator: "\n")
    }
}
