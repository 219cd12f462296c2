import CUDA
import Engine
import Foundation
import Imaging

/// Writes generated images into `root/<class>/` and records them in `root/manifest.jsonl`.
public struct SyntheticWriter {
    public let generator: Generator
    public let record: ModelRecord
    public let root: String
    /// The standard deviation of the latent vectors (see `Sampler.temperature`).
    public var temperature: Float = Sampler.defaultTemperature
    /// The class check, when set: a sample that the judge puts in another class is not
    /// written, and more are drawn until every class has its count (see `Judge`).
    public var judge: (any SampleJudge)?
    /// Where the generator runs (nil: the CPU's cores); see `Sampler.device`.
    public var device: (any KernelDevice)?
    /// Real images per class (the model's class order) that the model learnt from, when
    /// known: each manifest line carries its class's count, so that a reader can weigh the
    /// synthetic images against the real ones (docs/quality.md: how many synthetic images per
    /// real one is what decides whether they help).
    public var realCounts: [Int]?
    /// The largest displacement, in pixels of the written image, of each written image: each
    /// is moved by a random offset of up to this many pixels across and down (never by none),
    /// its uncovered edge repeated (`Resampling.shifted`), after the class check has judged it
    /// where it was. 0 (the default) writes the generator's images as they are. Mixed into the
    /// real images of a classifier that does not augment, displaced samples taught it what
    /// centred ones could not (docs/quality.md, "Displaced samples").
    public var maxShift = 0

    /// The longest the shorter side of a written image may be (`ModelRecord.writtenSize`); 0:
    /// the dataset's size whatever it is.
    public var maxShortSide = SyntheticWriter.defaultMaxShortSide
    /// The size images are written at.
    public var writtenSize: (width: Int, height: Int) { record.writtenSize(maxShortSide: maxShortSide) }

    /// 256: what classifiers of photos are fed (torchvision's ImageNet recipe resizes the
    /// shorter side to 256, then crops 224), so a pipeline made for the real images takes the
    /// synthetic ones unchanged, and 4 to 8 times the generator's own pixels.
    public static let defaultMaxShortSide = 256

    /// Says so where images are written smaller than the dataset's (nil where they are not);
    /// `setting` names where the cap is set.
    public static func sizeNote(_ record: ModelRecord, maxShortSide: Int, setting: String) -> String? {
        let size = record.writtenSize(maxShortSide: maxShortSide), r = record.configuration.resolution
        guard size != (record.imageWidth, record.imageHeight) else { return nil }
        return "images written at \(size.width)x\(size.height), the dataset's \(record.imageWidth)x\(record.imageHeight) scaled down: "
            + "the model draws \(r)x\(r) pixels, and a larger image only enlarges them (\(setting) \(maxShortSide); 0 keeps the dataset's size)"
    }

    /// What `synthd generate` and the daemon use unless told otherwise: images as drawn. From
    /// 50 images a class, images moved by up to 7% of their side (2 pixels at 28 x 28) helped a
    /// classifier that does not augment by a few tenths of a point, within the noise at the
    /// default amount and clearly at 5x, and cost one that shifts its images itself (up to 4
    /// pixels in all) 0.7 points at 5x (docs/quality.md, "Displaced samples"): an option for
    /// the first kind of user, not a default for both.
    public static let defaultShift = 0.0
    /// The shares `[generation] shift` and `--shift` accept: a quarter of the side at most.
    public static let shiftRange: ClosedRange<Double> = 0...0.25

    /// `shift` (a share of the side, as configured) in pixels of an image of `width` x
    /// `height`: rounded, so that 0.07 is 2 pixels at 28 and 32, 4 at 64.
    public static func pixels(ofShift shift: Double, width: Int, height: Int) -> Int {
        Int((shift * Double(min(width, height))).rounded())
    }

    /// A class whose samples the judge accepts less often than this (an undertrained or
    /// collapsed model) is written without the check rather than drawn for ever.
    public static let minimumAcceptance = 0.1

