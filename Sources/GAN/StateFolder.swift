import Engine
import Foundation
import Imaging

extension ModelRecord {
    /// What a dataset of `classes` classes and `images` images adds to this model, as the
    /// daemon's log and `synthd check` say it: "1 new class", "+20 images" (or "-3 images");
    /// nothing when it is what the model last trained on.
    public func additions(classes: Int, images: Int) -> [String] {
        let newClasses = classes - self.classes.count, newImages = images - imagesAtLastRun
        return [newClasses > 0 ? counted(newClasses, "new class") : nil,
                newImages != 0 ? (newImages > 0 ? "+" : "") + counted(newImages, "image") : nil].compactMap { $0 }
    }
}

/// What a trained model is, stored as `model.json` next to its checkpoint.
public struct ModelRecord: Sendable, Codable, Equatable {
    public var format = 1
    public var configuration: ModelConfiguration
    /// Class names in index order (only ever appended to).
    public var classes: [String]
    public var mode: Image.Mode
    /// The dataset's own image size, which generated images are written at.
    public var imageWidth: Int
    public var imageHeight: Int
    /// How the model's training images larger than its resolution were made square, which
    /// generation undoes; absent (nil) in records of models made before 2026-12-04, which
    /// were trained on the centre square (`imageFitting`).
    public var fitting: Resampling.Fitting?
    public var steps: Int
    /// Images in the dataset when it was last trained on (more now means: fine-tune).
    public var imagesAtLastRun: Int
    public var options: TrainingOptions
    /// Names the checkpoint on disk ("step-1200").
    public var checkpointID = ""
    /// With images held out (`TrainingOptions.holdOut`): the checkpoint that scored best on
    /// them, what generation uses; nil: the last checkpoint is.
    public var best: BestGenerator?
    /// The steps at which training went on with other data (images or classes added or
    /// removed): marked on `losses.png`, where the losses jump as the data changes.
    public var dataChanges: [Int]?

    /// Names the generator that generation uses ("step-1200"): generated files and the
    /// daemon's generations are named by it, so a checkpoint that did not beat the best
    /// changes nothing downstream.
    public var generatorID: String { best.map { "step-\($0.step)" } ?? checkpointID }

    /// How this model's images larger than its resolution were fitted: the record's rule, or
    /// the centre square of the models made before the rule was recorded.
    public var imageFitting: Resampling.Fitting { fitting ?? .centreSquare }

    /// The size synthetic images are written at: the dataset's, scaled down (aspect kept) to
    /// a shorter side of `maxShortSide` where that side is longer (0: the dataset's size), and
    /// never below the model's resolution. The generator draws R x R pixels; a larger image
    /// only enlarges them: a 4032 x 3024 photo's synthetic twin was a 13 MB PNG of a
    /// 32 x 32 picture, where 341 x 256 holds the same picture in 231 KB.
    public func writtenSize(maxShortSide: Int) -> (width: Int, height: Int) {
        guard maxShortSide > 0 else { return (imageWidth, imageHeight) }
        return Resampling.cappedSize(width: imageWidth, height: imageHeight,
                                     maxShortSide: max(maxShortSide, configuration.resolution))
    }

    public init(configuration: ModelConfiguration, classes: [String], mode: Image.Mode, imageWidth: Int, imageHeight: Int,
                fitting: Resampling.Fitting = .wholeImage, steps: Int, imagesAtLastRun: Int, options: TrainingOptions,
                checkpointID: String = "") {
        self.configuration = configuration
        self.classes = classes
        self.mode = mode
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.fitting = fitting
        self.steps = steps
        self.imagesAtLastRun = imagesAtLastRun
        self.options = options
        self.checkpointID = checkpointID
    }
}

