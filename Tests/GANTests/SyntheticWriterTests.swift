import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

@Suite final class SyntheticWriterTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    /// A tiny model trained for two steps on a tiny dataset of 28x28 grey images.
    func trainedState() throws -> (StateFolder, DatasetFolder) {
        let data = try DatasetFolder()
        try data.addImages("cat", count: 3, value: 40)
        try data.addImages("dog", count: 5, value: 90)
        let path = NSTemporaryDirectory() + "synthd-gen-\(UUID().uuidString)"
        folders.append(path)
        let state = try StateFolder(path)
        var options = TrainingOptions()
        options.batchSize = 4
        let trainer = try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options)
        try trainer.train(.steps(2))
        return (state, data)
    }

    /// A model of few steps trained on `width` x `height` images (two classes of three).
    func trainedOnImages(width: Int, height: Int, mode: Image.Mode, steps: Int) throws -> (StateFolder, DatasetFolder, TrainingOptions) {
        let data = try DatasetFolder()
        try data.addWideImages("cat", count: 3, value: 40, width: width, height: height, mode: mode)
        try data.addWideImages("dog", count: 3, value: 160, width: width, height: height, mode: mode)
        let path = NSTemporaryDirectory() + "synthd-gen-\(UUID().uuidString)"
        folders.append(path)
        let state = try StateFolder(path)
        var options = TrainingOptions()
        options.batchSize = 4
        options.baseChannels = 8
        try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options).train(.steps(steps))
        return (state, data, options)
    }

    /// The sizes (and modes) of the images a writer of `state`'s model writes, `maxShortSide`
    /// its cap where given.
    func writtenSizes(_ state: StateFolder, maxShortSide: Int? = nil, counts: [Int] = [2, 2]) throws -> Set<String> {
        let (generator, record) = try SavedGenerator.load(state)
        let out = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        var writer = SyntheticWriter(generator: generator, record: record, root: out)
        if let maxShortSide { writer.maxShortSide = maxShortSide }
        try writer.write(counts: counts, seed: 3)
        return Set(try files(out).map { file in
            let image = try PNG.read(path: out + "/" + file)
            return "\(image.width)x\(image.height) \(image.mode)"
        })
    }

    func files(_ folder: String) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") }.sorted()
    }

    @Test func writesCountsLayoutManifestAndIsReproducible() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let out = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        let writer = SyntheticWriter(generator: generator, record: record, root: out)
        #expect(try writer.write(counts: [2, 3], seed: 7).written == 5)

        let written = try files(out)
        #expect(written.filter { $0.hasPrefix("cat/") }.count == 2 && written.filter { $0.hasPrefix("dog/") }.count == 3)
        let all = try FileManager.default.subpathsOfDirectory(atPath: out)
        #expect(!all.contains { $0.contains(".tmp") }, "temporary files left behind: \(all)")
        for file in written {
            let image = try PNG.read(path: out + "/" + file)
            #expect(image.width == 28 && image.height == 28 && image.mode == .grey, "\(file) is not a 28x28 grey PNG")
        }
        let manifest = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(manifest.count == 5)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let lines = try manifest.map { try decoder.decode(SyntheticWriter.ManifestLine.self, from: Data($0.utf8)) }
        #expect(Set(lines.map(\.file)) == Set(written))
        #expect(lines.allSatisfy { $0.seed == 7 && $0.step == 2 && $0.checkpoint == "step-2" && $0.temperature == 1 && !$0.checked })
        #expect(lines.allSatisfy { $0.realInClass == nil } && !manifest.contains { $0.contains("real_in_class") },
                "real counts were not given: the lines must not invent them")

        // The same seed again: the same pixels (files are replaced by identical ones and keep
        // one manifest line each); another seed adds files beside the first ones.
        let again = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (again as NSString).deletingLastPathComponent) }
        try SyntheticWriter(generator: generator, record: record, root: again).write(counts: [2, 3], seed: 7)
        for file in written {
            #expect(try PNG.read(path: again + "/" + file) == PNG.read(path: out + "/" + file), "\(file) differs for the same seed")
        }
        try writer.write(counts: [2, 3], seed: 7)
        #expect(try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").count == 5)
        try writer.write(counts: [1, 1], seed: 8)
        #expect(try files(out).count == 7)
        #expect(try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").count == 7)
    }

    /// A dataset of 40 x 30 images (wider than the model's 32) gets 40 x 30 images: the
    /// record says the model was trained on whole images. A model made before the rule was
    /// recorded (no `fitting` in model.json) was trained on the centre square: it still writes
    /// 30 x 30 images, and a resumed training keeps loading its images that way.
    @Test func imagesComeBackAtTheDatasetsWidthAndHeight() throws {
        let (state, data, options) = try trainedOnImages(width: 40, height: 30, mode: .rgb, steps: 2)
        func writtenSizes() throws -> Set<String> { try self.writtenSizes(state) }
        #expect(try state.readRecord()?.fitting == .wholeImage)
        #expect(try writtenSizes() == ["40x30 rgb"])

        // The record as a build before 2026-12-04 wrote it.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state.recordPath))) as! [String: Any]
        #expect(json.removeValue(forKey: "fitting") as? String == "whole-image")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: state.recordPath))
        #expect(try writtenSizes() == ["30x30 rgb"])
        let set = try Trainer.loadDataset(data.root, state: state, resolution: 32)
        #expect(set.fitting == .centreSquare)
        try Trainer(set: set, state: state, options: options).train(.steps(1))
        let resumed = try state.readRecord()
        #expect(resumed?.fitting == nil && resumed?.steps == 3, "a resumed older model stays one")
    }

    /// A dataset of large images gets its synthetic images scaled down to a shorter side of
    /// `maxShortSide` (never below the model's resolution), aspect kept; 0 writes the
    /// dataset's size, and an older model's centre square is capped alike.
    @Test func largeImagesAreWrittenScaledDown() throws {
        let (state, _, _) = try trainedOnImages(width: 400, height: 300, mode: .grey, steps: 1)
        func writtenSizes(_ maxShortSide: Int?) throws -> Set<String> {
            Set(try self.writtenSizes(state, maxShortSide: maxShortSide, counts: [1, 2]).map { String($0.split(separator: " ")[0]) })
        }
        #expect(try writtenSizes(nil) == ["341x256"], "the default cap, 256")
        #expect(try writtenSizes(150) == ["200x150"])
        #expect(try writtenSizes(10) == ["43x32"], "not below the model's 32 pixels")
        #expect(try writtenSizes(0) == ["400x300"], "0: the dataset's size")
        #expect(try writtenSizes(300) == ["400x300"])
        let record = try #require(try state.readRecord())
        #expect(SyntheticWriter.sizeNote(record, maxShortSide: 300, setting: "--max-short-side") == nil)
        let note = SyntheticWriter.sizeNote(record, maxShortSide: 150, setting: "--max-short-side")
        #expect(note?.contains("200x150, the dataset's 400x300 scaled down") == true, "\(note ?? "nil")")
        #expect(note?.contains("--max-short-side 150; 0 keeps") == true, "\(note ?? "nil")")

        // A model from before whole images were fitted writes the centre square, capped.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state.recordPath))) as! [String: Any]
        json.removeValue(forKey: "fitting")
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: state.recordPath))
        #expect(try writtenSizes(nil) == ["256x256"])
        #expect(try writtenSizes(0) == ["300x300"])
    }

    /// With the real counts known, each line carries its own class's count.
    @Test func manifestLinesCarryTheirClassesRealCount() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let out = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        var writer = SyntheticWriter(generator: generator, record: record, root: out)
        writer.realCounts = [4, 9]
        try writer.write(counts: [2, 3], seed: 7)
        let lines = try manifestLines(out)
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0.realInClass == ($0.class == "cat" ? 4 : 9) }, "\(lines.map { ($0.class, $0.realInClass) })")
    }

    /// The output tree has the real dataset's class folders: a class with real images gets its
    /// folder even with nothing to write (both trees index their classes alike), a class the
    /// dataset lost gets none.
    @Test func classFoldersFollowTheRealClasses() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let base = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        var writer = SyntheticWriter(generator: generator, record: record, root: base + "/lost")
        writer.realCounts = [4, 0]
        try writer.write(counts: [2, 0], seed: 7)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/lost").sorted() == ["cat", "manifest.jsonl"])
        writer = SyntheticWriter(generator: generator, record: record, root: base + "/full")
        writer.realCounts = [4, 9]
        try writer.write(counts: [0, 0], seed: 7)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/full").sorted() == ["cat", "dog"])
        // The empty folders are what the note names (PyTorch's ImageFolder needs allow_empty=True).
        #expect(SyntheticWriter.Summary.emptyFolders(classes: ["cat", "dog"], counts: [0, 0], realCounts: [4, 9]) == ["cat", "dog"])
        #expect(SyntheticWriter.Summary.emptyFolders(classes: ["cat", "dog"], counts: [2, 0], realCounts: [4, 0]).isEmpty)
        #expect(SyntheticWriter.Summary.emptyFolders(classes: ["cat", "dog"], counts: [2, 0], realCounts: nil) == ["dog"])
        #expect(SyntheticWriter.Summary.emptyFoldersNote([]) == nil)
        let note = try #require(SyntheticWriter.Summary.emptyFoldersNote(["dog"]))
        #expect(note.hasPrefix("class 'dog' gets no synthetic images by the generation settings; its folder is left empty")
                && note.contains("allow_empty=True"), "\(note)")
        #expect(SyntheticWriter.Summary.emptyFoldersNote(["cat", "dog"])?.hasPrefix("2 classes (cat, dog) get no synthetic images") == true)
    }

    /// With `maxShift`, each written image is the image written without it (same seed: the
    /// same samples) moved by the offset its manifest line names: up to `maxShift` each way,
    /// never none, reproducible from the seed, and varied (a 5 x 5 square has 24 offsets).
    @Test func shiftedImagesAreTheSamplesMovedByTheirManifestsOffsets() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let base = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        func write(_ name: String, maxShift: Int) throws -> String {
            var writer = SyntheticWriter(generator: generator, record: record, root: base + "/" + name)
            writer.maxShift = maxShift
            try writer.write(counts: [20, 20], seed: 5)
            return base + "/" + name
        }
        let plain = try write("plain", maxShift: 0), moved = try write("moved", maxShift: 2), again = try write("again", maxShift: 2)
        #expect(try manifestLines(plain).allSatisfy { $0.shiftRight == nil && $0.shiftDown == nil })
        #expect(!(try String(contentsOfFile: plain + "/manifest.jsonl", encoding: .utf8)).contains("shift"))
        let lines = try manifestLines(moved)
        #expect(lines.count == 40)
        var offsets = Set<[Int]>()
        for line in lines {
            let right = try #require(line.shiftRight), down = try #require(line.shiftDown)
            #expect(abs(right) <= 2 && abs(down) <= 2 && (right, down) != (0, 0), "\(line.file): (\(right), \(down))")
            offsets.insert([right, down])
            let original = try PNG.read(path: plain + "/" + line.file)
            #expect(try PNG.read(path: moved + "/" + line.file) == Resampling.shifted(original, right: right, down: down), "\(line.file)")
            #expect(try PNG.read(path: again + "/" + line.file) == PNG.read(path: moved + "/" + line.file), "\(line.file): not reproducible")
        }
        #expect(offsets.count >= 12, "40 draws of 24 offsets gave only \(offsets.count)")
        #expect(try manifestLines(again) == lines)

        // Moved back by the manifest's offsets as they are read (what synthd eval measures),
        // the images are the plain ones but for the edges they were moved off (2 pixels; the
        // 28 x 28 images sit 2 pixels in from the edges of the fitted 32 x 32).
        let shifts = SyntheticWriter.recordedShifts(root: moved)
        #expect(shifts.count == 40 && SyntheticWriter.recordedShifts(root: plain).isEmpty)
        let asWritten = try TrainingSet.load(plain, resolution: 32)
        let asDrawn = try TrainingSet.load(moved, resolution: 32, adjust: { path, image in
            shifts[path].map { Resampling.shifted(image, right: -$0.right, down: -$0.down) } ?? image
        })
        #expect(asDrawn.labels == asWritten.labels)
        var differing = 0
        for i in 0..<asDrawn.count { for y in 4..<28 { for x in 4..<28 {
            if asDrawn.pixels[i * 1024 + y * 32 + x] != asWritten.pixels[i * 1024 + y * 32 + x] { differing += 1 }
        } } }
        #expect(differing == 0, "\(differing) interior pixels differ")
        let undone = try TrainingSet.load(moved, resolution: 32)
        #expect(undone.pixels != asWritten.pixels, "without the adjustment the images are the moved ones")
    }

    /// The offsets are uniform over the square but its centre: 24,000 draws of up to 2 pixels
    /// put 1,000 on each of the 24 offsets, give or take 5 standard deviations (~156).
    @Test func offsetsAreUniformOverTheSquareButNone() {
        var rng = RandomGenerator(seed: 11)
        var counts: [[Int]: Int] = [:]
        for _ in 0..<24_000 {
            let offset = SyntheticWriter.drawShift(most: 2, &rng)
            counts[[offset.right, offset.down], default: 0] += 1
        }
        #expect(counts.count == 24 && counts[[0, 0]] == nil)
        #expect(counts.values.allSatisfy { abs($0 - 1000) < 156 }, "\(counts)")
        var one = RandomGenerator(seed: 3)
        #expect(Set((0..<200).map { _ in let o = SyntheticWriter.drawShift(most: 1, &one); return [o.right, o.down] }).count == 8)
    }

    /// A judge by pixel content alone (so a file read back gets the same verdict): it accepts
    /// an image whose pixel sum is not a multiple of three (about two thirds of them), and
    /// nothing of the classes in `rejectsAll`.
    struct PixelSumJudge: SampleJudge {
        let classes: [String]
        var rejectsAll: Set<Int32> = []
        func accepts(_ images: [Image], labels: [Int32]) -> [Bool] {
            zip(images, labels).map { image, label in
                !rejectsAll.contains(label) && image.pixels.reduce(0) { $0 + Int($1) } % 3 != 0
            }
        }
        func copy() -> any SampleJudge { self }
    }

    func manifestLines(_ root: String) throws -> [SyntheticWriter.ManifestLine] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try String(contentsOfFile: root + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try decoder.decode(SyntheticWriter.ManifestLine.self, from: Data($0.utf8)) }
    }

    /// With a judge, exactly the requested counts are written, every one of them accepted by
    /// the judge (read back from disk), rejected samples are drawn again, the manifest says they
    /// were checked, and the same seed gives the same files.
    @Test func theClassCheckWritesOnlyAcceptedSamplesAndExactCounts() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let parent = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let judge = PixelSumJudge(classes: record.classes)
        var writer = SyntheticWriter(generator: generator, record: record, root: parent + "/a")
        writer.judge = judge
        let summary = try writer.write(counts: [40, 60], seed: 3)

        #expect(summary.written == 100 && summary.unchecked.isEmpty)
        let line = summary.classCheckLine(classes: record.classes)
        #expect(line.hasPrefix("drew \(summary.sampled) samples for 100 images; accepted: cat ") && line.contains(", dog "), "\(line)")
        #expect(summary.sampled > 110, "drew \(summary.sampled) samples: the judge rejected too few to test redrawing")
        for share in summary.acceptance { #expect(share.map { $0 > 0.5 && $0 < 0.85 } == true, "acceptance \(String(describing: share))") }
        let written = try files(parent + "/a")
        #expect(written.filter { $0.hasPrefix("cat/") }.count == 40 && written.filter { $0.hasPrefix("dog/") }.count == 60)
        let images = try written.map { try PNG.read(path: parent + "/a/" + $0) }
        let labels = written.map { Int32($0.hasPrefix("cat/") ? 0 : 1) }
        #expect(judge.accepts(images, labels: labels).allSatisfy { $0 }, "a written image fails the judge")
        let lines = try manifestLines(parent + "/a")
        #expect(lines.count == 100 && lines.allSatisfy(\.checked))
        #expect(Set(lines.filter { $0.class == "dog" }.map(\.index)) == Set(0..<60), "indices are not 0..<60")

        writer = SyntheticWriter(generator: generator, record: record, root: parent + "/b")
        writer.judge = judge
        #expect(try writer.write(counts: [40, 60], seed: 3) == summary)
        for file in written {
            #expect(try PNG.read(path: parent + "/b/" + file) == PNG.read(path: parent + "/a/" + file), "\(file) differs for the same seed")
        }
    }

    /// A class the judge (almost) never accepts is written without the check after the first
    /// round instead of being drawn for ever; the summary and the manifest say so.
    @Test func aClassTheJudgeRejectsIsWrittenUnchecked() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let root = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        var writer = SyntheticWriter(generator: generator, record: record, root: root)
        writer.judge = PixelSumJudge(classes: record.classes, rejectsAll: [1])
        let summary = try writer.write(counts: [30, 30], seed: 5)
        #expect(summary.written == 60 && summary.unchecked == ["dog"] && summary.acceptance[1] == 0)
        #expect(SyntheticWriter.Summary.uncheckedWarning(["dog"])?.hasPrefix("class 'dog': the judge accepted under 10%") == true)
        #expect(SyntheticWriter.Summary.uncheckedWarning(["cat", "dog"])?.hasPrefix(
            "the judge accepted under 10% of the samples of 2 classes (cat, dog), so their images") == true, "one line for all")
        #expect(SyntheticWriter.Summary.uncheckedWarning([]) == nil)
        // A model of 150 classes: each line names 20 and counts the rest.
        let names = (0..<150).map { "c\($0)" }
        var many = SyntheticWriter.Summary()
        many.sampled = 1_050
        many.written = 300
        many.acceptance = Array(repeating: 0, count: 150)
        many.diversity = Array(repeating: 0.3, count: 150)
        #expect(many.classCheckLine(classes: names) == "drew 1050 samples for 300 images; accepted: "
                + (0..<20).map { "c\($0) 0%" }.joined(separator: ", ") + " and 130 more classes")
        #expect(many.diversityLine(classes: names)?.hasSuffix("c19 0.30 and 130 more classes") == true)
        // A judge of one class accepts whatever it sees: not said as a check passed.
        var single = SyntheticWriter.Summary()
        (single.sampled, single.written, single.acceptance) = (20, 20, [1])
        #expect(single.classCheckLine(classes: ["bag"]) == "drew 20 samples for 20 images; one class, so nothing to tell its samples from")
        #expect(SyntheticWriter.Summary.uncheckedWarning(names)?.contains("of 150 classes (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, "
                + "c10, c11, c12, c13, c14, c15, c16, c17, c18, c19 and 130 more classes), so") == true)
        #expect(SyntheticWriter.Summary.collapseWarning(many.collapsed(classes: names))?.contains("c19 0.30 and 130 more classes:") == true)
        let lines = try manifestLines(root)
        #expect(lines.filter { $0.class == "dog" }.count == 30 && lines.filter { $0.class == "dog" }.allSatisfy { !$0.checked })
        #expect(lines.filter { $0.class == "cat" }.count == 30 && lines.filter { $0.class == "cat" }.allSatisfy(\.checked))
    }

    /// Redrawing for the classes still short: each class's shortfall over its acceptance rate
    /// (+10%, +2), and a rate under the minimum counts as the minimum.
    @Test func redrawsScaleByAcceptance() {
        let labels = SyntheticWriter.redrawLabels(missing: [0, 100, 0, 10], rates: [1, 0.5, 1, 1])
        let count = { (k: Int32) in labels.filter { $0 == k }.count }
        #expect(count(0) == 0 && count(2) == 0)
        #expect((222...223).contains(count(1)) && count(3) == 13, "draws: \(count(1)), \(count(3))")
        let rare = SyntheticWriter.redrawLabels(missing: [50, 0], rates: [0.001, 1])
        #expect((552...553).contains(rare.count), "\(rare.count) draws, not 50 / 0.1 * 1.1 + 2")
    }

    /// The default temperature: 1.5 with the class check for a model of 10,000 images or more
    /// (what raised the synthetic-only classifier on all of Fashion-MNIST), 1 otherwise (what
    /// the mixed classifier did best with from 500 images; docs/quality.md).
    @Test func defaultTemperatureFollowsTheClassCheckAndTheDatasetSize() {
        #expect(Sampler.defaultTemperature(classCheck: true, trainingImages: 500) == 1)
        #expect(Sampler.defaultTemperature(classCheck: true, trainingImages: 9_999) == 1)
        #expect(Sampler.defaultTemperature(classCheck: true, trainingImages: 10_000) == 1.5)
        #expect(Sampler.defaultTemperature(classCheck: true, trainingImages: 60_000) == 1.5)
        #expect(Sampler.defaultTemperature(classCheck: false, trainingImages: 60_000) == 1)
    }

    /// Temperature t draws G(t z, y) for the z that the seed gives: checked pixel by pixel
    /// against the generator run by hand (28x28 images are the centre of the 32x32 output).
    @Test func temperatureScalesTheLatentVectors() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 1
        sampler.upsampling = .winograd   // Float products: the pixels must match to rounding
        sampler.temperature = 1.7
        let warm = try sampler.sample(labels: [1], seed: 42)[0]
        sampler.temperature = 1
        let plain = try sampler.sample(labels: [1], seed: 42)[0]
        #expect(warm.pixels != plain.pixels, "temperature changed nothing")

        var rng = RandomGenerator(seed: 42)
        let z = Tensor(zeros: [1, generator.configuration.latentSize])
        rng.fillNormal(z)
        for i in 0..<z.count { z[i] *= 1.7 }
        generator.setTraining(true)
        let output = generator.forward(z, labels: [1])
        var worst: Float = 0
        for y in 0..<28 {
            for x in 0..<28 {
                let expected = (output[(y + 2) * 32 + x + 2] + 1) * 127.5
                worst = max(worst, abs(Float(warm.pixels[y * 28 + x]) - expected))
            }
        }
        #expect(worst <= 0.5 + 1e-3, "pixels differ from G(1.7 z, y) by up to \(worst)")
    }

    /// Batches run concurrently on copies of the generator give what the generator gives for
    /// each batch in turn, z drawn batch after batch from the seed (after the seeded shuffle of
    /// the requests); after the generator's weights change, the copies follow.
    /// With standing statistics an image depends on its z and label only: the first image of a
    /// batch of 8 mixed classes equals the same z and label sampled alone. With each batch's
    /// own statistics it does not (the test would not notice otherwise). Passing a batch its own
    /// statistics gives what batch statistics give, in both upsampling paths.
    @Test func standingStatisticsMakeImagesIndependentOfTheirBatch() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 8
        let standing = try sampler.standingStatistics(seed: 3, batches: 4)
        #expect(standing.count == 3 && standing.allSatisfy { $0.variance.allSatisfy { $0 > 0 } })
        #expect(try sampler.standingStatistics(seed: 3, batches: 4).map(\.mean) == standing.map(\.mean), "not reproducible")

        var rng = RandomGenerator(seed: 11)
        let z = Tensor(zeros: [8, generator.configuration.latentSize])
        rng.fillNormal(z)
        let labels: [Int32] = [0, 1, 1, 0, 1, 0, 0, 1]
        let first = Tensor(zeros: [1, generator.configuration.latentSize])
        for i in 0..<first.count { first[i] = z[i] }
        for upsampling in [ConvTranspose2d.ForwardAlgorithm.winogradBFloat16, .winograd, .columns] {
            let inBatch = generator.sample(z, labels: labels, upsampling: upsampling, statistics: standing).values
            let alone = generator.sample(first, labels: [0], upsampling: upsampling, statistics: standing).values
            let difference = (0..<1024).map { abs(inBatch[$0] - alone[$0]) }.max()!
            // In Float the two agree to rounding. With bfloat16 products (AVX512-BF16 CPUs), a
            // last-bit difference upstream (OpenBLAS may sum a product of 8 rows in another order
            // than one of 1) can move an input across a bfloat16 rounding boundary, a step of
            // 2^-8 relative, which reaches the pixels as 1e-4 to 2e-3 depending on the trained
            // weights (measured: 2.6e-4, and 1.7e-3 for the model the fused BatchNorm layer
            // trains): under half of what batch statistics change (over 1e-2, below).
            let tolerance: Float = upsampling.usesBFloat16 ? 5e-3 : 1e-4
            #expect(difference < tolerance, "\(upsampling): the image changed with its batch by \(difference)")

            let batchOwn = generator.sample(z, labels: labels, upsampling: upsampling).values
            let used = generator.lastSamplingStatistics
            let aloneOwn = generator.sample(first, labels: [0], upsampling: upsampling).values
            #expect((0..<1024).map { abs(batchOwn[$0] - aloneOwn[$0]) }.max()! > 1e-2, "batch statistics did not matter")
            let replayed = generator.sample(z, labels: labels, upsampling: upsampling, statistics: used).values
            #expect(zip(batchOwn, replayed).map { abs($0 - $1) }.max()! < 1e-4, "\(upsampling): own statistics replayed differ")
        }
    }

    @Test func concurrentBatchesMatchBatchesOneAtATime() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 3
        let labels: [Int32] = [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1]

        func oneAtATime() -> [[UInt8]] {
            var rng = RandomGenerator(seed: 5)
            var order = Array(labels.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(below: i + 1)) }
            var pixels = [[UInt8]](repeating: [], count: labels.count)
            for start in stride(from: 0, to: order.count, by: 3) {
                let slots = Array(order[start..<(start + 3)])
                let z = Tensor(zeros: [3, generator.configuration.latentSize])
                rng.fillNormal(z)
                let output = generator.sample(z, labels: slots.map { labels[$0] })
                for (row, slot) in slots.enumerated() {
                    pixels[slot] = (0..<(28 * 28)).map { p in
                        UInt8(max(0, min(255, ((output[row * 1024 + (p / 28 + 2) * 32 + p % 28 + 2] + 1) * 127.5).rounded())))
                    }
                }
            }
            return pixels
        }
        func expectSame(_ images: [Image], _ expected: [[UInt8]], _ label: String) {
            for (image, pixels) in zip(images, expected) {
                let worst = zip(image.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
                #expect(worst <= 1, "\(label): pixels differ by \(worst)")
            }
        }
        expectSame(try sampler.sample(labels: labels, seed: 5), oneAtATime(), "first call")
        // Groups sampled together give what each group gives alone.
        let together = try sampler.sample([(Array(labels[..<5]), 5), (Array(labels[5...]), 9)])
        let alone = try sampler.sample(labels: Array(labels[..<5]), seed: 5) + sampler.sample(labels: Array(labels[5...]), seed: 9)
        expectSame(together, alone.map(\.pixels), "groups")
        for i in 0..<generator.projection.weight.value.count { generator.projection.weight.value[i] *= 1.5 }
        expectSame(try sampler.sample(labels: labels, seed: 5), oneAtATime(), "after the weights changed")
    }
}

