import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

@Suite struct KernelDistanceTests {
    /// Against NumPy: (x @ y.T / d + 1)**3 Gram matrices, diagonals left out within a set
    /// (computed in float64 from the same float32 inputs).
    @Test func matchesNumPy() {
        let (m, n, d) = (7, 5, 4)
        let a = (0..<m).flatMap { i in (0..<d).map { k in Float(sin(0.37 * Double(i) + 1.3 * Double(k))) } }
        let b = (0..<n).flatMap { j in (0..<d).map { k in Float(cos(0.11 * Double(j * k) + 0.5) + 0.2) } }
        #expect(abs(kernelDistance(a, b, dimension: d) - 4.698841269709828) < 1e-5)
        #expect(abs(kernelDistance(a, b, dimension: d) - kernelDistance(b, a, dimension: d)) < 1e-9, "symmetric")
    }

    /// The class-conditional distance and its jackknife standard error, against NumPy (the
    /// same per-class U-statistic, weighted by the real images' class shares; each real image
    /// left out in turn).
    @Test func classConditionalMatchesNumPy() {
        let d = 4
        let real = (0..<7).flatMap { i in (0..<d).map { k in Float(sin(0.37 * Double(i) + 1.3 * Double(k))) } }
        let samples = (0..<9).flatMap { j in (0..<d).map { k in Float(cos(0.11 * Double(j * k) + 0.5) + 0.2) } }
        let score = ClassKernelDistance(samples: samples, sampleLabels: [0, 0, 0, 0, 1, 1, 1, 1, 1], real: real,
                                        realLabels: [0, 1, 0, 1, 0, 1, 0], dimension: d)
        #expect(abs(score.distance - 3.2002687070762046) < 1e-5)
        #expect(abs(score.standardError - 0.6145464315355788) < 1e-5)
    }

    /// Unbiased per class where pooling is not: real and generated sets drawn from the same
    /// class-conditional distributions, five real images a class, score 0 on average.
    @Test func classConditionalIsUnbiasedWithFewRealImagesAClass() {
        var rng = RandomGenerator(seed: 9)
        let centres = (0..<4).map { _ in (0..<8).map { _ in rng.normal() } }
        func draw(_ labels: [Int32]) -> [Float] { labels.flatMap { k in centres[Int(k)].map { $0 + 0.5 * rng.normal() } } }
        let realLabels = (0..<4).flatMap { Array(repeating: Int32($0), count: 5) }
        let sampleLabels = (0..<4).flatMap { Array(repeating: Int32($0), count: 50) }
        /// Mean and standard error of the mean of 100 draws.
        func mean(_ draw: () -> Double) -> (mean: Double, error: Double) {
            let values = (0..<100).map { _ in draw() }
            let mean = values.reduce(0, +) / 100
            return (mean, (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 99 / 100).squareRoot())
        }
        let conditional = mean {
            ClassKernelDistance(samples: draw(sampleLabels), sampleLabels: sampleLabels, real: draw(realLabels),
                                realLabels: realLabels, dimension: 8).distance
        }
        let pooled = mean { kernelDistance(draw(sampleLabels), draw(realLabels), dimension: 8) }
        #expect(abs(conditional.mean) < 3 * conditional.error, "class-conditional: \(conditional)")
        #expect(pooled.mean + 3 * pooled.error < 0, "pooled, the same sets come out negative: \(pooled)")
    }

    /// Unbiased: two samples of one distribution average to 0 whatever their sizes (the
    /// Frechet distance would not), and a shifted distribution is clearly away from it.
    @Test func isUnbiasedAtSmallSizesAndSeesAShift() {
        var rng = RandomGenerator(seed: 4)
        func sample(_ count: Int, shift: Float = 0) -> [Float] { (0..<(count * 8)).map { _ in rng.normal() + shift } }
        var same = 0.0
        for _ in 0..<200 { same += kernelDistance(sample(10), sample(40), dimension: 8) }
        same /= 200
        var shifted = 0.0
        for _ in 0..<20 { shifted += kernelDistance(sample(10), sample(40, shift: 0.5), dimension: 8) }
        shifted /= 20
        #expect(abs(same) < 0.05, "mean over same-distribution pairs: \(same)")
        #expect(shifted > 0.5, "shifted by 0.5 in every dimension: \(shifted)")
    }
}