extension ModelRecord {
    /// What in a record is out of what synthd writes, or nil. A record is read before any of
    /// it sizes a network, an allocation or a loop: a digit changed by hand or by the disk
    /// (a latent size of 0, a resolution of 33, a batch of 2^63 - 1) trapped in the layers'
    /// preconditions, taking the daemon down at each retry.
    public var problem: String? {
        let c = configuration
        func outside<T: Comparable>(_ name: String, _ value: T, _ range: ClosedRange<T>) -> String? {
            range.contains(value) ? nil : "\(name) \(value), outside \(range.lowerBound)...\(range.upperBound)"
        }
        func rate(_ name: String, _ value: Float?) -> String? {
            guard let value else { return nil }
            return value.isFinite && value > 0 && value < 1 ? nil : "\(name) \(value), outside (0, 1)"
        }
        let checks: [String?] = [
            [32, 64].contains(c.resolution) ? nil : "resolution \(c.resolution), expected 32 or 64",
            [1, 3].contains(c.imageChannels) ? nil : "image channels \(c.imageChannels), expected 1 or 3",
            outside("classes", c.classes, 1...65_536), outside("latent size", c.latentSize, 1...4_096),
            outside("embedding size", c.embeddingSize, 1...4_096), outside("base channels", c.baseChannels, 1...1_024),
            // Names index the class tables: one past their rows would read outside them.
            classes.count >= 1 && classes.count <= c.classes ? nil : "\(classes.count) class names for \(c.classes) classes",
            mode.channels == c.imageChannels ? nil : "mode \(mode) with \(c.imageChannels) channels",
            outside("image width", imageWidth, 1...65_536), outside("image height", imageHeight, 1...65_536),
            outside("steps", steps, 0...Int.max), outside("images at the last run", imagesAtLastRun, 0...Int.max),
            outside("batch size", options.batchSize, 1...65_536), outside("base channels", options.baseChannels, 1...1_024),
            outside("EMA decay", options.emaDecay, 0...1), rate("learning rate", options.learningRate),
            rate("D's learning rate", options.discriminatorLearningRate),
            options.checkpointSeconds.isFinite && options.checkpointSeconds >= 0 ? nil : "checkpoint seconds \(options.checkpointSeconds)",
            outside("consistency weight", options.consistencyWeight, 0...Float.greatestFiniteMagnitude),
            outside("LeCam weight", options.leCamWeight, 0...Float.greatestFiniteMagnitude),
            outside("mode-seeking weight", options.modeSeekingWeight, 0...Float.greatestFiniteMagnitude),
            best.flatMap { outside("best step", $0.step, 0...Int.max) ?? outside("held-out images", $0.heldOutImages, 0...Int.max) },
            best.flatMap { $0.file.contains("/") || !$0.file.hasSuffix(".ckpt") ? "best generator file '\($0.file)'" : nil },
        ]
        return checks.lazy.compactMap { $0 }.first
    }

    /// About how many times the generator that generation uses (`best`'s step, else the last)
    /// has had each of its dataset's images shown to a discriminator without augmentation:
    /// its steps' images over the dataset's; nil for a model trained with augmentation
    /// (DiffAugment, ADA: many passes are what it is for) or of no images.
    public var unaugmentedPasses: Double? {
        guard !options.augmentsImages, imagesAtLastRun > 0 else { return nil }
        return Double(best?.step ?? steps) * Double(options.batchSize) / Double(imagesAtLastRun)
    }
}

/// What the last load of the dataset found: images per class, and what was left out and why.
public struct DatasetReport: Sendable, Codable, Equatable {
    public var root: String
    public var imagesPerClass: [String: Int]
    public var rejected: [RejectedFile]
    public var emptyClasses: [String]
    public var ignoredFiles: Int
    /// `TrainingSet.advice`; nil in reports written before it (those of 2026-12-04 and earlier
    /// named it `layoutAdvice`, and said only the layout's: read again at the next training).
    public var advice: [String]?

    public init(_ set: TrainingSet) {
        root = set.root
        var counts: [String: Int] = [:]
        for (index, count) in set.classCounts.enumerated() where count > 0 { counts[set.classMap.names[index]] = count }
        imagesPerClass = counts
        rejected = set.rejected
        emptyClasses = set.emptyClasses
        ignoredFiles = set.ignored.count
        advice = set.advice.isEmpty ? nil : set.advice
    }

    /// Images of each of `classes` (a model's class order; 0 for a class the report lacks).
    public func counts(for classes: [String]) -> [Int] { classes.map { imagesPerClass[$0] ?? 0 } }

    /// The most images a class of a report may count: far beyond any dataset synthd can load,
    /// small enough that a generation plan's sums of them cannot overflow.
    public static let maxImagesPerClass = 1 << 32

    /// What in a report is out of what synthd writes, or nil. Its counts size a generation
    /// (`balance` tops every class up to the largest): a count of -1 or 2^63 - 1 overflowed
    /// the plan's arithmetic, a crash at every retry of the job.
    public var problem: String? {
        if let (name, count) = imagesPerClass.sorted(by: { $0.key < $1.key }).first(where: { !(0...Self.maxImagesPerClass).contains($0.value) }) {
            return "\(count) images in class '\(name)', outside 0...\(Self.maxImagesPerClass)"
        }
        return ignoredFiles >= 0 ? nil : "\(ignoredFiles) ignored files"
    }
}

/// The folder where one dataset's model lives.
public struct StateFolder: Sendable {
    public let path: String

    public init(_ path: String) throws {
        self.path = path
        try createFolders(path)
    }

