import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

/// The judge of generation's class check: a classifier of the real images, kept in the state
/// folder and trained again when the data it knows changed.
@Suite final class JudgeTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    func stateFolder() throws -> StateFolder {
        let path = NSTemporaryDirectory() + "synthd-judge-\(UUID().uuidString)"
        folders.append(path)
        return try StateFolder(path)
    }

    /// Two classes anyone can tell apart: a dark square and a bright one.
    func darkAndBright() throws -> DatasetFolder {
        let data = try DatasetFolder()
        try data.addImages("dark", count: 12, value: 30)
        try data.addImages("bright", count: 12, value: 200)
        return data
    }

    /// A 28x28 image like the dataset's, as generation would write it.
    func square(_ value: UInt8) -> Image {
        var image = Image(width: 28, height: 28, mode: .grey, fill: 0)
        for y in 8..<20 { for x in 8..<20 { image[x, y, 0] = value } }
        return image
    }

    @Test func acceptsSamplesOfTheirClassAndRejectsOthers() throws {
        let data = try darkAndBright()
        let set = try TrainingSet.load(data.root, resolution: 32)
        let judge = try #require(Judge.train(on: set, seed: 1))
        #expect(judge.classes == ["bright", "dark"] && judge.imagesPerClass == [12, 12])
        // Shades none of the real images has (30...41 and 200...211): a real image again would
        // be rejected as a near-copy (`aNearCopyOfARealImageIsRejected`).
        let images = [square(20), square(225), square(20), square(225)]
        #expect(judge.accepts(images, labels: [1, 0, 0, 1]) == [true, true, false, false])
        #expect(judge.nearCopiesDropped == 0)
        #expect(judge.isCurrent(for: set))
    }

    /// A minimum confidence keeps only the samples the judge is that sure of: a subset of the
    /// argmax's verdicts, the ambiguous greys (between the two classes) dropped first; copies
    /// keep it.
    @Test func aMinimumConfidenceDropsTheAmbiguousSamples() throws {
        let data = try darkAndBright()
        let judge = try #require(Judge.train(on: TrainingSet.load(data.root, resolution: 32), seed: 1))
        let images = (0..<200).map { square(UInt8(20 + $0)) }
        let labels = (0..<200).map { Int32($0 < 100 ? 1 : 0) }   // dark for the darker half
        let argmax = judge.accepts(images, labels: labels)
        judge.minimumConfidence = 0.99
        let sure = judge.accepts(images, labels: labels)
        #expect(zip(sure, argmax).allSatisfy { !$0 || $1 }, "only samples the argmax accepts")
        #expect(sure.filter { $0 }.count < argmax.filter { $0 }.count, "some dropped")
        #expect(sure[0] && sure[199], "the clear ones stay")
        #expect(judge.copy().accepts(images, labels: labels) == sure)
    }

    /// Sampling workers each judge with a copy: same verdicts, and a copy at work on another
    /// thread does not disturb the original (each has its own layers).
    @Test func copiesJudgeAlikeAtTheSameTime() throws {
        let data = try darkAndBright()
        let set = try TrainingSet.load(data.root, resolution: 32)
        let judge = try #require(Judge.train(on: set, seed: 1))
        let images = (0..<300).map { square(UInt8(20 + $0 % 200)) }
        let labels = (0..<300).map { Int32($0 % 2) }
        let expected = judge.accepts(images, labels: labels)
        #expect(expected.contains(true) && expected.contains(false))
        let copy = judge.copy()
        var verdicts = [[Bool]](repeating: [], count: 8)
        verdicts.withUnsafeMutableBufferPointer { buffer in
            let slots = UncheckedSendable(buffer)
            Parallel.forEachTask(8) { worker, task in   // one judge per worker, as Sampler does
                slots.value[task] = (worker == 0 ? judge : copy).accepts(images, labels: labels)
            }
        }
        #expect(verdicts.allSatisfy { $0 == expected })
    }

    /// Small datasets' judges train longer, on shifted images (docs/quality.md, "A judge that
    /// knows more than the classifier"): about 768 passes within 600...3,000 steps; large ones
    /// keep 600 steps at least and no augmentation.
    @Test func smallDatasetsGetALongerTrainedJudgeOfShiftedImages() throws {
        let small = Judge.Recipe(trainingImages: 500)
        #expect(small.minimumSteps == 3_000 && small.augmentation == ClassifierAugmentation(maxShift: 2) && small.width == Judge.width)
        #expect(Judge.Recipe(trainingImages: 24).minimumSteps == 768, "one batch of 24 a pass")
        #expect(Judge.Recipe(trainingImages: 200).minimumSteps == 1_200)
        #expect(Judge.Recipe(trainingImages: 9_999).minimumSteps == 3_000)
        #expect(Judge.Recipe(trainingImages: 10_000) == Judge.Recipe(minimumSteps: 600, augmentation: nil))

        // And a judge trains as its recipe says: one progress report a step.
        let data = try darkAndBright()
        let set = try TrainingSet.load(data.root, resolution: 32)
        var steps = 0
        _ = try #require(Judge.train(on: set, seed: 1, progress: { _ in steps += 1 }))
        #expect(steps == 768)
        steps = 0
        _ = try #require(Judge.train(on: set, seed: 1, recipe: Judge.Recipe(minimumSteps: 650, augmentation: nil),
                                     progress: { _ in steps += 1 }))
        #expect(steps == 650)

        // A judge saved before recipes were kept is out of date only where the recipe changed.
        let classifier = Classifier(channels: 1, classes: 2, resolution: 32, width: Judge.width)
        let old = { (counts: [Int]) in Judge(classifier: classifier, classes: ["a", "b"], imagesPerClass: counts, channels: 1, resolution: 32) }
        #expect(old([12, 12]).predatesItsRecipe && old([4_999, 5_000]).predatesItsRecipe)
        #expect(!old([5_000, 5_000]).predatesItsRecipe)
    }

    @Test func savedJudgeGivesTheSameVerdictsAndKnowsItsData() throws {
        let data = try darkAndBright()
        let set = try TrainingSet.load(data.root, resolution: 32)
        let state = try stateFolder()
        #expect(try Judge.load(from: state) == nil)
        let judge = try #require(Judge.train(on: set, seed: 2))
        try judge.save(in: state)
        let loaded = try #require(try Judge.load(from: state))
        let images = (0..<16).map { square(UInt8(40 + $0 * 10)) }
        let labels = (0..<16).map { Int32($0 % 2) }
        #expect(loaded.accepts(images, labels: labels) == judge.accepts(images, labels: labels))
        #expect(loaded.classes == judge.classes && loaded.imagesPerClass == judge.imagesPerClass)

        try data.addImages("dark", count: 1, value: 50, prefix: "extra")
        #expect(!loaded.isCurrent(for: try TrainingSet.load(data.root, resolution: 32)), "a judge of 24 images is current for 25")
    }

    @Test func aBrokenJudgeFileIsReportedWithItsPath() throws {
        let state = try stateFolder()
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: Judge.path(in: state)))
        #expect { _ = try Judge.load(from: state) } throws: { String(describing: $0).contains(Judge.path(in: state)) }
    }

    /// `Judge.current` trains and saves a judge only when there is none for the model's
    /// classes (or its file is damaged), and gives none for a dataset whose classes the model
    /// does not know yet.
    @Test func currentTrainsOnceAndOnlyForTheModelsClasses() throws {
        let data = try darkAndBright()
        let state = try stateFolder()
        var options = TrainingOptions()
        options.batchSize = 4
        let trainer = try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options)
        try trainer.train(.steps(1))
        var loads = 0
        let load = { loads += 1; return try TrainingSet.load(data.root, resolution: 32) }
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) != nil)
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) != nil)
        #expect(loads == 1, "trained \(loads) times")

        // One saved by an older synthd (without its real images' spread and features) is
        // trained again, once.
        let saved = try Checkpoint.read(from: Judge.path(in: state))
        var old = Checkpoint()
        for entry in saved.entries where !entry.name.hasPrefix("judge.") { old.add(entry.name, Tensor(shape: entry.shape, values: entry.values)) }
        old.metadata = saved.metadata.filter { !["judge.spread", "judge.real_counts", "judge.copy_thresholds"].contains($0.key) }
        try old.write(to: Judge.path(in: state))
        #expect(try Judge.load(from: state)?.knowsItsRealImages == false)
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load)?.knowsItsRealImages == true)
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) != nil)
        #expect(loads == 2, "trained \(loads) times")

        // A small dataset's judge saved before recipes were kept (trained 600 steps without
        // shifts) is trained again, once, as its recipe says.
        let recent = try Checkpoint.read(from: Judge.path(in: state))
        var beforeRecipes = Checkpoint()
        for entry in recent.entries { beforeRecipes.add(entry.name, Tensor(shape: entry.shape, values: entry.values)) }
        beforeRecipes.metadata = recent.metadata.filter { !["judge.minimum_steps", "judge.shift"].contains($0.key) }
        try beforeRecipes.write(to: Judge.path(in: state))
        #expect(try Judge.load(from: state)?.predatesItsRecipe == true)
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load)?.recipe == Judge.Recipe(trainingImages: 24))
        #expect(try Judge.load(from: state)?.recipe == Judge.Recipe(trainingImages: 24), "saved with its recipe")
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) != nil)
        #expect(loads == 3, "trained \(loads) times")

        // A damaged judge file is made again, not an error.
        try Data("damaged".utf8).write(to: URL(fileURLWithPath: Judge.path(in: state)))
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) != nil)
        #expect(loads == 4 && (try? Judge.load(from: state)) != nil)

        // One that cannot be read at all (here a folder in its place: root reads any file) is
        // an error naming it, and no judge is trained for nothing.
        try FileManager.default.removeItem(atPath: Judge.path(in: state))
        try FileManager.default.createDirectory(atPath: Judge.path(in: state), withIntermediateDirectories: false)
        #expect { _ = try Judge.current(in: state, for: trainer.record, loadSet: load) } throws: {
            String(describing: $0).contains(Judge.path(in: state)) && String(describing: $0).contains("failed to")
        }
        #expect(loads == 4, "trained a judge it could not save")

        try FileManager.default.removeItem(atPath: Judge.path(in: state))
        try data.addImages("grey", count: 3, value: 120)
        #expect(try Judge.current(in: state, for: trainer.record, loadSet: load) == nil)
        #expect(!FileManager.default.fileExists(atPath: Judge.path(in: state)))
    }

    /// The trainer makes the judge when training is done, and again only when the data changed.
    @Test func trainerRefreshesTheJudgeWhenTheDataChanged() throws {
        let data = try darkAndBright()
        let state = try stateFolder()
        var options = TrainingOptions()
        options.batchSize = 4
        func trainer() throws -> Trainer {
            try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options)
        }
        let first = try trainer()
        try first.train(.steps(1))
        #expect(try first.refreshJudge() == .trained)
        #expect(try first.refreshJudge() == .upToDate)
        #expect(try first.refreshJudge(shouldStop: { true }) == .upToDate)

        try data.addImages("grey", count: 3, value: 120)
        let grown = try trainer()
        try grown.train(.steps(1))
        #expect(try grown.refreshJudge(shouldStop: { true }) == .stopped)
        #expect(try Judge.load(from: state)?.classes.count == 2, "a stopped refresh replaced the judge")
        #expect(try grown.refreshJudge() == .trained)
        #expect(try Judge.load(from: state)?.classes == ["bright", "dark", "grey"])
    }
}