    public init(generator: Generator, record: ModelRecord, root: String) {
        self.generator = generator
        self.record = record
        self.root = root
    }

    /// One line of the manifest.
    public struct ManifestLine: Codable, Equatable, Sendable {
        public var file: String
        public var `class`: String
        public var classIndex: Int
        public var seed: UInt64
        public var temperature: Float
        public var index: Int
        public var checkpoint: String
        public var step: Int
        /// Whether the judge put it in its class (false: written without the class check).
        public var checked: Bool
        /// Real images of its class that the model learnt from (absent when not known).
        public var realInClass: Int?
        /// How far the image was moved from where the generator drew it, in pixels (right and
        /// down; absent when images are not moved: `SyntheticWriter.maxShift`).
        public var shiftDown: Int? = nil
        public var shiftRight: Int? = nil

        /// The line as JSON, keys in snake case and sorted, as `JSONEncoder` would write it with
        /// `.convertToSnakeCase` and `.sortedKeys`, but written directly: JSONEncoder took about
        /// 10 us a line, and a GPU makes a chunk of 8,192 images faster than one thread encoded
        /// their lines.
        public var json: String {
            var text = ""
            text.reserveCapacity(256)
            text += checked ? "{\"checked\":true,\"checkpoint\":" : "{\"checked\":false,\"checkpoint\":"
            Self.appendQuoted(checkpoint, to: &text)
            text += ",\"class\":"
            Self.appendQuoted(`class`, to: &text)
            text += ",\"class_index\":\(classIndex),\"file\":"
            Self.appendQuoted(file, to: &text)
            text += ",\"index\":\(index)"
            if let realInClass { text += ",\"real_in_class\":\(realInClass)" }
            text += ",\"seed\":\(seed)"
            if let shiftDown { text += ",\"shift_down\":\(shiftDown)" }
            if let shiftRight { text += ",\"shift_right\":\(shiftRight)" }
            text += ",\"step\":\(step),\"temperature\":"
            // Float's description is the shortest text that reads back as the same Float; a
            // whole number without its ".0", as JSONEncoder writes it.
            text += temperature == temperature.rounded() && abs(temperature) < 1e15
                ? String(Int64(temperature)) : temperature.description
            text += "}"
            return text
        }