    /// Names the folder without making it: for readers, to whom a missing folder is one
    /// without a model (`readRecord` is nil). `synthd status` must not make state folders
    /// (it may run as a user who cannot), nor the daemon's looks at a dataset's model.
    public init(reading path: String) {
        self.path = path
    }

    /// A folder that must hold a model already (`synthd generate --state`): a mistyped path is
    /// said to be missing, not made (with a lock file in it) and then found empty.
    public init(existing path: String) throws(Error) {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw Error(path: path, reason: "no such folder: give the state folder of a trained model (synthd train --state, "
                        + "or the daemon's <state>/datasets/<dataset>)")
        }
        guard isFolder.boolValue else { throw Error(path: path, reason: "not a folder: a model's state folder is a folder") }
        self.path = path
    }

    public var recordPath: String { path + "/model.json" }
    public var checkpointPath: String { path + "/checkpoint.ckpt" }
    public var historyPath: String { path + "/losses.csv" }
    public var samplesPath: String { path + "/samples.png" }
    public var lossCurvePath: String { path + "/losses.png" }
    public var classesPath: String { path + "/classes.txt" }
    public var datasetReportPath: String { path + "/dataset.json" }
    /// The rejected files the daemon's log has named (their reasons), written as soon as they
    /// are named: `dataset.json` comes with the first checkpoint, and a run killed before it
    /// named them all again after the restart.
    public var namedRejectionsPath: String { path + "/rejections-named.json" }
    public var lockPath: String { path + "/.lock" }
    /// Held-out scores of the checkpoints (`CheckpointSelection`): step, kernel distance, its
    /// standard error.
    public var heldOutScoresPath: String { path + "/heldout.csv" }
    public var heldOutCurvePath: String { path + "/heldout.png" }
    public func bestGeneratorPath(_ best: BestGenerator) -> String { path + "/" + best.file }

    /// Takes the folder's lock for as long as the returned lock lives (see `FileLock`): one
    /// process at a time trains or generates with a model. `purpose` says who holds it
    /// ("synthd train", "synthd run: training job 4"), for the message the next one gets.
    public func lock(for purpose: String) throws(FileLock.Error) -> FileLock {
        try FileLock(lockPath, holder: purpose)
    }

    /// Removes what interrupted atomic writes left here and one folder down (`<name>.tmp.<pid>`:
    /// a checkpoint half-written when its process was killed) and returns their names, for
    /// the log. Only while holding the folder's lock: every writer of a model's files holds
    /// it, so such a file is a dead writer's whatever its pid (on a cluster, a pid of another
    /// machine), and a cluster's nodes, which never sweep at start-up (another's files may be
    /// in progress), would otherwise keep it for good (found by a two-node soak). This
    /// process's own are kept: its daemon record (`daemon.json`) is written without the lock.
    public func removeInterruptedWrites() -> [String] {
        let manager = FileManager.default, own = getpid()
        var removed: [String] = []
        func sweep(_ folder: String, prefix: String, depth: Int) {
            for name in (try? manager.contentsOfDirectory(atPath: folder)) ?? [] {
                let full = folder + "/" + name
                var isFolder: ObjCBool = false
                if let pid = AtomicTemporary.writer(of: name), pid != own,
                   manager.fileExists(atPath: full, isDirectory: &isFolder), !isFolder.boolValue {
                    if (try? manager.removeItem(atPath: full)) != nil { removed.append(prefix + name) }
                } else if depth > 0, manager.fileExists(atPath: full, isDirectory: &isFolder), isFolder.boolValue {
                    sweep(full, prefix: prefix + name + "/", depth: depth - 1)
                }
            }
        }
        sweep(path, prefix: "", depth: 1)
        return removed.sorted()
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The model record, or nil when the folder holds no model yet.
    public func readRecord() throws -> ModelRecord? {
        guard FileManager.default.fileExists(atPath: recordPath) else { return nil }
        do {
            let record = try RecordJSON.decode(ModelRecord.self, from: Data(contentsOf: URL(fileURLWithPath: recordPath)))
            guard record.format == 1 else { throw Error(path: recordPath, reason: "model format \(record.format), this synthd reads 1") }
            if let problem = record.problem {
                throw Error(path: recordPath, reason: "damaged model record: \(problem); delete the state folder to retrain")
            }
            return record
        } catch let error as Error {
            throw error
        } catch {
            throw Error(path: recordPath, reason: "unreadable model record (\(describeDecodingFailure(error))); delete the state folder to retrain")
        }
    }

    public func writeRecord(_ record: ModelRecord) throws {
        try writeFileAtomically(path: recordPath, bytes: RecordJSON.encode(record))
    }

    /// The optional columns of losses.csv after step and both losses, each there only when
    /// some point has it: found by the header's names (a file of an older synthd has none, or
    /// the probability alone).
    private static var optionalHistoryColumns: [(name: String, value: WritableKeyPath<LossPoint, Float?>)] {
        [("augmentation_probability", \.augmentationProbability), ("pair_spread", \.pairSpread)]
    }

    public func readHistory() -> [LossPoint] {
        guard let text = try? String(contentsOfFile: historyPath, encoding: .utf8) else { return [] }
        let lines = text.split(separator: "\n")
        let header = lines.first.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        let optional = Self.optionalHistoryColumns.compactMap { column in header.firstIndex(of: column.name).map { ($0, column.value) } }
        // A row has the header's columns (a later synthd's unknown ones too; at least step and both losses).
        let width = max(3, header.count)
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == width, let step = Int(fields[0]), let d = Float(fields[1]), let g = Float(fields[2])
            else { return nil }
            var point = LossPoint(step: step, discriminator: d, generator: g)
            for (index, value) in optional { point[keyPath: value] = Float(fields[index]) }
            return point
        }
    }

    /// losses.csv: step, both losses and, for a model with adaptive augmentation, its
    /// probability, for one with the mode-seeking term, its pair spread (columns only then).
    public func writeHistory(_ history: [LossPoint]) throws {
        let columns = Self.optionalHistoryColumns.filter { column in history.contains { $0[keyPath: column.value] != nil } }
        var text = (["step", "discriminator_loss", "generator_loss"] + columns.map(\.name)).joined(separator: ",") + "\n"
        for point in history {
            text += "\(point.step),\(point.discriminator),\(point.generator)"
            for column in columns { text += "," + (point[keyPath: column.value].map { "\($0)" } ?? "") }
            text += "\n"
        }
        try writeFileAtomically(path: historyPath, bytes: Array(text.utf8))
    }

    public func readHeldOutScores() -> [HeldOutScore] {
        guard let text = try? String(contentsOfFile: heldOutScoresPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count == 3, let step = Int(fields[0]), let distance = Double(fields[1]), let error = Double(fields[2])
            else { return nil }
            return HeldOutScore(step: step, HeldOutScore.Measure(distance: distance, standardError: error))
        }
    }

    /// heldout.csv, and its picture (`HeldOutCurve`) with `chosenStep` marked.
    public func writeHeldOutScores(_ scores: [HeldOutScore], chosenStep: Int?) throws {
        let text = "step,kernel_distance,standard_error\n" + scores.map { "\($0.step),\($0.distance),\($0.standardError)\n" }.joined()
        try writeFileAtomically(path: heldOutScoresPath, bytes: Array(text.utf8))
        try PNG.write(HeldOutCurve.render(scores, chosenStep: chosenStep), to: heldOutCurvePath)
    }

    /// heldout.csv and heldout.png, where a run no longer scores against the images they were
    /// measured on.
    public func removeHeldOutScores() {
        for file in [heldOutScoresPath, heldOutCurvePath] { try? FileManager.default.removeItem(atPath: file) }
    }

    /// Best-generator files other than `keep` (left by a crash between writing a new best and
    /// the record naming it, or replaced by a newer best).
    public func removeBestGenerators(except keep: BestGenerator?) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names where name.hasPrefix("best-step-") && name.hasSuffix(".ckpt") && name != keep?.file {
            try? FileManager.default.removeItem(atPath: path + "/" + name)
        }
    }

    /// Where `setModelAside` keeps the model it replaced.
    public var previousModelPath: String { path + "/previous-model" }
    /// Files that are the folder's, not its model's: they stay when the model is set aside.
    static let notTheModels: Set<String> = ["daemon.json", "dataset.json", "rejections-named.json", ".lock", "previous-model",
                                            ".previous-model.tmp"]

    /// Moves the model (record, checkpoints, judge, pictures, scores) into `previous-model/`,
    /// replacing what an earlier replacement left there, so that the next training makes a
    /// new one. The files go to a staging folder, the record last: until it has moved, the
    /// model is here (a replacement cut short is continued by the next call); after it, the
    /// folder holds none, and the staging folder, whole, becomes `previous-model/`.
    public func setModelAside() throws {
        let staging = path + "/.previous-model.tmp", manager = FileManager.default
        func move(_ from: String, _ to: String) throws {
            guard rename(from, to) == 0 else {
                throw Error(path: from, reason: "cannot move it to \(to): \(String(cString: strerror(errno)))")
            }
        }
        if manager.fileExists(atPath: staging + "/model.json") {
            // Cut short after the record moved: that model is whole in the staging folder.
            try? manager.removeItem(atPath: previousModelPath)
            try move(staging, previousModelPath)
        }
        guard manager.fileExists(atPath: recordPath) else { return }
        try manager.createDirectory(atPath: staging, withIntermediateDirectories: true)
        for name in try manager.contentsOfDirectory(atPath: path) where !Self.notTheModels.contains(name) && name != "model.json" {
            try move(path + "/" + name, staging + "/" + name)
        }
        try move(recordPath, staging + "/model.json")
        try? manager.removeItem(atPath: previousModelPath)
        try move(staging, previousModelPath)
    }

    public func writeDatasetReport(_ report: DatasetReport) throws {
        try writeFileAtomically(path: datasetReportPath, bytes: RecordJSON.encode(report))
    }

    /// The reasons of the rejected files named in the log (`namedRejectionsPath`); empty when
    /// none were, or when the record cannot be read (then they are named once more: a log line,
    /// nothing lost).
    public func readNamedRejections() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: namedRejectionsPath),
              let reasons = try? RecordJSON.decode([String].self, from: data) else { return [] }
        return Set(reasons)
    }

    public func writeNamedRejections(_ reasons: Set<String>) throws {
        try writeFileAtomically(path: namedRejectionsPath, bytes: RecordJSON.encode(reasons.sorted()))
    }

    /// What the last training found in the dataset, or nil when no training has written it
    /// (a model from before synthd kept it). A file that does not decode or holds what synthd
    /// never writes is refused by name; the next training writes it anew.
    public func readDatasetReport() throws -> DatasetReport? {
        guard FileManager.default.fileExists(atPath: datasetReportPath) else { return nil }
        let remedy = "the next training writes it anew"
        let report: DatasetReport
        do {
            report = try RecordJSON.decode(DatasetReport.self, from: Data(contentsOf: URL(fileURLWithPath: datasetReportPath)))
        } catch {
            throw Error(path: datasetReportPath, reason: "unreadable dataset report (\(describeDecodingFailure(error))); \(remedy)")
        }
        if let problem = report.problem { throw Error(path: datasetReportPath, reason: "damaged dataset report: \(problem); \(remedy)") }
        return report
    }

    /// Readable images of each of `classes` at the last training (dataset.json), what a
    /// generation's plan and manifest go by. Where that report is missing or damaged, the
    /// image files now in `dataset`'s class folders, counted by name (a corrupt file counts),
    /// with a note that says so; nil counts only when the dataset cannot be listed either.
    public func realImageCounts(for classes: [String], dataset: String, confinedTo spool: String? = nil)
        -> (counts: [Int]?, note: String?) {
        let why: String
        do {
            if let report = try readDatasetReport() { return (report.counts(for: classes), nil) }
            why = "no \(datasetReportPath)"
        } catch {
            why = "\(error)"
        }
        guard let scan = try? ImageFolder.scan(dataset, confinedTo: spool) else {
            return (nil, why + "; the dataset's folder cannot be listed either: no image counts")
        }
        return (classes.map { scan.files[$0]?.count ?? 0 }, why + "; images counted by file name instead")
    }

    public func writePictures(samples: Image, losses: Image, classes: [String]) throws {
        try PNG.write(samples, to: samplesPath)
        try PNG.write(losses, to: lossCurvePath)
        let layout = SampleLayout(classes: classes.count)
        let arrangement = layout.blocks == 1 ? "one row per class, top to bottom, named on the left"
            : "blocks of \(SampleLayout.classesPerBlock) classes, one row per class named on its left, "
                + "\(SampleLayout.blocksPerBand) blocks to a band, bands top to bottom"
        let unshown = classes.count > layout.shown ? "; the first \(layout.shown) of \(classes.count) classes" : ""
        let legend = "samples.png: \(arrangement)\(unshown)\n"
            + classes.prefix(layout.shown).enumerated().map { "\(layout.place(ofClass: $0)!): \($1)" }.joined(separator: "\n") + "\n"
            + "losses.png: discriminator loss red, generator loss blue, against steps (losses.csv has the numbers, older steps averaged in pairs beyond \(LossPoint.historyLimit) rows);\n"
            + "  with adaptive augmentation, its probability green\n"
            + (FileManager.default.fileExists(atPath: heldOutCurvePath)
                ? "heldout.png: each checkpoint's kernel distance to the held-out images black (lower is better; heldout.csv has the numbers),\n"
                    + "  two standard errors either side grey, the checkpoint generation uses green\n" : "")
        try writeFileAtomically(path: classesPath, bytes: Array(legend.utf8))
    }
}