extension JudgeTests {
    /// A judge of 20 dark and 20 bright squares (classes "bright", "dark").
    func twentyDarkAndTwentyBright() throws -> Judge {
        let data = try DatasetFolder()
        try data.addImages("dark", count: 20, value: 30)
        try data.addImages("bright", count: 20, value: 160)
        return try #require(Judge.train(on: TrainingSet.load(data.root, resolution: 32), seed: 2))
    }

    /// Image `i` of a class of shade `value`, as `DatasetFolder.addImages` draws it; `extra`
    /// rows of a bright bar no real image has.
    func image(_ value: UInt8, _ i: Int, _ extra: Int = 0) -> Image {
        var image = Image(width: 28, height: 28, mode: .grey, fill: 0)
        for y in 8..<20 { for x in 8..<20 { image[x, y, 0] = value &+ UInt8(i) } }
        for y in 3..<(3 + extra) { for x in 3..<25 { image[x, y, 0] = 255 } }
        return image
    }

    /// The judge keeps each class's real spread in its features; a set of images' diversity is
    /// their spread over it: the real images again score 1, one image repeated scores 0.
    @Test func diversityIsTheSpreadOfSamplesOverTheRealImages() throws {
        let judge = try twentyDarkAndTwentyBright()
        let spread = try #require(judge.realSpread)
        #expect(spread.count == 2 && spread.allSatisfy { $0 > 0 }, "\(spread)")
        let state = try stateFolder()
        try judge.save(in: state)
        #expect(try Judge.load(from: state)?.realSpread == spread)

        #expect(judge.classes == ["bright", "dark"])
        let labels = (0..<40).map { Int32($0 / 20) }
        let real = (0..<20).map { image(160, $0) } + (0..<20).map { image(30, $0) }
        let again = judge.diversity(features: judge.features(real), labels: labels)
        #expect(again.allSatisfy { $0.map { abs($0 - 1) < 0.05 } == true }, "\(again)")
        let copies = (0..<20).map { _ in image(160, 7) } + (0..<20).map { image(30, $0) }
        let collapsed = judge.diversity(features: judge.features(copies), labels: labels)
        #expect(collapsed[0].map { $0 < 1e-4 } == true && collapsed[1].map { abs($0 - 1) < 0.05 } == true, "\(collapsed)")
        #expect(judge.diversity(features: judge.features(Array(real.prefix(10))), labels: Array(labels.prefix(10))) == [nil, nil],
                "too few images to measure")
    }
}

extension JudgeTests {
    /// The judge rejects a copy of one of its real images, when asked to (the default), and
    /// says how many; the features and thresholds survive a save.
    @Test func aNearCopyOfARealImageIsRejected() throws {
        let judge = try twentyDarkAndTwentyBright()
        let nearCopies = try #require(judge.nearCopies)
        #expect(nearCopies.thresholds.allSatisfy { ($0 ?? 0) > 0 })
        // bright is class 0. A real image again (a copy), and one with a bar across it.
        let copy = image(160, 4), changed = image(160, 4, 4)
        #expect(judge.accepts([copy, changed], labels: [0, 0]) == [false, true])
        #expect(judge.nearCopiesDropped == 1)
        judge.dropsNearCopies = false
        #expect(judge.accepts([copy], labels: [0]) == [true])

        let state = try stateFolder()
        try judge.save(in: state)
        let loaded = try #require(try Judge.load(from: state))
        #expect(loaded.nearCopies?.thresholds == nearCopies.thresholds)
        #expect(loaded.accepts([copy, changed], labels: [0, 0]) == [false, true])
    }
}