        /// `value` as a JSON string: quotes, backslashes and control characters escaped, the
        /// rest (slashes and non-ASCII characters included) as it is.
        static func appendQuoted(_ value: String, to text: inout String) {
            text += "\""
            // Most names need no escaping: appended whole.
            if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                text += value
                text += "\""
                return
            }
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: text.unicodeScalars.append(scalar)
                }
            }
            text += "\""
        }
    }

    /// Images per class the diversity report measures (the judge's features of 128 images
    /// per class take a few milliseconds).
    public static let diversitySamples = 128

    /// What a `write` did.
    public struct Summary: Sendable, Equatable {
        /// Files written, and samples drawn for them (more than written when the judge rejected some).
        public var written = 0
        public var sampled = 0
        /// Per class: the share of its samples the judge accepted; nil when it was not checked.
        public var acceptance: [Double?] = []
        /// Classes written without the check because the judge accepted too few of their samples.
        public var unchecked: [String] = []
        /// Per class: the written images' diversity, their spread in the judge's features over
        /// the real images' (`Judge.diversity`, from up to `diversitySamples` of them); nil
        /// without a judge that knows the real spread, or for a class with too few images.
        public var diversity: [Double?] = []
        /// Samples the judge rejected as near-copies of real images (`NearCopies`).
        public var nearCopies = 0

        /// The classes whose samples have collapsed (diversity under `Judge.collapseThreshold`).
        public func collapsed(classes: [String]) -> [(name: String, diversity: Double)] {
            zip(classes, diversity).compactMap { name, value in
                value.flatMap { $0 < Judge.collapseThreshold ? (name, $0) : nil }
            }
        }

        /// "diversity (feature spread, synthetic / real): bag 0.93, shirt 0.41, ..."; nil when
        /// no class was measured.
        public func diversityLine(classes: [String]) -> String? {
            let measured = zip(classes, diversity).compactMap { name, value in value.map { String(format: "%@ %.2f", name, $0) } }
            return measured.isEmpty ? nil : "diversity (feature spread, synthetic / real): " + listedNames(measured)
        }

        /// What to tell the user about the collapsed classes: one line for all of them (a model
        /// of 100 classes trained briefly logged 100 lines), with what usually helps
        /// (`collapseAdvice`); nil when there are none.
        public static func collapseWarning(_ collapsed: [(name: String, diversity: Double)],
                                           unaugmentedPasses: Double? = nil) -> String? {
            guard let first = collapsed.first else { return nil }
            let advice = collapseAdvice(classes: collapsed.count, unaugmentedPasses: unaugmentedPasses)
            if collapsed.count == 1 {
                return String(format: "class '%@': the samples have collapsed: they vary %.2f as much as the real images in the judge's "
                              + "features (under %.1f); %@", first.name, first.diversity, Judge.collapseThreshold, advice)
            }
            let listed = listedNames(collapsed.map { String(format: "%@ %.2f", $0.name, $0.diversity) })
            return String(format: "the samples of %d classes have collapsed (%@: they vary under %.1f as much as the real images "
                          + "in the judge's features); %@", collapsed.count, listed, Judge.collapseThreshold, advice)
        }

        /// What usually helps `classes` collapsed classes of a model that has made
        /// `unaugmentedPasses` passes over its images without augmentation
        /// (`ModelRecord.unaugmentedPasses`). Past `TrainingBudget.defaultMaxEpochs` such a
        /// discriminator has memorised the images and more training makes it worse: on 1,000
        /// Fashion-MNIST images the classes' diversity was 0.80-1.06 after 100 passes, 0.61-1.08
        /// after 200, and three classes had collapsed after 286 (docs/training.md), the pass
        /// count at which 10,000 images collapsed on a GPU in ten times the steps.
        public static func collapseAdvice(classes: Int, unaugmentedPasses: Double?) -> String {
            let these = classes == 1 ? "the class" : "these classes"
            if let passes = unaugmentedPasses, passes > TrainingBudget.defaultMaxEpochs {
                return String(format: "the discriminator has seen each real image about %.0f times without augmentation and "
                              + "memorised them: more images of %@, or a new model with augmentation (synthd train "
                              + "--augmentation on; the daemon's [training] augmentation, for a model trained afresh) help, "
                              + "more training does not", passes, these)
            }
            return "more images of \(these), or more training, usually help"
        }

        /// "drew 82530 samples for 60000 images; accepted: bag 97%, shirt 40%, ..." (the
        /// classes the judge looked at).
        public func classCheckLine(classes: [String]) -> String {
            let shares = zip(classes, acceptance).compactMap { name, share in
                share.map { "\(name) \(Int((100 * $0).rounded()))%" }
            }
            // A judge of one class names that class whatever it is shown: its "100%" would read
            // as a check passed.
            let verdict = classes.count == 1 ? "one class, so nothing to tell its samples from" : "accepted: " + listedNames(shares)
            return "drew \(sampled) samples for \(written) images; \(verdict)"
                + (nearCopies > 0 ? "; \(nearCopies) near-copies of real images dropped" : "")
        }

        /// What to tell the user about classes whose folders are left empty (`write` makes a
        /// folder for every class of the real dataset, images or not, so that both trees list
        /// the same classes in the same order): PyTorch's ImageFolder refuses a tree with an
        /// empty class folder unless told `allow_empty=True`. nil when every folder has images.
        public static func emptyFoldersNote(_ names: [String]) -> String? {
            guard let first = names.first else { return nil }
            let which = names.count == 1 ? "class '\(first)' gets" : "\(names.count) classes (\(listedNames(names))) get"
            let them = names.count == 1 ? "its folder is" : "their folders are"
            return "\(which) no synthetic images by the generation settings; \(them) left empty so that the real and "
                + "synthetic trees list the same classes in the same order (read the synthetic tree with PyTorch's "
                + "ImageFolder(..., allow_empty=True): README, \"Reading real and synthetic images together\")"
        }

        /// The classes of `classes` that `write(counts:...)` leaves an empty folder: none asked,
        /// and real images (`realCounts`; all classes when unknown).
        public static func emptyFolders(classes: [String], counts: [Int], realCounts: [Int]?) -> [String] {
            classes.indices.filter { counts[$0] == 0 && (realCounts?[$0] ?? 1) > 0 }.map { classes[$0] }
        }

        /// What to tell the user about the classes written unchecked: one line for all of them;
        /// nil when there are none.
        public static func uncheckedWarning(_ names: [String]) -> String? {
            guard let first = names.first else { return nil }
            let share = "\(Int(100 * SyntheticWriter.minimumAcceptance))%"
            if names.count == 1 {
                return "class '\(first)': the judge accepted under \(share) of its samples, so its images were written without the "
                    + "class check; the model may need more training"
            }
            return "the judge accepted under \(share) of the samples of \(names.count) classes (\(listedNames(names))), so "
                + "their images were written without the class check; the model may need more training"
        }
    }

    /// Generates `counts[k]` images of class k.
    ///
    /// Latent vectors come from the seed, so a run is reproducible; files are named
    /// `synth-s<seed>-<generator>-<index>.png` (`ModelRecord.generatorID`), so another seed or
    /// a newer model adds files next to the old ones. Images are written atomically without an fsync each, flushed to
    /// disk chunk by chunk, and only then does the manifest (also atomic) list them. A file
    /// written again (the same seed and model) replaces its manifest line rather than adding one.
    ///
    /// BatchNorm uses standing statistics (`Sampler.standingStatistics`, from the seed), so an
    /// image depends on its z and label only, whatever else is drawn with it: a request for one
    /// class comes out as it would in a mix (with each batch's statistics it did not).
    ///
    /// With a judge, samples are drawn in rounds: the first draws the request; each later one
    /// draws, for every class still short, its shortfall divided by the share of its samples the
    /// judge has accepted so far (plus 10%).
    ///
    /// `shouldStop` is asked between chunks of 8,192 images (about two seconds); when it says
    /// stop, the files written so far are flushed and listed in the manifest (every one is
    /// whole), then `GenerationStopped` is thrown with their count. (The daemon writes into a
    /// generation it publishes only when complete, and discards a stopped one.)
    /// `progress` gets the images written so far.
    @discardableResult
    public func write(counts: [Int], seed: UInt64, shouldStop: () -> Bool = { false },
                      progress: (Int) -> Void = { _ in }) throws -> Summary {
        precondition(counts.count == record.classes.count, "\(counts.count) counts for \(record.classes.count) classes")
        precondition(judge.map { $0.classes.count == counts.count } ?? true, "the judge knows other classes")
        precondition(realCounts.map { $0.count == counts.count } ?? true, "real counts for other classes")
        // Every class of the real dataset gets its folder, images or not, so that the two trees
        // index their classes alike; a class the model knows but the dataset lost gets none.
        for (k, name) in record.classes.enumerated() where counts[k] > 0 || (realCounts?[k] ?? 1) > 0 {  // (`Summary.emptyFolders`)
            try createFolders(root + "/" + name)
        }
        let classes = counts.count
        var summary = Summary()
        guard counts.contains(where: { $0 > 0 }) else { return summary }
        let flush = try FileSystemFlush(containing: root)

        let judges = judge.map { judge in [judge] + (1..<max(1, Parallel.maxThreads)).map { _ in judge.copy() } }
        let copiesDropped = { (judges ?? []).reduce(0) { $0 + (($1 as? Judge)?.nearCopiesDropped ?? 0) } }
        let copiesBefore = copiesDropped()
        var sampler = Sampler(generator: generator, record: record)
        sampler.device = device
        sampler.writtenSize = writtenSize
        sampler.batchSize = 256
        sampler.temperature = temperature
        var rng = RandomGenerator(seed: seed)
        // Its own stream, so that displacing images leaves the samples drawn as they were.
        var shiftStream = RandomGenerator(seed: seed ^ 0x5348_4946_5453)
        sampler.statistics = try sampler.standingStatistics(seed: rng.nextUInt64())
        var missing = counts, nextIndex = [Int](repeating: 0, count: classes)
        var judged = [Int](repeating: 0, count: classes), accepted = judged
        var unchecked = Set<Int>()
        // Each chunk is encoded, written and flushed to disk on a background thread while the
        // next one is sampled, so that time file creation spends waiting (on the folder's lock,
        // on a slow disk) is not lost to the sampler, and the flush before the manifest has
        // only the last chunk left to write.
        let background = ChunkWriter(flush: flush)
        let finish = sampler.finisher
        var lines: [(file: String, json: String)] = []
        var round = 0
        // Up to `diversitySamples` written images per class, as the judge sees them, for the
        // diversity report.
        let measuresDiversity = (judge as? Judge)?.realSpread != nil
        var seen: [Image] = [], seenLabels: [Int32] = [], seenPerClass = [Int](repeating: 0, count: classes)
        while missing.contains(where: { $0 > 0 }) {
            let labels = round == 0 ? counts.enumerated().flatMap { Array(repeating: Int32($0), count: $1) }
                : Self.redrawLabels(missing: missing, rates: (0..<classes).map { k in
                    unchecked.contains(k) || judged[k] == 0 ? 1 : Double(accepted[k]) / Double(judged[k])
                })
            for chunk in Self.chunks(of: labels.count) {
                if shouldStop() {
                    lines += try background.wait()
                    try flush.flush()
                    try appendManifest(lines)
                    throw GenerationStopped(written: summary.written)
                }
                let groups = chunk.map { range in (labels: Array(labels[range]), seed: rng.nextUInt64()) }
                let (images, verdicts) = try sampler.sampleSquares(groups, judges: judges)
                summary.sampled += images.count
                let partLabels = groups.flatMap(\.labels)
                var kept: [Image] = [], paths: [String] = [], keptLines: [ManifestLine] = []
                var offsets: [(right: Int, down: Int)] = []
                for (i, label) in partLabels.enumerated() {
                    let k = Int(label)
                    let checked = verdicts != nil && !unchecked.contains(k)
                    if checked {
                        judged[k] += 1
                        if verdicts![i] { accepted[k] += 1 }
                    }
                    guard missing[k] > 0, !checked || verdicts![i] else { continue }
                    let name = "\(record.classes[k])/synth-s\(seed)-\(record.generatorID)-\(Self.sixDigits(nextIndex[k])).png"
                    kept.append(images[i])
                    if measuresDiversity && seenPerClass[k] < Self.diversitySamples {
                        seen.append(sampler.finishIsSmall ? finish(images[i]) : images[i])
                        seenLabels.append(label)
                        seenPerClass[k] += 1
                    }
                    paths.append(root + "/" + name)
                    var line = ManifestLine(file: name, class: record.classes[k], classIndex: k, seed: seed,
                                            temperature: temperature, index: nextIndex[k], checkpoint: record.generatorID,
                                            step: record.best?.step ?? record.steps, checked: checked, realInClass: realCounts?[k])
                    if maxShift > 0 {
                        let offset = Self.drawShift(most: maxShift, &shiftStream)
                        offsets.append(offset)
                        (line.shiftRight, line.shiftDown) = (offset.right, offset.down)
                    }
                    keptLines.append(line)
                    nextIndex[k] += 1
                    missing[k] -= 1
                }
                lines += try background.wait()
                if summary.written > 0 { progress(summary.written) }
                background.start(kept, finish: finish, shifts: offsets, paths: paths, lines: keptLines)
                summary.written += kept.count
            }
            round += 1
            // A class the judge rarely accepts, or any still short after many rounds, is
            // finished without the check.
            for k in 0..<classes where missing[k] > 0 && !unchecked.contains(k) && judged[k] > 0 {
                if Double(accepted[k]) / Double(judged[k]) < Self.minimumAcceptance || round >= 20 { unchecked.insert(k) }
            }
        }
        lines += try background.wait()
        progress(summary.written)
        // A write-back error means some files may hold nothing: the manifest must not list them.
        try flush.flush()
        try appendManifest(lines)
        summary.acceptance = (0..<classes).map { judged[$0] > 0 ? Double(accepted[$0]) / Double(judged[$0]) : nil }
        summary.unchecked = unchecked.sorted().map { record.classes[$0] }
        summary.nearCopies = copiesDropped() - copiesBefore
        if measuresDiversity, let judge = judge as? Judge {
            summary.diversity = judge.diversity(features: judge.features(seen), labels: seenLabels)
        }
        return summary
    }

    /// The displacements that `root`'s manifest records, by file path (`root/<class>/<file>`):
    /// what moves each displaced image back where it was drawn. Empty without a manifest or
    /// when no line records one; lines that do not parse are skipped.
    public static func recordedShifts(root: String) -> [String: (right: Int, down: Int)] {
        guard let text = try? String(contentsOfFile: manifestPath(root), encoding: .utf8) else { return [:] }
        let decoder = manifestDecoder()
        var shifts: [String: (right: Int, down: Int)] = [:]
        for line in text.split(separator: "\n") {
            guard let parsed = try? decoder.decode(ManifestLine.self, from: Data(line.utf8)),
                  let right = parsed.shiftRight, let down = parsed.shiftDown else { continue }
            shifts[root + "/" + parsed.file] = (right, down)
        }
        return shifts
    }

    /// A displacement of up to `most` pixels each way, uniform over the (2 most + 1)^2 - 1
    /// offsets other than none (the rule of the measured folders, scripts/bound_folders.py).
    static func drawShift(most: Int, _ rng: inout RandomGenerator) -> (right: Int, down: Int) {
        let side = UInt64(2 * most + 1)
        var cell = rng.nextUInt64() % (side * side - 1)
        if cell >= (side * side) / 2 { cell += 1 }   // skip the centre: no displacement
        return (Int(cell % side) - most, Int(cell / side) - most)
    }

    /// `index` with leading zeros to six digits, as `String(format: "%06d")` (a file name per
    /// image on the sampling thread: that took about 2.5 us, this a tenth).
    static func sixDigits(_ index: Int) -> String {
        let digits = String(index)
        return digits.count >= 6 ? digits : String(repeating: "0", count: 6 - digits.count) + digits
    }

    /// Labels to draw for the classes still `missing` images, given the share of each class's
    /// samples the judge accepts: shortfall / rate + 10%, plus 2, each (a rate under
    /// `minimumAcceptance` counts as that).
    static func redrawLabels(missing: [Int], rates: [Double]) -> [Int32] {
        missing.enumerated().flatMap { k, count in
            count == 0 ? [] : Array(repeating: Int32(k),
                                    count: Int((Double(count) / max(rates[k], minimumAcceptance) * 1.1).rounded(.up)) + 2)
        }
    }

    /// Positions 0..<count cut into groups of 2,048, each sampled from its own seed (what fixes
    /// the pixels of a seed), four groups to a chunk: 32 batches, so that the last batch, which
    /// one worker finishes while the other waits, is a small part of the chunk (one group at a
    /// time: 176-178% CPU; four: 183-184%). The last group is a chunk of its own, so that
    /// writing the last chunk, which nothing overlaps, is short.
    static func chunks(of count: Int) -> [[Range<Int>]] {
        let group = 2048
        let groups = stride(from: 0, to: count, by: group).map { $0..<min(count, $0 + group) }
        var chunks = stride(from: 0, to: groups.count, by: 4).map { Array(groups[$0..<min(groups.count, $0 + 4)]) }
        if let last = chunks.last, last.count > 1 { chunks[chunks.count - 1].removeLast(); chunks.append([last.last!]) }
        return chunks
    }

    /// Adds `lines` (one JSON object each) to the manifest, dropping earlier lines for the same
    /// files. Lines that do not parse (written by someone else) are kept as they are.
    func appendManifest(_ lines: [(file: String, json: String)]) throws {
        let path = Self.manifestPath(root)
        let rewritten = Set(lines.map(\.file))
        let decoder = Self.manifestDecoder()
        var text = ""
        let old = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        for line in old.split(separator: "\n") {
            if let parsed = try? decoder.decode(FileField.self, from: Data(line.utf8)), rewritten.contains(parsed.file) { continue }
            text += line + "\n"
        }
        for line in lines { text += line.json + "\n" }
        try writeFileAtomically(path: path, bytes: Array(text.utf8))
    }

    static func manifestPath(_ root: String) -> String { root + "/" + ImageFolder.manifestName }

    /// Reads manifest lines (snake-case keys, as `ManifestLine.json` writes them).
    static func manifestDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }

    /// The one field of a manifest line that says which file it describes.
    private struct FileField: Decodable { var file: String }
}

