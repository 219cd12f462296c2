import Engine
import Foundation
import GAN
import Imaging

/// What `synthd status` shows for one dataset's state folder.
public struct DatasetStatus: Codable, Equatable, Sendable {
    public var dataset: String
    public var stateFolder: String
    /// The daemon's view (absent for a folder trained by `synthd train`): state (waiting,
    /// queued, training, generating, done, failed, removed), progress, ETA, outputs, errors.
    public var state: String?
    public var detail: String?
    public var progress: Double?
    public var eta: String?
    /// Where the latest job computed.
    public var device: String?
    public var outputsWritten: Int?
    public var generation: String?
    /// The size the outputs were written at, where that is not the dataset's.
    public var outputSize: String?
    /// Synthetic images per class of the latest generation, and the rule that chose them.
    public var synthetic: [String: Int]?
    public var syntheticRule: String?
    public var lastError: String?
    public var retryAt: String?
    /// In a cluster: the node running the dataset's job.
    public var node: String?
    public var classes: [String]
    public var mode: String
    public var imageWidth: Int
    public var imageHeight: Int
    public var steps: Int
    public var checkpoint: String
    public var imagesAtLastRun: Int
    /// When the checkpoint was last written (ISO 8601), if there is one.
    public var lastCheckpoint: String?
    public var lastDiscriminatorLoss: Float?
    public var lastGeneratorLoss: Float?
    /// The mode-seeking term's pair spread at the last step (`StepReport.pairSpread`); absent
    /// for a model without the term.
    public var lastPairSpread: Float?
    public var samples: String
    /// Images per class at the last training run, and the files left out with the reason.
    public var imagesPerClass: [String: Int]?
    public var rejected: [RejectedFile]?
    public var emptyClasses: [String]?
    /// What about the dataset the user should hear (`TrainingSet.advice`: its layout, photos
    /// stored turned).
    public var advice: [String]? = nil
    /// Per class, the latest generation's diversity (synthetic spread / real spread in the
    /// judge's features; under `Judge.collapseThreshold` the samples have collapsed).
    public var diversity: [String: Double]? = nil
    /// With images held out: the checkpoint generation uses (the best on them) and the last
    /// checkpoint's score, to see whether training is still improving.
    public var best: BestGenerator? = nil
    public var lastHeldOutScore: HeldOutScore? = nil
    /// `ModelRecord.unaugmentedPasses` of the model: what the collapse warning's advice
    /// depends on.
    public var unaugmentedPasses: Double? = nil
    /// Where the published outputs are (`out/<dataset>`, the link to the current generation):
    /// known where the configuration is, not from a state folder alone.
    public var outputFolder: String? = nil
    /// The training minutes the model has had (`DatasetRuntime.trainedMinutes`): the lever a
    /// user pulls for better images is a larger `minutes` in the dataset's synthd.toml.
    public var trainedMinutes: Double? = nil
    /// Why the dataset's synthd.toml does not read (`DatasetRuntime.settingsError`): its
    /// changes are not followed until it does.
    public var settingsError: String? = nil

    /// With the folder of the outputs the daemon published, under its `[paths] output`.
    public func withOutputs(under root: String) -> DatasetStatus {
        var status = self
        if generation != nil { status.outputFolder = OutputTree(root: root, keep: 1).linkPath(dataset) }
        return status
    }

    /// Reads every state folder at `path`: the daemon's state folder (one folder per dataset
    /// under `datasets/`), a folder of state folders, or one state folder. Unreadable model
    /// records are errors. `runtimes`: a cluster's records of the datasets (instead of the
    /// `daemon.json` files), each shown even before it has a state folder.
    public static func read(_ path: String, runtimes: [String: DatasetRuntime]) throws -> [DatasetStatus] {
        let root = FileManager.default.fileExists(atPath: path + "/datasets") ? path + "/datasets" : path
        return try runtimes.keys.sorted().compactMap { name in try read(StateFolder(reading: root + "/" + name), runtime: runtimes[name]) }
    }

