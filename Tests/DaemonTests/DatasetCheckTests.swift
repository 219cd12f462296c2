@testable import Daemon
import Foundation
import GAN
import Imaging
import Testing

/// `synthd check`'s report: what a training job would read, and what the first generation
/// would write, from the same rules (`GenerationPlan`) and limits the daemon uses.
@Suite final class DatasetCheckTests {
    let root = NSTemporaryDirectory() + "synthd-check-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func addImages(_ folder: String, count: Int, width: Int = 28, height: Int = 28) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        for i in 0..<count {
            var image = Image(width: width, height: height, mode: .grey)
            for y in 4..<(height - 4) { for x in 4..<(width - 4) { image[x, y, 0] = UInt8(60 + 5 * i) } }
            try PNG.write(image, to: "\(root)/\(folder)/\(i).png", durable: false)
        }
    }

    /// An imbalanced dataset with a broken file: each class's images and the synthetic images
    /// the daemon's balance rule gives it (capped at half its real count), the file and why,
    /// and the model a first training makes.
    @Test func classesAndWhatTheFirstGenerationWrites() throws {
        try addImages("boot", count: 8)
        try addImages("sandal", count: 2)
        try Data([0x89, 0x50, 0x4E, 0x47, 1]).write(to: URL(fileURLWithPath: root + "/sandal/broken.png"))
        let check = try DatasetCheck.of(root, settings: Configuration())
        #expect(check.classes == [.init(name: "boot", images: 8, synthetic: 4), .init(name: "sandal", images: 2, synthetic: 1)])
        let plan = GenerationPlan(settings: Configuration(), real: [8, 2])
        #expect(check.classes.map(\.synthetic) == plan.counts && check.synthetic == 5 && check.generationRule == plan.rule)
        #expect(check.images == 10 && !check.colour && check.writtenWidth == 28 && check.writtenHeight == 28)
        #expect(check.rejected.map(\.path) == [root + "/sandal/broken.png"] && check.generationRefused == nil)
        #expect(check.model.hasPrefix("a new 32x32 class-conditional GAN, batch 64, DiffAugment"))
        let text = check.summary()
        #expect(text.contains("\n  boot    8       4\n  sandal  2       1\n"), "\(text)")
        #expect(text.contains("  rejected 1 file:\n    \(root)/sandal/broken.png: "), "\(text)")
        #expect(text.contains("outputs: 5 synthetic images at 28x28 (balance: every class topped up to the largest class (8)"), "\(text)")
        #expect(!text.contains("write no synthetic images"), "\(text)")
    }

    /// A dataset the settings give nothing to write (one image, capped at half an image) is
    /// said to be one: new to the daemon, it gets no model; with the daemon's model, that
    /// model is trained on for no output yet.
    @Test func settingsThatWriteNothingAreAWarning() throws {
        try addImages("only", count: 1)
        let check = try DatasetCheck.of(root, settings: Configuration())
        #expect(check.synthetic == 0 && check.trainsNoModel)
        #expect(check.model == "none: these settings write no synthetic images, and the daemon trains a model only when they ask for some")
        #expect(check.summary().contains("\n  warning: these settings write no synthetic images: the daemon trains no model for it, and "
                                         + "writes nothing, until its images or settings ([generation] enlarge, balance_to, "
                                         + "max_synthetic_per_real, policy) ask for some"), "\(check.summary())")
        let record = ModelRecord(configuration: ModelConfiguration(classes: 1, resolution: 32), classes: ["only"], mode: .grey,
                                 imageWidth: 28, imageHeight: 28, steps: 500, imagesAtLastRun: 2, options: TrainingOptions())
        let trained = try DatasetCheck.of(root, settings: Configuration(), existing: .init(record: record, changes: [], trainedOnTheseFiles: false))
        #expect(trained.synthetic == 0 && !trained.trainsNoModel && trained.model.hasPrefix("the daemon's 32x32 model of 500 steps: a fine-tuning"))
        #expect(trained.summary().contains("\n  warning: these settings write no synthetic images: the daemon would train its model and "
                                           + "publish empty class folders until images or settings ([generation] enlarge, "
                                           + "max_synthetic_per_real, policy) change"), "\(trained.summary())")
        try addImages("only", count: 2)  // two images: one synthetic, so a model
        let two = try DatasetCheck.of(root, settings: Configuration())
        #expect(two.synthetic == 1 && !two.trainsNoModel && two.model.hasPrefix("a new 32x32"))
    }

    /// The dataset's own synthd.toml over the daemon's configuration, as a job reads them; a
    /// generation over the daemon's cap is said; large images' outputs at the capped size.
    @Test func theDatasetsSettingsAndTheDaemonsLimitsApply() throws {
        try addImages("wide", count: 3, width: 600, height: 400)
        try "[generation]\npolicy = \"per-class\"\nper_class = 700\n".write(toFile: root + "/synthd.toml", atomically: true, encoding: .utf8)
        var daemon = Configuration()
        daemon.maxImagesPerDataset = 500
        let check = try DatasetCheck.of(root, settings: try Configuration.forDataset(at: root, base: daemon))
        #expect(check.classes == [.init(name: "wide", images: 3, synthetic: 700)])
        #expect(check.generationRefused == "700 images are over the daemon's cap of 500 a generation (max_images_per_dataset)")
        #expect(check.writtenWidth == 384 && check.writtenHeight == 256, "max_short_side 256")
        #expect(check.summary().contains("warning: the first generation would be refused: 700 images are over"))
        // Files over the daemon's limits are left out as a job leaves them out.
        daemon.maxImageMegapixels = 1
        var small = daemon
        small.maxFileMegabytes = 1
        try addImages("tall", count: 1, width: 300, height: 4000)
        let limited = try DatasetCheck.of(root, settings: small)
        #expect(limited.rejected.count == 1 && limited.rejected[0].path == root + "/tall/0.png", "\(limited.rejected)")
    }

    /// With the daemon's model of the dataset: nothing to train when it was trained on these
    /// files; a fine-tuning round, read at the model's resolution with its classes first, when
    /// images or classes were added; a new model when the dataset's synthd.toml asks for one.
    @Test func theDaemonsModelIsFineTunedOrLeftAsItIs() throws {
        try addImages("boot", count: 4)
        try addImages("sandal", count: 2)
        var made = ModelConfiguration(classes: 2, resolution: 64)
        made.classConditionalNorm = true
        let record = ModelRecord(configuration: made, classes: ["sandal", "boot"], mode: .grey, imageWidth: 28, imageHeight: 28,
                                 steps: 500, imagesAtLastRun: 5, options: TrainingOptions())
        let settings = Configuration()
        let trained = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: [], trainedOnTheseFiles: true))
        #expect(trained.model == "the daemon's 64x64 model of 500 steps, trained on these files: nothing to train")
        try addImages("coat", count: 1)
        let added = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: [], trainedOnTheseFiles: false))
        #expect(added.model == "the daemon's 64x64 model of 500 steps: a fine-tuning round of 5m00s (1 new class, +2 images)", "\(added.model)")
        #expect(added.trainingBytes == 7 * 64 * 64, "read at the model's 64 x 64")
        #expect(added.classes.map(\.name) == ["boot", "coat", "sandal"], "by name, not in the model's order")
        // A first training the daemon has not finished (stopped, between slices) goes on.
        let unfinished = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: [], trainedOnTheseFiles: false,
                                                                                       firstTrainingUnfinished: true))
        #expect(unfinished.model == "the daemon's 64x64 model of 500 steps: its first training goes on, up to 20m00s of it (1 new class, +2 images)",
                "\(unfinished.model)")
        let asked = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: ["resolution 32 (the model's: 64)"],
                                                                                  trainedOnTheseFiles: false))
        #expect(asked.model.hasPrefix("a new 32x32 class-conditional GAN") && asked.trainingBytes == 7 * 32 * 32)
        #expect(asked.model.hasSuffix("(synthd.toml asks for a new model: resolution 32 (the model's: 64); the daemon's model of 500 steps is kept aside)"))
        // More minutes asked than the model has had: it trains on, on these files or with the new ones.
        let more = TrainingOn(asked: 60, had: 20)
        let onTheseFiles = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: [], trainedOnTheseFiles: true,
                                                                                         trainingOn: more))
        #expect(onTheseFiles.model == "the daemon's 64x64 model of 500 steps: synthd.toml asks for 1h00m of training, the model has had "
                + "20m00s: training on for 40m00s (1 new class, +2 images)", "\(onTheseFiles.model)")
        let withNewFiles = try DatasetCheck.of(root, settings: settings, existing: .init(record: record, changes: [], trainedOnTheseFiles: false,
                                                                                         trainingOn: more))
        #expect(withNewFiles.model.hasSuffix("training on for 40m00s (at least a fine-tuning round's 5m00s with the files changed) "
                                             + "(1 new class, +2 images)"), "\(withNewFiles.model)")
    }

    /// Files the daemon's model cannot learn (`ModelOutgrown`) are read as a new model reads
    /// them and said: colour images beside a grey model, no class of the model left.
    @Test func filesTheModelCannotLearnAreANewModel() throws {
        try addImages("boot", count: 4)
        let record = ModelRecord(configuration: ModelConfiguration(classes: 1, resolution: 64), classes: ["boot"], mode: .grey,
                                 imageWidth: 28, imageHeight: 28, steps: 500, imagesAtLastRun: 4, options: TrainingOptions())
        let existing = DatasetCheck.Existing(record: record, changes: [], trainedOnTheseFiles: false)
        var red = Image(width: 28, height: 28, mode: .rgb)
        for p in 0..<(28 * 28) { red.pixels[3 * p] = 200 }
        try PNG.write(red, to: root + "/boot/red.png", durable: false)
        let colour = try DatasetCheck.of(root, settings: Configuration(), existing: existing)
        #expect(colour.colour && colour.trainingBytes == 5 * 3 * 32 * 32, "read in colour at the settings' 32, not the model's grey 64")
        #expect(colour.model.hasPrefix("a new 32x32 class-conditional GAN"))
        #expect(colour.model.hasSuffix("(1 image is in colour now (\(root)/boot/red.png), and its model is grey; "
                                       + "the daemon's model of 500 steps is kept aside)"), "\(colour.model)")
        try FileManager.default.removeItem(atPath: root + "/boot")
        try addImages("cup", count: 2)
        let other = try DatasetCheck.of(root, settings: Configuration(), existing: existing)
        #expect(other.model.hasSuffix("(none of its model's 1 class (boot) has images now; the daemon's model of 500 steps is kept aside)"),
                "\(other.model)")
        #expect(other.classes.map(\.name) == ["cup"] && !other.colour)
    }

    /// What a job would fail with, the check fails with: here no readable images.
    @Test func aDatasetTheDaemonWouldNotTrainIsAnError() throws {
        try FileManager.default.createDirectory(atPath: root + "/cat", withIntermediateDirectories: true)
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/cat/a.png"))
        #expect {
            try DatasetCheck.of(root, settings: Configuration())
        } throws: { error in
            "\(error)".hasPrefix("\(root): no readable images in any class folder (1 files rejected: \(root)/cat/a.png: ")
        }
    }
}
