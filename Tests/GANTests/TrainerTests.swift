import Engine
import Foundation
import GAN
import Imaging
import Testing

@Suite final class TrainerTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    func options() -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 4
        options.seed = 3
        options.checkpointSeconds = 1e9
        return options
    }

    func stateFolder() throws -> StateFolder {
        let path = NSTemporaryDirectory() + "synthd-state-\(UUID().uuidString)"
        folders.append(path)
        return try StateFolder(path)
    }

    /// A trainer of the dataset at `data` with its state in `state`: what each test starts from.
    func makeTrainer(on data: DatasetFolder, state: StateFolder, options: TrainingOptions) throws -> Trainer {
        try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options)
    }

    func parameters(_ trainer: Trainer) -> [[Float]] {
        (trainer.step.generator.stateTensors + trainer.step.discriminator.stateTensors).map(\.tensor.values)
            + trainer.ema.shadows.map(\.values)
    }

    /// The cap on passes over the data (`max_epochs`, `--max-epochs`): steps of that many
    /// passes at the batch size, rounded up, for a model without augmentation; none for one with
    /// DiffAugment or ADA, or for 0 passes. A time budget with the cap ends at whichever comes first.
    @Test func passesCapOnlyUnaugmentedModels() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 5, value: 40)
        try data.addImages("b", count: 5, value: 90)
        func trainer(_ configure: (inout TrainingOptions) -> Void) throws -> Trainer {
            var options = options()
            configure(&options)
            let state = try stateFolder()
            return try makeTrainer(on: data, state: state, options: options)
        }
        let plain = try trainer { $0.augmentation = false }
        #expect(plain.steps(forPasses: 3) == 8, "3 passes of 10 images at batch 4: 7.5 steps, rounded up")
        #expect(plain.steps(forPasses: 0) == nil)
        #expect(TrainingBudget.minutes(60, orPasses: 3, of: plain, done: 5) == .secondsOrSteps(seconds: 60, steps: 3))
        #expect(TrainingBudget.minutes(60, orPasses: 3, of: plain, done: 9) == .secondsOrSteps(seconds: 60, steps: 0))
        #expect(TrainingBudget.minutes(60, orPasses: 0, of: plain) == .seconds(60))
        let augmented = try trainer { $0.augmentation = true }
        #expect(augmented.steps(forPasses: 3) == nil && TrainingBudget.minutes(60, orPasses: 3, of: augmented) == .seconds(60))
        let adaptive = try trainer { $0.augmentation = false; $0.adaptiveAugmentation = true }
        #expect(adaptive.steps(forPasses: 3) == nil)
    }

    /// The mode-seeking term is a model's option: the step has it, and a model resumed with
    /// other options asked keeps the weight it was made with (model.json); each step's pair
    /// spread goes into losses.csv (and losses.png), a model without the term has none.
    @Test func modeSeekingIsAModelsOption() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let state = try stateFolder()
        var asked = options()
        asked.modeSeekingWeight = 0.5
        let made = try makeTrainer(on: data, state: state, options: asked)
        #expect(made.step.modeSeeking == ModeSeekingRegularization(weight: 0.5))
        try made.train(.steps(2))
        let resumed = try makeTrainer(on: data, state: state, options: options())
        #expect(resumed.step.modeSeeking == ModeSeekingRegularization(weight: 0.5) && resumed.record.options.modeSeekingWeight == 0.5)
        try resumed.train(.steps(1))
        let spreads = state.readHistory().map(\.pairSpread)
        #expect(spreads.count == 3 && spreads.allSatisfy { ($0 ?? 0) > 0 }, "\(spreads)")
        let plain = try stateFolder()
        let without = try makeTrainer(on: data, state: plain, options: options())
        #expect(without.step.modeSeeking == nil)
        try without.train(.steps(1))
        #expect(plain.readHistory().count == 1 && plain.readHistory().allSatisfy { $0.pairSpread == nil })
        let header = try String(contentsOfFile: plain.historyPath, encoding: .utf8).prefix { $0 != "\n" }
        #expect(header == "step,discriminator_loss,generator_loss")
    }

    /// With adaptive augmentation, its controller (p and the counts of the current interval)
    /// is part of what resumes: the run stops halfway through an interval.
    @Test(arguments: [false, true]) func interruptedAndResumedRunEqualsUninterruptedRun(adaptive: Bool) throws {
        var options = options()
        options.adaptiveAugmentation = adaptive
        // p starts at 0.5 (not 0) so that it moves whichever way D leans.
        func start(_ trainer: Trainer) {
            if adaptive { trainer.step.augmentation?.adaptive = AdaptiveAugmentation(probability: 0.5) }
        }
        let data = try DatasetFolder()
        try data.addImages("a", count: 5, value: 40)
        try data.addImages("b", count: 3, value: 90)

        let straight = try stateFolder()
        let full = try makeTrainer(on: data, state: straight, options: options)
        start(full)
        try full.train(.steps(5))

        let interrupted = try stateFolder()
        let first = try makeTrainer(on: data, state: interrupted, options: options)
        start(first)
        var calls = 0
        try first.train(.steps(5), shouldStop: { calls += 1; return calls > 2 })  // a "signal" after 2 steps
        #expect(first.record.steps == 2)
        let second = try makeTrainer(on: data, state: interrupted, options: options)
        #expect(second.record.steps == 2)
        try second.train(.steps(3))

        #expect(second.record.steps == 5)
        #expect(parameters(second) == parameters(full), "resumed parameters differ from the uninterrupted run")
        #expect(second.step.augmentation?.adaptive == full.step.augmentation?.adaptive)
        if adaptive {
            let p = try #require(full.step.augmentation?.adaptive?.probability)
            #expect(p != 0.5, "p moved after the first interval")
            #expect(interrupted.readHistory().map(\.augmentationProbability) == straight.readHistory().map(\.augmentationProbability))
            #expect(interrupted.readHistory().last?.augmentationProbability == p, "losses.csv carries p")
        } else {
            #expect(interrupted.readHistory().allSatisfy { $0.augmentationProbability == nil })
        }
        for file in ["model.json", "checkpoint.ckpt", "losses.csv", "samples.png", "losses.png", "classes.txt"] {
            #expect(FileManager.default.fileExists(atPath: interrupted.path + "/" + file), "missing \(file)")
        }
        #expect(interrupted.readHistory().count == 5)
        let grid = try PNG.read(path: interrupted.samplesPath)
        #expect(grid.height == ImageGrid.titleBand + 2 * 28 + 3 * 2, "under the titles, one 28-pixel row per class with 2-pixel gaps")
        // Each row starts with the class's first real images (a's 0.png is 40 in its centre,
        // b's 90): the labels' margin, then the tiles.
        let x = BitmapFont.width(of: "a") + 8 + 2 + 14, y = ImageGrid.titleBand + 2 + 14
        #expect(grid[x, y, 0] == 40 && grid[x, y + 30, 0] == 90 && grid[x + 30, y, 0] == 41, "the real images, first two a class")
    }

    /// More than 16 classes: every class in the samples picture, in blocks of 16 side by side,
    /// and classes.txt says where each one is (the picture showed the first 16 only).
    @Test func aModelOfManyClassesShowsThemAllInBlocks() throws {
        let data = try DatasetFolder()
        for k in 0..<20 { try data.addImages(String(format: "c%02d", k), count: 1, value: UInt8(10 * k)) }
        let state = try stateFolder()
        let trainer = try makeTrainer(on: data, state: state, options: options())
        try trainer.train(.steps(1))
        let layout = SampleLayout(classes: 20)
        #expect(layout == SampleLayout(classes: 20) && layout.columns == 8 && layout.blocks == 2)
        let grid = try PNG.read(path: state.samplesPath)
        let tile = Image(width: 28, height: 28, mode: .grey)
        let real = ImageGrid.compose(Array(repeating: tile, count: 16 * SampleLayout.realColumns), columns: SampleLayout.realColumns,
                                     rowLabels: (0..<16).map { String(format: "c%02d", $0) })
        let block = ImageGrid.titled([("real", real, 0), ("synthetic", ImageGrid.compose(Array(repeating: tile, count: 16 * 8), columns: 8), 0)])
        #expect(grid.height == block.height && grid.width == 2 * block.width + 12, "two blocks side by side")
        let legend = try String(contentsOfFile: state.classesPath, encoding: .utf8)
        #expect(legend.contains("band 1, block 2, row 4: c19") && legend.contains("band 1, block 1, row 1: c00"), "\(legend)")
        #expect(SampleLayout(classes: 200).columns == 5 && SampleLayout(classes: 1000).shown == 256)
        #expect(SampleLayout(classes: 1000).columns == 4 && SampleLayout(classes: 1000).place(ofClass: 255) == "band 4, block 4, row 16")
        #expect(SampleLayout(classes: 8).place(ofClass: 2) == "row 3" && SampleLayout(classes: 300).place(ofClass: 256) == nil)
    }

    /// A periodic checkpoint that fails with an error the caller accepts (the daemon: a full
    /// disk) is skipped and tried again at the next interval, and training goes on; the last
    /// checkpoint of a run must be written. Other errors end the run as before.
    @Test func trainingGoesOnPastACheckpointTheCallerLetsFail() throws {
        struct Full: Error {}
        struct Other: Error {}
        let data = try DatasetFolder()
        try data.addImages("a", count: 2, value: 40)
        try data.addImages("b", count: 2, value: 200)
        let state = try stateFolder()
        var every = options()
        every.checkpointSeconds = 0
        let trainer = try makeTrainer(on: data, state: state, options: every)
        nonisolated(unsafe) var refusals = 3, skipped: [Int] = []
        trainer.beforeWrite = {
            guard refusals > 0 else { return }
            refusals -= 1
            throw Full()
        }
        trainer.mayTrainPastFailedCheckpoint = { $0 is Full }
        trainer.skippedCheckpoint = { _, steps in skipped.append(steps) }
        #expect(try trainer.train(.steps(5)) == 5)
        #expect(skipped == [1, 2, 3], "the first three checkpoints, each after its step")
        #expect(try state.readRecord()?.steps == 5)

        // The run's last checkpoint is not skipped.
        refusals = 10
        #expect(throws: Full.self) { try trainer.train(.steps(1)) }
        #expect(try state.readRecord()?.steps == 5)
        // Nor is an error the caller does not accept.
        refusals = 0
        trainer.beforeWrite = { throw Other() }
        #expect(throws: Other.self) { try trainer.train(.steps(2)) }
        #expect(skipped == [1, 2, 3, 6])
    }

    /// A run's last checkpoint that fails is written again for as long as the caller says
    /// (the daemon waits for space meanwhile), with the same steps; once the caller says no,
    /// the error ends the run and the checkpoint before stays.
    @Test func theLastCheckpointIsWrittenAgainWhileTheCallerAsks() throws {
        struct Full: Error {}
        let data = try DatasetFolder()
        try data.addImages("a", count: 2, value: 40)
        try data.addImages("b", count: 2, value: 200)
        let state = try stateFolder()
        let trainer = try makeTrainer(on: data, state: state, options: options())
        nonisolated(unsafe) var refusals = 2, asked: [String] = []
        trainer.beforeWrite = {
            guard refusals > 0 else { return }
            refusals -= 1
            throw Full()
        }
        trainer.mayRetryLastCheckpoint = { error in
            asked.append("\(type(of: error)) at step \(trainer.record.steps)")
            return asked.count < 5
        }
        #expect(try trainer.train(.steps(3)) == 3)
        #expect(asked == ["Full at step 3", "Full at step 3"], "asked once per failure, then written")
        #expect(try state.readRecord()?.steps == 3)

        refusals = 10
        #expect(throws: Full.self) { try trainer.train(.steps(2)) }
        #expect(asked.count == 5, "the caller's no ends the run")
        #expect(try state.readRecord()?.steps == 3)
    }

    /// A resumed model keeps its own settings: D's learning rate, spectral normalisation and
    /// width come back from model.json whatever the second run asks for.
    @Test func discriminatorSettingsAreUsedAndKeptOnResume() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let state = try stateFolder()
        var chosen = options()
        chosen.learningRate = 1e-4
        chosen.discriminatorLearningRate = 4e-4
        chosen.discriminatorNormalization = .spectral
        chosen.baseChannels = 8
        let first = try makeTrainer(on: data, state: state, options: chosen)
        #expect(first.step.generatorOptimizer.learningRate == 1e-4 && first.step.discriminatorOptimizer.learningRate == 4e-4)
        #expect(first.step.discriminator.norms.isEmpty && first.step.discriminator.spectralNorms.count == 5)
        #expect(first.step.generator.configuration.baseChannels == 8 && first.step.discriminator.configuration.baseChannels == 8)
        #expect(first.step.generator.upsamplers[0].outChannels == 16, "the 8x8 stage of a base-8 G has 2 x 8 channels")
        try first.train(.steps(2))

        let resumed = try makeTrainer(on: data, state: state, options: options())
        #expect(resumed.step.discriminatorOptimizer.learningRate == 4e-4)
        #expect(resumed.step.discriminator.configuration.discriminatorNormalization == .spectral)
        #expect(resumed.step.generator.configuration.baseChannels == 8)
        try resumed.train(.steps(1))
        #expect(resumed.record.steps == 3)
    }

    /// A model's losses.csv stays within `LossPoint.historyLimit` rows however long it trains
    /// on: a resumed model's long history (as a GPU's million steps leave) is thinned at its
    /// next checkpoint, its newest steps kept as they were.
    @Test func theLossHistoryStaysWithinItsLimit() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        var small = options()
        small.baseChannels = 8
        let state = try stateFolder()
        try makeTrainer(on: data, state: state, options: small).train(.steps(1))
        let long = (1...50_000).map { LossPoint(step: $0 - 50_000 + 1, discriminator: 1, generator: 2) }  // its last at step 1
        try state.writeHistory(long)
        let resumed = try makeTrainer(on: data, state: state, options: small)
        try resumed.train(.steps(2))
        let written = state.readHistory()
        #expect(written.count <= LossPoint.historyLimit && written.count > LossPoint.historyLimit / 2, "\(written.count)")
        #expect(written.suffix(3).map(\.step) == [1, 2, 3] && Array(written.dropLast(2).suffix(100)) == Array(long.suffix(100)))
    }

    @Test func fineTunesAfterImagesAndAClassAreAdded() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let state = try stateFolder()
        let trainer = try makeTrainer(on: data, state: state, options: options())
        try trainer.train(.steps(2))

        // More images in an old class: the same model continues on the larger set.
        try data.addImages("a", count: 6, value: 45, prefix: "more-")
        let more = try makeTrainer(on: data, state: state, options: options())
        #expect(more.set.count == 14 && more.record.steps == 2)
        try more.train(.steps(2))
        #expect(more.record.steps == 4 && more.record.imagesAtLastRun == 14)
        let savedGeneratorRows = more.step.generator.embedding.weight.value.values
        let savedDiscriminatorRows = more.step.discriminator.head.embedding.weight.value.values

        // A new class sorting first by name: it still gets the next index, 2.
        try data.addImages("0-new", count: 4, value: 200)
        let grown = try makeTrainer(on: data, state: state, options: options())
        #expect(grown.set.classMap.names == ["a", "b", "0-new"])
        #expect(grown.step.generator.embedding.weight.shape == [3, 128])
        #expect(grown.step.discriminator.head.embedding.weight.shape == [3, 4096])
        // The old classes' rows come back from the checkpoint; the new row is freshly initialised.
        #expect(Array(grown.step.generator.embedding.weight.value.values.prefix(2 * 128)) == savedGeneratorRows)
        #expect(Array(grown.step.discriminator.head.embedding.weight.value.values.prefix(2 * 4096)) == savedDiscriminatorRows)
        #expect(grown.step.generator.embedding.weight.value.values.suffix(128).contains { $0 != 0 })
        #expect(grown.record.steps == 4)
        try grown.train(.steps(2))
        #expect(grown.record.steps == 6 && grown.record.classes == ["a", "b", "0-new"])

        // Each change of the data is kept with the model, once, and marked on losses.png; a
        // run on the same data adds nothing.
        #expect(try state.readRecord()?.dataChanges == [2, 4])
        let again = try makeTrainer(on: data, state: state, options: options())
        try again.train(.steps(1))
        #expect(try state.readRecord()?.dataChanges == [2, 4])
        let curve = try PNG.read(path: state.lossCurvePath)
        let orange = (0..<curve.width).filter { x in (0..<curve.height).contains { curve[x, $0, 0] == 240 && curve[x, $0, 1] == 140 } }
        #expect(orange.count >= 6, "two 3-pixel marks (and the legend's swatch): \(orange)")
    }

    /// With class-conditional BatchNorm, a new class also adds a row to each per-class scale and
    /// shift table (starting as the identity); the old rows come back from the checkpoint.
    @Test func classConditionalNormTablesGrowWithANewClass() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let state = try stateFolder()
        var conditioned = options()
        conditioned.classConditionalNorm = true
        let trainer = try makeTrainer(on: data, state: state, options: conditioned)
        try trainer.train(.steps(2))
        let saved = trainer.step.generator.classNorms.map { ($0.scale.value.values, $0.shift.value.values) }
        #expect(saved.allSatisfy { scale, _ in scale.contains { $0 != 1 } }, "two steps of Adam moved no scale")

        try data.addImages("c", count: 4, value: 200)
        var plain = options()
        plain.classConditionalNorm = false
        let grown = try makeTrainer(on: data, state: state, options: plain)
        #expect(grown.record.configuration.classConditionalNorm, "the saved model's conditioning, not the options'")
        for (norm, (scale, shift)) in zip(grown.step.generator.classNorms, saved) {
            let channels = norm.channels
            #expect(norm.scale.shape == [3, channels])
            #expect(Array(norm.scale.value.values.prefix(2 * channels)) == scale)
            #expect(Array(norm.shift.value.values.prefix(2 * channels)) == shift)
            #expect(norm.scale.value.values.suffix(channels).allSatisfy { $0 == 1 })
            #expect(norm.shift.value.values.suffix(channels).allSatisfy { $0 == 0 })
        }
        try grown.train(.steps(1))
        let (generator, record) = try SavedGenerator.load(state)
        #expect(record.classes == ["a", "b", "c"] && generator.classNorms.count == 3)
    }

    @Test func aSingleClassDatasetTrainsAnUnconditionalModel() throws {
        let data = try DatasetFolder()
        try data.addImages("only", count: 6, value: 70)
        let state = try stateFolder()
        let trainer = try makeTrainer(on: data, state: state, options: options())
        try trainer.train(.steps(3))
        #expect(trainer.record.classes == ["only"] && trainer.step.generator.embedding.weight.shape == [1, 128])
        let (generator, record) = try SavedGenerator.load(state)
        let out = NSTemporaryDirectory() + "synthd-single-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(try SyntheticWriter(generator: generator, record: record, root: out).write(counts: [5], seed: 1).written == 5)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/only").count == 5)
    }

    @Test func augmentationIsForSmallDatasetsUnlessChosen() {
        #expect(AugmentationPolicy.auto.enabled(forImages: 500))
        #expect(!AugmentationPolicy.auto.enabled(forImages: 60_000))
        #expect(AugmentationPolicy.on.enabled(forImages: 60_000) && !AugmentationPolicy.off.enabled(forImages: 500))
        var options = TrainingOptions()
        AugmentationPolicy.adaptive.configure(&options, forImages: 60_000)
        #expect(options.augmentation && options.adaptiveAugmentation, "adaptive augments at any size, as D calls for")
        AugmentationPolicy.on.configure(&options, forImages: 60_000)
        #expect(options.augmentation && !options.adaptiveAugmentation)
    }
}