@Suite final class HeldOutSplitTests {
    private var folders: [DatasetFolder] = []

    func dataset(_ counts: [String: Int]) throws -> DatasetFolder {
        let data = try DatasetFolder()
        for (name, count) in counts.sorted(by: { $0.key < $1.key }) { try data.addImages(name, count: count, value: 10) }
        return data
    }

    @Test func holdsOutAboutOneInTenOfLargeClassesOnly() throws {
        let data = try dataset(["big": 200, "small": 19])
        let set = try TrainingSet.load(data.root, resolution: 32)
        let split = HeldOutSplit(set)
        let big = Int32(set.classMap.names.firstIndex(of: "big")!)
        let held = split.heldOut.labels
        #expect(held.allSatisfy { $0 == big }, "a class under \(HeldOutSplit.smallestClass) images keeps all of them")
        #expect((8...32).contains(held.count), "\(held.count) of 200 held out")
        #expect(split.training.count + held.count == set.count)
        // Every image is on exactly one side: the two parts' pixels together are the set's.
        let whole = LabeledImages(set), parts = LabeledImages(split.training) + split.heldOut
        let images = { (d: LabeledImages) in (0..<d.count).map { Array(d.pixels[($0 * 1024)..<(($0 + 1) * 1024)]) + [UInt8(d.labels[$0])] } }
        #expect(Set(images(whole)) == Set(images(parts)))
        #expect(HeldOutSplit(set).fingerprint == split.fingerprint, "the same images, the same split")
    }

    /// Adding images never moves an image G trained on into the held-out part.
    @Test func addingImagesKeepsTrainedImagesInTraining() throws {
        let data = try dataset(["a": 60])
        let before = HeldOutSplit(try TrainingSet.load(data.root, resolution: 32))
        try data.addImages("a", count: 60, value: 100, prefix: "more-")
        let after = HeldOutSplit(try TrainingSet.load(data.root, resolution: 32))
        func rows(_ d: LabeledImages) -> Set<[UInt8]> { Set((0..<d.count).map { Array(d.pixels[($0 * 1024)..<(($0 + 1) * 1024)]) }) }
        let trainedBefore = rows(LabeledImages(before.training))
        #expect(rows(after.heldOut).isDisjoint(with: trainedBefore))
        #expect(rows(before.heldOut).isSubset(of: rows(after.heldOut)), "under the cap, held-out images stay held out")
        #expect(after.heldOut.count > before.heldOut.count && after.fingerprint != before.fingerprint)
    }

    @Test func capsAClassAtMostPerClass() throws {
        let data = try DatasetFolder()
        // 1,500 distinct images: the byte pattern differs by two pixels' values.
        try FileManager.default.createDirectory(atPath: data.root + "/a", withIntermediateDirectories: true)
        for i in 0..<1500 {
            var image = Image(width: 28, height: 28, mode: .grey, fill: 0)
            image[3, 3, 0] = UInt8(i % 256)
            image[5, 5, 0] = UInt8(i / 256)
            try PNG.write(image, to: "\(data.root)/a/\(i).png")
        }
        let split = HeldOutSplit(try TrainingSet.load(data.root, resolution: 32))
        #expect(split.heldOut.count == HeldOutSplit.mostPerClass)
    }
}