extension SyntheticWriterTests {
    /// With a judge that knows the real spread, the summary says each class's diversity; a
    /// generator that ignores its noise (every image of a class the same) has collapsed.
    @Test func theSummaryReportsDiversityAndCollapse() throws {
        let (state, data) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let judge = try #require(Judge.train(on: Trainer.loadDataset(data.root, state: state, resolution: 32), seed: 1))
        let parent = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: parent) }
        func summary(_ generator: Generator, _ folder: String) throws -> SyntheticWriter.Summary {
            var writer = SyntheticWriter(generator: generator, record: record, root: parent + "/" + folder)
            writer.judge = judge
            return try writer.write(counts: [20, 20], seed: 3)
        }
        let varied = try summary(generator, "varied")
        #expect(varied.diversity.count == 2 && varied.diversity.allSatisfy { ($0 ?? 0) > 0.01 }, "\(varied.diversity)")
        #expect(varied.diversityLine(classes: record.classes)?.hasPrefix("diversity (feature spread, synthetic / real): cat ") == true)

        // The projection's columns for z to zero: the noise no longer reaches the image.
        let weight = generator.projection.weight.value
        let inputs = weight.shape[1], latent = generator.configuration.latentSize
        for row in 0..<weight.shape[0] { for column in 0..<latent { weight[row * inputs + column] = 0 } }
        let collapsed = try summary(generator, "collapsed")
        #expect(collapsed.diversity.allSatisfy { $0.map { $0 < 1e-3 } == true }, "\(collapsed.diversity)")
        #expect(collapsed.collapsed(classes: record.classes).map(\.name) == ["cat", "dog"])
        #expect(SyntheticWriter.Summary.collapseWarning([("cat", 0.01)])?.hasPrefix("class 'cat': the samples have collapsed") == true)
        #expect(SyntheticWriter.Summary.collapseWarning(collapsed.collapsed(classes: record.classes))?.hasPrefix(
            "the samples of 2 classes have collapsed (cat 0.00, dog 0.00: they vary under 0.5") == true, "one line for all")
        #expect(SyntheticWriter.Summary.collapseWarning([]) == nil)
        #expect(SyntheticWriter.Summary.collapseWarning([("cat", 0.01)])?.hasSuffix(
            "; more images of the class, or more training, usually help") == true)
        // Past 100 passes without augmentation the advice names memorisation, not training.
        let memorised = SyntheticWriter.Summary.collapseWarning(collapsed.collapsed(classes: record.classes), unaugmentedPasses: 250)
        #expect(memorised?.hasSuffix("in the judge's features); the discriminator has seen each real image about 250 times without "
                                     + "augmentation and memorised them: more images of these classes, or a new model with "
                                     + "augmentation (synthd train --augmentation on; the daemon's [training] augmentation, for "
                                     + "a model trained afresh) help, more training does not") == true, "\(memorised ?? "")")
        #expect(SyntheticWriter.Summary.collapseWarning([("cat", 0.01)], unaugmentedPasses: 99)?.hasSuffix("usually help") == true)
    }

    /// The passes a collapse warning weighs: the generator's steps' images over the dataset's,
    /// counted from the step generation samples (the held-out best where there is one); none
    /// for a model trained with augmentation.
    @Test func unaugmentedPassesCountTheGeneratorsImages() {
        var options = TrainingOptions()
        options.augmentation = false
        var record = ModelRecord(configuration: ModelConfiguration(), classes: ["cat", "dog"], mode: .grey, imageWidth: 28,
                                 imageHeight: 28, steps: 4470, imagesAtLastRun: 1000, options: options)
        #expect(record.unaugmentedPasses.map { abs($0 - 286.08) < 1e-9 } == true, "\(record.unaugmentedPasses ?? -1)")
        record.best = BestGenerator(step: 1563, distance: 0.1, heldOutImages: 100, heldOut: 7)
        #expect(record.unaugmentedPasses.map { abs($0 - 100.032) < 1e-9 } == true, "the best step's, not the last's")
        record.options.augmentation = true
        #expect(record.unaugmentedPasses == nil)
        record.options.augmentation = false
        record.imagesAtLastRun = 0
        #expect(record.unaugmentedPasses == nil, "no images: no passes")
    }

    /// Manifest lines are written without JSONEncoder: the same bytes as JSONEncoder (snake-case
    /// keys, sorted, slashes unescaped) for ordinary values, and lines that read back as they
    /// were for names with quotes, backslashes, control characters and non-ASCII letters.
    @Test func manifestLinesAreJSONEncodersBytesAndReadBack() throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        typealias Line = SyntheticWriter.ManifestLine
        let ordinary = [
            Line(file: "t-shirt/synth-s1-abc-000042.png", class: "t-shirt", classIndex: 0, seed: 1, temperature: 1.5, index: 42,
                 checkpoint: "abc", step: 8247, checked: true, realInClass: 6000),
            Line(file: "bag/synth-s18446744073709551615-x-000000.png", class: "bag", classIndex: 9, seed: .max, temperature: 1,
                 index: 0, checkpoint: "x", step: 0, checked: false, realInClass: nil),
            Line(file: "café/a.png", class: "café", classIndex: 3, seed: 7, temperature: 0.7, index: 3, checkpoint: "step-2",
                 step: 2, checked: true, realInClass: 0),
            Line(file: "bag/b.png", class: "bag", classIndex: 2, seed: 3, temperature: 1, index: 1, checkpoint: "step-9",
                 step: 9, checked: true, realInClass: 50, shiftDown: -2, shiftRight: 1),
            Line(file: "bag/c.png", class: "bag", classIndex: 2, seed: 3, temperature: 1, index: 2, checkpoint: "step-9",
                 step: 9, checked: false, realInClass: nil, shiftDown: 0, shiftRight: -1),
        ]
        for line in ordinary {
            #expect(line.json == String(decoding: try encoder.encode(line), as: UTF8.self))
            #expect(try decoder.decode(Line.self, from: Data(line.json.utf8)) == line)
        }
        let awkward = Line(file: "a\"b\\c/\n\t\r\u{1}\u{1f}\u{8}\u{c}\u{7f}猫.png", class: "a\"b\\c", classIndex: 1, seed: 2,
                           temperature: 2.25, index: 5, checkpoint: "\u{0}", step: 3, checked: false, realInClass: 12)
        #expect(try decoder.decode(Line.self, from: Data(awkward.json.utf8)) == awkward)
        for index in [0, 7, 42, 999_999, 1_000_000, 12_345_678] {
            #expect(SyntheticWriter.sixDigits(index) == String(format: "%06d", index))
        }
        #expect(!awkward.json.contains("\n") && !awkward.json.unicodeScalars.contains { $0.value < 0x20 }, "control characters escaped")
    }
}