    public static func read(_ path: String) throws -> [DatasetStatus] {
        // A folder this user may not list read as one without datasets ("no datasets under
        // /var/lib/synthd" while the daemon trained ten): say so instead.
        if let dir = opendir(path) { closedir(dir) } else if errno != ENOENT {
            throw UnreadableStateFolder(path: path, reason: String(cString: strerror(errno)))
        }
        if FileManager.default.fileExists(atPath: path + "/datasets") { return try read(path + "/datasets") }
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        if let status = try read(StateFolder(reading: path)) { return [status] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return try names.sorted().compactMap { name in
            let folder = path + "/" + name
            let fileManager = FileManager.default
            guard fileManager.fileExists(atPath: folder + "/model.json") || fileManager.fileExists(atPath: folder + "/daemon.json")
            else { return nil }
            return try read(StateFolder(reading: folder))
        }
    }

    /// nil when the folder holds neither a model nor the daemon's record.
    static func read(_ folder: StateFolder, runtime known: DatasetRuntime? = nil) throws -> DatasetStatus? {
        let runtime = known ?? RuntimeStore.read(folder.path + "/daemon.json")
        let record = try folder.readRecord()
        guard record != nil || runtime != nil else { return nil }
        let modified = (try? FileManager.default.attributesOfItem(atPath: folder.checkpointPath))?[.modificationDate] as? Date
        let last = folder.readHistory().last
        // A damaged report shows no counts here; the generation job's log says what it is.
        let report = (try? folder.readDatasetReport()) ?? nil
        let iso = ISO8601DateFormatter()
        var status = DatasetStatus(
            dataset: URL(fileURLWithPath: folder.path).lastPathComponent, stateFolder: folder.path,
            state: runtime?.phase.rawValue, detail: runtime?.detail, progress: runtime?.progress,
            eta: runtime?.eta.map { iso.string(from: $0) }, device: runtime?.device, outputsWritten: runtime?.outputsWritten,
            generation: runtime?.generation, synthetic: runtime?.planned, syntheticRule: runtime?.plannedRule,
            lastError: runtime?.lastError,
            retryAt: runtime?.retryAt.map { iso.string(from: $0) }, node: nil,
            classes: record?.classes ?? [], mode: record.map { $0.mode == .rgb ? "colour" : "grey" } ?? "",
            imageWidth: record?.imageWidth ?? 0, imageHeight: record?.imageHeight ?? 0, steps: record?.steps ?? 0,
            checkpoint: record?.checkpointID ?? "", imagesAtLastRun: record?.imagesAtLastRun ?? 0,
            lastCheckpoint: modified.map { iso.string(from: $0) },
            lastDiscriminatorLoss: last?.discriminator, lastGeneratorLoss: last?.generator, lastPairSpread: last?.pairSpread,
            samples: folder.samplesPath,
            imagesPerClass: report?.imagesPerClass,
            rejected: report?.rejected, emptyClasses: report?.emptyClasses)
        status.diversity = runtime?.diversity
        status.outputSize = runtime?.outputSize
        status.trainedMinutes = runtime?.trainedMinutes
        status.settingsError = runtime?.settingsError
        status.advice = report?.advice
        status.best = record?.best
        status.unaugmentedPasses = record?.unaugmentedPasses
        if record?.best != nil { status.lastHeldOutScore = folder.readHeldOutScores().last }
        return status
    }

    /// Classes named one per line in `summary` (and among collapsed ones), as many as rejected
    /// files are; the rest are counted.
    static let classesListed = RejectedFile.listedInText

    /// A few readable lines.
    public func summary(now: Date = Date()) -> String {
        var text = "\(dataset):"
        if let state {
            text += " " + phaseText(state, progress: progress, eta: eta.flatMap(ISO8601DateFormatter().date(from:)), detail: detail, now: now)
            if let device, isComputing(state) { text += " on \(device)" + (node.map { " of node \($0)" } ?? "") }
            text += "\n "
        }
        if steps > 0 || !classes.isEmpty {
            // "model:": the last checkpoint's, which a round under way (fine-tuning on a new
            // class, say) changes only at its first checkpoint.
            text += " model: \(counted(classes.count, "class")), \(counted(imagesAtLastRun, "image")) (\(mode), \(imageWidth)x\(imageHeight)), step \(steps)"
            if let d = lastDiscriminatorLoss, let g = lastGeneratorLoss { text += String(format: ", losses D %.3f G %.3f", d, g) }
            if let lastPairSpread { text += String(format: ", pair spread %.3f", lastPairSpread) }
            if let lastCheckpoint { text += ", checkpoint \(lastCheckpoint)" }
            if let trainedMinutes {
                text += "\n  training: \(durationText(trainedMinutes * 60)) so far, fine-tuning aside (a larger [training] minutes "
                    + "in the dataset's synthd.toml trains it on)"
            }
            if let best {
                text += String(format: "\n  generator: step %d, chosen on %d held-out images (kernel distance %.4f",
                               best.step, best.heldOutImages, best.distance)
                if let last = lastHeldOutScore, last.step != best.step {
                    text += String(format: "; step %d scored %.4f", last.step, last.distance)
                }
                text += ")"
            }
            // Beside the samples (real images and samples per class), the curves: the losses,
            // and with images held out the checkpoints' scores.
            text += "\n  pictures: \(samples), losses.png" + (best != nil ? ", heldout.png" : "")
        } else {
            text += " no checkpoint yet"
        }
        if let outputsWritten, let generation {
            text += "\n  outputs: \(outputsWritten) images" + (outputSize.map { " at \($0)" } ?? "")
                + (outputFolder.map { " in \($0)," } ?? "") + " from \(generation)"
        }
        if let synthetic, let syntheticRule {
            let real = imagesPerClass ?? [:]
            text += "\n  synthetic per class (\(syntheticRule)):"
            // A dataset of hundreds of classes is read from its first lines; the collapsed
            // classes are named below whatever their place, and --json lists every class.
            let names = classes.isEmpty ? synthetic.keys.sorted() : classes
            for name in names.prefix(Self.classesListed) {
                text += "\n    \(name): \(synthetic[name] ?? 0)" + (real[name].map { " (real: \($0))" } ?? "")
                if let value = diversity?[name] {
                    text += String(format: ", diversity %.2f", value) + (value < Judge.collapseThreshold ? " (collapsed)" : "")
                }
            }
            if names.count > Self.classesListed {
                let rest = names.dropFirst(Self.classesListed)
                let restReal = rest.compactMap { real[$0] }
                text += "\n    ... and \(rest.count) more classes: \(rest.reduce(0) { $0 + (synthetic[$1] ?? 0) }) synthetic images"
                    + (restReal.isEmpty ? "" : " for \(restReal.reduce(0, +)) real")
                    + " (synthd status --json lists each)"
            }
            // The ratio decides whether mixing helps (docs/quality.md): say it where users look.
            let realTotal = synthetic.keys.reduce(0) { $0 + (real[$1] ?? 0) }
            if realTotal > 0 {
                let ratio = Double(synthetic.values.reduce(0, +)) / Double(realTotal)
                text += String(format: "\n  synthetic per real image: %.2f", ratio)
                    + " (measured: beyond 0.5 today's samples cost a classifier that mixes both folders accuracy; "
                    + "manifest.jsonl's real_in_class lets a reader weigh them: docs/quality.md)"
            }
        }
        let collapsed = (diversity ?? [:]).filter { $0.value < Judge.collapseThreshold }.keys.sorted()
        if !collapsed.isEmpty {
            let named = listedNames(collapsed, limit: Self.classesListed)
            text += "\n  warning: the samples of \(named) have collapsed (they vary less than half as much "
                + "as the real images); " + SyntheticWriter.Summary.collapseAdvice(classes: collapsed.count, unaugmentedPasses: unaugmentedPasses)
        }
        if let settingsError, state != "failed" {
            text += "\n  warning: its synthd.toml does not read, and its changes are not followed until it does "
                + "(the outputs are of the settings before): \(settingsError.replacingOccurrences(of: "\n", with: "\n    "))"
        }
        if let lastError {
            // A configuration names each of its mistakes on a line of its own: kept under this one.
            text += "\n  last error: \(lastError.replacingOccurrences(of: "\n", with: "\n    "))" + (retryAt.map { " (retry at \($0))" } ?? "")
        }
        for name in emptyClasses ?? [] { text += "\n  empty class skipped: \(name)" }
        for line in advice ?? [] { text += "\n  warning: \(LineLogHandler.oneLine(line))" }
        let listed = RejectedFile.listed(rejected ?? [])
        for reason in listed.reasons { text += "\n  rejected: \(LineLogHandler.oneLine(reason))" }
        if listed.unnamed > 0 { text += "\n  ... and \(listed.unnamed) more rejected files (synthd status --json lists them all)" }
        return text
    }

    /// Every dataset, as `synthd status` lists them all: those in the spool in full, then those
    /// that left it (kept until forgotten) named in one line, where there are datasets in the
    /// spool too. A daemon whose datasets come and go listed every one that ever left in full,
    /// what is under way lost among them; `synthd status NAME` shows one in full.
    public static func listing(_ statuses: [DatasetStatus]) -> String {
        let left = statuses.filter { $0.state == "removed" }.map(\.dataset)
        guard !left.isEmpty, left.count < statuses.count else { return statuses.map { $0.summary() }.joined(separator: "\n") }
        let named = left.prefix(classesListed).joined(separator: ", ") + (left.count > classesListed ? " and \(left.count - classesListed) more" : "")
        return statuses.filter { $0.state != "removed" }.map { $0.summary() }.joined(separator: "\n")
            + "\nleft the spool, kept until forgotten (synthd status NAME shows one; synthd forget NAME deletes one): \(named)"
    }

    /// One line over several datasets, for the top of `synthd status`: how many are in each
    /// state, and which are being worked on or have failed, so that a spool of hundreds of
    /// datasets is read from its first lines. nil for fewer than two datasets.
    public static func overview(_ statuses: [DatasetStatus], now: Date = Date()) -> String? {
        guard statuses.count > 1 else { return nil }
        let order = ["training", "generating", "interrupted", "queued", "waiting", "failed", "done", "removed"]
        var counts: [String: Int] = [:]
        for status in statuses { counts[status.state ?? "trained by hand", default: 0] += 1 }
        let states = order.filter { counts[$0] != nil } + counts.keys.filter { !order.contains($0) }.sorted()
        var text = "\(statuses.count) datasets: " + states.map { "\(counts[$0]!) \($0)" }.joined(separator: ", ")
        let busy = statuses.filter { isComputing($0.state) }
        if !busy.isEmpty {
            text += "\n  now: " + busy.map { status in
                "\(status.dataset) " + phaseText(status.state!, progress: status.progress,
                                                 eta: status.eta.flatMap(ISO8601DateFormatter().date(from:)), now: now)
            }.joined(separator: "; ")
        }
        let failed = statuses.filter { $0.state == "failed" }.map(\.dataset)
        if !failed.isEmpty {
            let named = failed.prefix(10).joined(separator: ", ") + (failed.count > 10 ? " and \(failed.count - 10) more" : "")
            text += "\n  failed: \(named) (synthd status NAME shows why)"
        }
        return text
    }
}

/// A state folder `synthd status` may not read.
public struct UnreadableStateFolder: Error, CustomStringConvertible {
    public let path: String, reason: String
    public var description: String {
        "\(path): cannot read the state folder (\(reason)); run synthd status as a user who may read it "
            + "(the daemon's user, or with sudo)"
    }
}
