@testable import Daemon
import Foundation
import GAN
import Imaging
import Testing

/// Which of a dataset's settings ask for a new model: those fixed when a model is made, set
/// by the dataset's own synthd.toml to other values than the model's.
@Suite struct ModelChangeTests {
    func record(resolution: Int = 32, norm: Bool = true, augmentation: Bool = true, batch: Int = 64) -> ModelRecord {
        var options = TrainingOptions()
        options.augmentation = augmentation
        options.batchSize = batch
        let configuration = ModelConfiguration(imageChannels: 1, classes: 2, resolution: resolution, classConditionalNorm: norm)
        return ModelRecord(configuration: configuration, classes: ["a", "b"], mode: .grey, imageWidth: 28, imageHeight: 28,
                           steps: 100, imagesAtLastRun: 10, options: options)
    }

    @Test func theDatasetsOwnChoicesCount() throws {
        let base = Configuration()
        let asked = try Configuration.parse("[training]\nresolution = 64\nconditioning = \"input\"\nbatch = 32\n", path: "t.toml", base: base)
        #expect(ModelChange.asked(by: asked, over: base, of: record()) == [
            "resolution 64 (the model's: 32)", "conditioning \"input\" (the model's: \"norm\")", "batch 32 (the model's: 64)",
        ])
        #expect(ModelChange.asked(by: asked, over: base, of: record(resolution: 64, norm: false, batch: 32)).isEmpty, "made so")
        #expect(ModelChange.asked(by: base, over: base, of: record()).isEmpty)
    }

    /// The mode-seeking weight asked by a dataset's synthd.toml, other than its model's: a new model.
    @Test func aModeSeekingWeightOfItsOwnIsANewModel() throws {
        let base = Configuration()
        let asked = try Configuration.parse("[training]\nmode_seeking = 0.25\n", path: "t.toml", base: base)
        #expect(asked.modeSeeking == .weight(0.25))
        var made = record()
        made.options.modeSeekingWeight = 0
        #expect(ModelChange.asked(by: asked, over: base, of: made) == ["mode_seeking 0.25 (the model's: 0.0)"])
        made.options.modeSeekingWeight = 0.25
        #expect(ModelChange.asked(by: asked, over: base, of: made).isEmpty, "made so")
        // "auto" follows the dataset's size: only a weight given counts.
        var daemon = base
        daemon.modeSeeking = .weight(0)
        let auto = try Configuration.parse("[training]\nmode_seeking = \"auto\"\n", path: "t.toml", base: daemon)
        #expect(ModelChange.asked(by: auto, over: daemon, of: made).isEmpty)
    }

    /// A daemon-wide default changed applies to new datasets: it trains no model again.
    @Test func theDaemonsDefaultsDoNot() throws {
        var base = Configuration()
        base.resolution = 64
        base.batch = 128
        #expect(ModelChange.asked(by: base, over: base, of: record()).isEmpty)
        let samePerDataset = try Configuration.parse("[training]\nresolution = 64\n", path: "t.toml", base: base)
        #expect(ModelChange.asked(by: samePerDataset, over: base, of: record()).isEmpty, "what the daemon says too")
    }

    /// Augmentation counts only as an explicit choice: "auto" follows the dataset's size.
    @Test func augmentationCountsWhenChosen() throws {
        let base = Configuration()
        let off = try Configuration.parse("[training]\naugmentation = \"off\"\n", path: "t.toml", base: base)
        #expect(ModelChange.asked(by: off, over: base, of: record()) == ["augmentation \"off\" (the model's: \"on\")"])
        #expect(ModelChange.asked(by: off, over: base, of: record(augmentation: false)).isEmpty)
        let on = try Configuration.parse("[training]\naugmentation = \"on\"\n", path: "t.toml", base: base)
        #expect(ModelChange.asked(by: on, over: base, of: record()).isEmpty, "auto made it on")
        #expect(ModelChange.asked(by: on, over: base, of: record(augmentation: false)) == ["augmentation \"on\" (the model's: \"off\")"])
    }
}