/// Generation was asked to stop before it finished.
public struct GenerationStopped: Error, CustomStringConvertible {
    /// Files written (and listed in the manifest) before it stopped; nil where nothing was
    /// being written yet.
    public var written: Int?
    public init(written: Int? = nil) { self.written = written }
    public var description: String { "generation stopped before it finished" }
}

/// Encodes and writes one chunk of images at a time on a background thread, and encodes
/// their manifest lines (too long to wait for at the end).
final class ChunkWriter: @unchecked Sendable {
    private let flush: FileSystemFlush
    private let group = DispatchGroup()
    private let failures = ErrorSlot()
    private var encoded: [(file: String, json: String)] = []

    init(flush: FileSystemFlush) { self.flush = flush }

    /// Starts writing `images[i]` to `paths[i]`; call `wait` before the next `start`.
    /// `finish` brings each image to its written size just before it is encoded, so only one
    /// full-size image per thread exists at a time; then it is moved by `shifts[i]` when given.
    func start(_ images: [Image], finish: @escaping @Sendable (Image) -> Image, shifts: [(right: Int, down: Int)] = [],
               paths: [String], lines: [SyntheticWriter.ManifestLine]) {
        precondition(shifts.isEmpty || shifts.count == images.count, "\(shifts.count) shifts for \(images.count) images")
        group.enter()
        let context = ComputeContext.current  // the job's thread budget, on the writing thread too
        DispatchQueue.global().async { [self] in
            context.run { Parallel.forRanges(images.count, minimumPerChunk: 64) { range in
                for i in range {
                    do {
                        let image = finish(images[i])
                        try PNG.write(shifts.isEmpty ? image : Resampling.shifted(image, right: shifts[i].right, down: shifts[i].down),
                                      to: paths[i], durable: false)
                    } catch {
                        failures.record(error)
                    }
                }
            } }
            do { try flush.flush() } catch { failures.record(error) }
            encoded = lines.map { ($0.file, $0.json) }
            group.leave()
        }
    }

    /// Waits for the chunk in flight and returns its encoded manifest lines; throws the first
    /// error any chunk met.
    func wait() throws -> [(file: String, json: String)] {
        group.wait()
        if let error = failures.first { throw error }
        defer { encoded = [] }
        return encoded
    }
}

/// The first error seen by concurrent workers.
final class ErrorSlot: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: (any Error)?
    func record(_ error: any Error) {
        lock.lock()
        if first == nil { first = error }
        lock.unlock()
    }
}