@Suite final class CheckpointSelectionTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    func stateFolder() throws -> StateFolder {
        let path = NSTemporaryDirectory() + "synthd-selection-\(UUID().uuidString)"
        folders.append(path)
        return try StateFolder(path)
    }

    func options(holdOut: Bool = true) -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 8
        options.seed = 5
        options.baseChannels = 8
        options.checkpointSeconds = 1e9
        options.holdOut = holdOut
        return options
    }

    /// Classes a and b of 40 images each: enough that some are held out.
    func twoClasses() throws -> DatasetFolder {
        let data = try DatasetFolder()
        try data.addImages("a", count: 40, value: 20)
        try data.addImages("b", count: 40, value: 140)
        return data
    }

    func trainer(_ data: DatasetFolder, _ state: StateFolder, holdOut: Bool = true) throws -> Trainer {
        try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options(holdOut: holdOut))
    }

    /// Each checkpoint is scored, the best one's EMA generator is what generation loads (not the
    /// last checkpoint's), its file is the only best file, and G and D never see a held-out image.
    @Test func generationUsesTheBestScoredCheckpoint() throws {
        let data = try twoClasses()
        let state = try stateFolder()
        let trainer = try trainer(data, state)
        let split = try #require(trainer.split)
        #expect(split.heldOut.count > 0 && trainer.training.count == 80 - split.heldOut.count)
        for _ in 0..<4 { try trainer.train(.steps(2)) }

        let scores = state.readHeldOutScores()
        #expect(scores.map(\.step) == [2, 4, 6, 8] && scores.allSatisfy { $0.standardError > 0 })
        let best = try #require(trainer.record.best)
        // The rule replayed: the latest checkpoint within two standard errors of the lowest score before it.
        var chosen: HeldOutScore?
        for (i, score) in scores.enumerated()
            where CheckpointSelection.isChosen(score.measure, lowest: scores[..<i].map(\.distance).min()) { chosen = score }
        #expect(best.step == chosen?.step && best.distance == chosen?.distance)
        #expect(best.heldOutImages == split.heldOut.count)
        let record = try #require(try state.readRecord())
        #expect(record.best == best && record.generatorID == "step-\(best.step)" && record.checkpointID == "step-8")
        let files = try FileManager.default.contentsOfDirectory(atPath: state.path).filter { $0.hasPrefix("best-") }
        #expect(files == [best.file])
        // The picture: the chosen checkpoint's column marked green; the legend explains it.
        let picture = try PNG.read(path: state.heldOutCurvePath)
        // Points lie by step across the plot, which starts LineChart.left pixels in.
        let plotWidth = picture.width - LineChart.left - LineChart.right
        let column = LineChart.left + (best.step - scores[0].step) * (plotWidth - 1) / (scores.last!.step - scores[0].step)
        #expect((0..<picture.height).filter { picture[column, $0, 1] == 160 && picture[column, $0, 0] == 30 }.count > picture.height / 2)
        #expect(try String(contentsOfFile: state.path + "/classes.txt", encoding: .utf8).contains("heldout.png: each checkpoint's"))

        // What generation loads is the best file's generator, scored as it was.
        let (generator, loaded) = try SavedGenerator.load(state)
        #expect(loaded.best == best)
        let judge = try #require(try Judge.load(from: state))
        let rescored = try CheckpointSelection(split: split, judge: judge, seed: record.options.seed &+ 7000).score(generator, record: loaded)
        #expect(abs(rescored.distance - best.distance) < 1e-9 * max(1, abs(best.distance)))
        // --last-checkpoint: the last checkpoint's moving average, named as the last checkpoint.
        let last = Generator(record.configuration)
        try Checkpoint.read(from: state.checkpointPath).restore(
            last.parameters.map { NamedTensor("ema.\($0.name)", $0.value) } + last.buffers, path: state.checkpointPath)
        let (lastLoaded, lastRecord) = try SavedGenerator.load(state, lastCheckpoint: true)
        #expect(lastLoaded.parameters.map(\.value.values) == last.parameters.map(\.value.values))
        #expect(lastRecord.best == nil && lastRecord.generatorID == "step-8")
        if best.step != 8 {
            #expect(last.parameters.map(\.value.values) != generator.parameters.map(\.value.values))
        }
    }

    /// The free-space check before a job counts the best generator's file beside the
    /// checkpoint (both are written at each checkpoint): the bound holds the two files.
    @Test func theFreeSpaceBoundHoldsTheBestGeneratorToo() throws {
        let data = try twoClasses()
        let state = try stateFolder()
        let trainer = try trainer(data, state)
        try trainer.train(.steps(2))
        let best = try #require(trainer.record.best)
        func size(_ path: String) throws -> Int { try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) }
        let written = try size(state.checkpointPath) + size(state.bestGeneratorPath(best))
        let bound = trainer.checkpointBytes - (8 << 20)  // less the pictures' and records' room
        #expect(bound >= written && bound <= written + written / 50 + 128 << 10, "bound \(bound) for \(written) bytes written")
    }

    /// The rule: the first checkpoint is chosen; a later one when it is within two standard
    /// errors of the lowest score so far (noise), not when it is clearly worse (overfitting).
    @Test func aLaterCheckpointIsChosenUnlessClearlyWorse() {
        typealias Measure = HeldOutScore.Measure
        #expect(CheckpointSelection.isChosen(Measure(distance: 5, standardError: 0.1), lowest: nil))
        #expect(CheckpointSelection.isChosen(Measure(distance: 0.9, standardError: 0.1), lowest: 1))
        #expect(CheckpointSelection.isChosen(Measure(distance: 1.15, standardError: 0.1), lowest: 1), "within the noise: the later one")
        #expect(!CheckpointSelection.isChosen(Measure(distance: 1.25, standardError: 0.1), lowest: 1), "clearly worse")
    }

    /// A fine-tune (images added) starts a new best: the old one was scored on other images.
    @Test func aFineTuneStartsANewBest() throws {
        let data = try twoClasses()
        let state = try stateFolder()
        let first = try trainer(data, state)
        try first.train(.steps(2))
        try first.train(.steps(2))
        let oldBest = try #require(first.record.best)

        // The same data again (a daemon's next slice): the best stands and the scores go on.
        let resumed = try trainer(data, state)
        #expect(resumed.record.best == oldBest)

        #expect(FileManager.default.fileExists(atPath: state.heldOutCurvePath))
        try data.addImages("a", count: 30, value: 60, prefix: "more-")
        let tuned = try trainer(data, state)
        #expect(tuned.record.best == nil)
        #expect(state.readHeldOutScores().isEmpty && !FileManager.default.fileExists(atPath: state.heldOutCurvePath),
                "the old images' scores go with the old best")
        try tuned.train(.steps(2))
        let newBest = try #require(tuned.record.best)
        #expect(newBest.step == 6 && newBest.heldOut != oldBest.heldOut)
        #expect(state.readHeldOutScores().map(\.step) == [6])
        #expect(!FileManager.default.fileExists(atPath: state.bestGeneratorPath(oldBest)))
    }

    /// Without holding out (the option off, or an older model), training sees every image and
    /// generation uses the last checkpoint.
    @Test func withoutHoldingOutTheLastCheckpointIsUsed() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 40, value: 20)
        let state = try stateFolder()
        let trainer = try trainer(data, state, holdOut: false)
        #expect(trainer.split == nil && trainer.training.count == 40)
        try trainer.train(.steps(2))
        let record = try #require(try state.readRecord())
        #expect(record.best == nil && record.generatorID == "step-2")
        #expect(state.readHeldOutScores().isEmpty)

        // A model.json from before the option: it trained on every image, so none is held out.
        let json = try String(contentsOfFile: state.recordPath, encoding: .utf8).replacingOccurrences(of: "\"holdOut\"", with: "\"unknownKey\"")
        let old = try JSONDecoder().decode(ModelRecord.self, from: Data(json.utf8))
        #expect(old.options.holdOut == false)
        #expect(!TrainingOptions().holdOut, "off unless asked for (docs/quality.md)")
    }

    /// A best file that model.json names but that is gone is an error naming it, not a silent
    /// fallback to another generator under the best one's name.
    @Test func aMissingBestFileIsAClearError() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 40, value: 20)
        let state = try stateFolder()
        try trainer(data, state).train(.steps(2))
        let best = try #require(try state.readRecord()?.best)
        try FileManager.default.removeItem(atPath: state.bestGeneratorPath(best))
        #expect { try SavedGenerator.load(state) } throws: { error in
            "\(error)".contains(best.file) && "\(error)".contains("synthd train")
        }
    }
}
