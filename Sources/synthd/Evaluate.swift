import ArgumentParser
import Daemon
import Foundation
import GAN
import Imaging

/// `synthd eval`: how good are synthetic images, judged by a classifier trained on real ones.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Judge synthetic images with a classifier trained on real ones.",
        discussion: """
        Trains a small CNN on REAL_DIR and reports: the share of synthetic images it assigns to their own class; \
        the Frechet distance between real and synthetic images in its 128-wide feature space, overall and per \
        class; and a warning for a class whose samples have collapsed (feature spread under half the real one). \
        With --test, the headline: the real-test accuracy of the same classifier trained on the real images \
        alone and on the real and synthetic images concatenated (both folders read as one, batches drawn \
        uniformly: what users do), at the amount the daemon writes by default, the whole synthetic folder and \
        --multiples of the real count per class, for --seeds classifier seeds (each compared with its own real-alone run). Then, as \
        secondary lines, classifiers trained on as many synthetic images only, and on real plus all synthetic \
        images (--real-share, --synthetic-first shape that one).
        """)

    @Argument(help: "Real images, ImageFolder layout.") var realDir: String
    @Argument(help: "Synthetic images, ImageFolder layout (e.g. OUT/<dataset> from synthd generate).") var synthDir: String
    @Option(help: "Held-out real images for test accuracies.") var test: String?
    @Option(help: "Training passes over the data for each classifier.") var epochs = 3
    @Option(name: .customLong("min-steps"),
            help: "Batches of 128 each classifier trains for at least, whatever --epochs gives (a few hundred images make few steps a pass).")
    var minimumSteps = 600
    @Option(help: "Seed of the classifiers.") var seed: UInt64 = 0
    @Option(help: "Share of every batch of the real + synthetic classifier taken from the real images, in (0, 1) (default: in proportion to the two sets' sizes).")
    var realShare: Double?
    @Flag(help: "Train the real + synthetic classifier on the synthetic images first, then on the real ones (pretraining on synthetic, fine-tuning on real).")
    var syntheticFirst = false
    @Flag(help: "Train every classifier on images shifted at random by up to 2 pixels each way (the standard augmentation for small images).")
    var augment = false
    @Option(help: "Classifier seeds of the headline (--seed, --seed + 1, ...; 0: no headline, the secondary lines only).") var seeds = 3
    @Option(help: "Amounts of synthetic images for the headline, as multiples of the real images per class (comma-separated).")
    var multiples = "0.5,1,2,5"
    @Flag(inversion: .prefixedNo,
          help: "Measure the synthetic folder as it is too (what users mix), where no other row of the headline mixes all of it.")
    var wholeFolder = true
    @Flag(help: "With --test: the headline only, without the secondary protocols (on a large dataset they are several classifiers more).")
    var headlineOnly = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
        guard minimumSteps >= 0 else { throw ValidationError("--min-steps must be 0 or more") }
        if let realShare, !(realShare > 0 && realShare < 1) { throw ValidationError("--real-share must be in (0, 1)") }
        if realShare != nil, test == nil { throw ValidationError("--real-share needs --test (it shapes the real + synthetic classifier)") }
        if syntheticFirst, test == nil { throw ValidationError("--synthetic-first needs --test (it shapes the real + synthetic classifier)") }
        if syntheticFirst, realShare != nil { throw ValidationError("give --real-share or --synthetic-first, not both") }
        guard seeds >= 0 else { throw ValidationError("--seeds must be 0 or more (0: no headline)") }
        if headlineOnly, test == nil || seeds == 0 { throw ValidationError("--headline-only needs --test and --seeds 1 or more") }
        guard parsedMultiples != nil else { throw ValidationError("--multiples wants positive numbers separated by commas, e.g. 0.5,1,2,5") }
    }

    /// The test images, in the classes of the real and synthetic ones; a class they lack is
    /// an error (no classifier here can predict it: it crashed the accuracy's count).
    static func loadTest(_ path: String, classMap: ClassMap, mode: Image.Mode) throws -> TrainingSet {
        let set = try TrainingSet.load(path, classMap: classMap, resolution: 32, mode: mode)
        let extra = set.classMap.names.dropFirst(classMap.count)
        guard extra.isEmpty else {
            throw CommandFailure("\(path): test classes with no real or synthetic images: \(extra.joined(separator: ", ")) "
                + "(the classes are \(classMap.names.joined(separator: ", "))); no classifier here can predict them: "
                + "give --test a folder of the same classes")
        }
        return set
    }

    var parsedMultiples: [Double]? {
        let values = multiples.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        for folder in [realDir, synthDir] { try DatasetPath.refuseArchive(folder) }
        let progress = ProgressLine(logInterval: 30)
        let real = try TrainingSet.load(realDir, resolution: 32)
        let synth = try TrainingSet.load(synthDir, classMap: real.classMap, resolution: 32, mode: real.mode)
        let classes = synth.classMap.count
        let unknown = synth.classMap.names.dropFirst(real.classMap.count)
        if !unknown.isEmpty { progress.write("warning: synthetic classes with no real images: \(unknown.joined(separator: ", "))\n") }
        // The test folder before any classifier trains: a mistake in it is said at once, not
        // after minutes of training.
        let testSet = try test.map { try Self.loadTest($0, classMap: synth.classMap, mode: real.mode) }
        if let test, let same = [(realDir, "real"), (synthDir, "synthetic")].first(where: { DatasetPath.resolved($0.0) == DatasetPath.resolved(test) }) {
            progress.write("warning: --test \(test) is the \(same.1) folder itself: the accuracies below are on images the classifiers "
                + "trained on, and say nothing of new ones (give --test images kept out of both)\n")
        }
        progress.write("real: \(real.count) images, synthetic: \(synth.count) images, \(classes) classes\n")

        func train(_ data: LabeledImages, _ label: String, with synthetic: LabeledImages? = nil) -> Classifier {
            let report = { (f: Double) in progress.update(fraction: f, remaining: .nan, text: "training classifier on \(label)") }
            let augmentation = augment ? ClassifierAugmentation() : nil
            let model = if let synthetic, let realShare {
                Classifier.train(on: data, and: synthetic, firstShare: realShare, classes: classes, epochs: epochs,
                                 seed: seed, minimumSteps: minimumSteps, augmentation: augmentation, progress: report)
            } else if let synthetic, syntheticFirst {
                Classifier.train(on: data, after: synthetic, classes: classes, epochs: epochs, seed: seed,
                                 minimumSteps: minimumSteps, augmentation: augmentation, progress: report)
            } else {
                Classifier.train(on: synthetic.map { data + $0 } ?? data, classes: classes, epochs: epochs, seed: seed,
                                 minimumSteps: minimumSteps, augmentation: augmentation, progress: report)
            }
            progress.finish("trained classifier on \(label) (\(data.count + (synthetic?.count ?? 0)) images)")
            return model
        }
        let realData = LabeledImages(real), synthData = LabeledImages(synth)
        let judge = train(realData, "real images")
        // The measures of the generator (own class, Frechet distance, spread) look at the samples
        // where they were drawn: a classifier trained on centred real images puts many images
        // moved by 2 pixels in another class (on Fashion-MNIST 74% own-class instead of 93%),
        // which says how brittle it is, not what the samples show. The classifiers below train
        // on the files as written.
        let shifts = SyntheticWriter.recordedShifts(root: synthDir)
        let asDrawn = shifts.isEmpty ? synth : try TrainingSet.load(
            synthDir, classMap: real.classMap, resolution: 32, mode: real.mode, adjust: { path, image in
                shifts[path].map { Resampling.shifted(image, right: -$0.right, down: -$0.down) } ?? image
            })
        if !shifts.isEmpty {
            progress.write("\(shifts.count) synthetic images are displaced (the manifest's shift): measured below as drawn, "
                           + "mixed into the classifiers as written\n")
        }
        let (predictions, synthFeatures) = judge.evaluate(LabeledImages(asDrawn))
        let (_, realFeatures) = judge.evaluate(realData)
        let d = Classifier.featureSize

        let hits = zip(predictions, asDrawn.labels).filter { $0 == Int($1) }.count
        print(String(format: "own-class share: %.1f%% of %d synthetic images%@", 100 * Double(hits) / Double(max(1, asDrawn.count)),
                     asDrawn.count, shifts.isEmpty ? "" : " (as drawn)"))
        print(String(format: "frechet distance (classifier features): %.3f", frechetDistance(
            FeatureStatistics(realFeatures, dimension: d), FeatureStatistics(synthFeatures, dimension: d))))
        print("per class: own-class share, frechet distance, spread synthetic / real")
        for k in 0..<classes {
            let realRows = real.labels.indices.filter { real.labels[$0] == k }
            let synthRows = asDrawn.labels.indices.filter { asDrawn.labels[$0] == k }
            guard synthRows.count >= 2, realRows.count >= 2 else {
                print("  \(synth.classMap.names[k]): too few images (\(realRows.count) real, \(synthRows.count) synthetic)")
                continue
            }
            let rf = realRows.flatMap { realFeatures[($0 * d)..<(($0 + 1) * d)] }
            let sf = synthRows.flatMap { synthFeatures[($0 * d)..<(($0 + 1) * d)] }
            let share = Double(synthRows.filter { predictions[$0] == k }.count) / Double(synthRows.count)
            let distance = frechetDistance(FeatureStatistics(rf, dimension: d), FeatureStatistics(sf, dimension: d))
            let spread = FeatureStatistics.spread(sf, dimension: d) / max(1e-9, FeatureStatistics.spread(rf, dimension: d))
            print(String(format: "  %@: %.1f%%, %.3f, %.2f%@", synth.classMap.names[k], 100 * share, distance, spread,
                         spread < 0.5 ? "  WARNING: samples have collapsed (low diversity)" : ""))
        }

        guard let testSet else { return }
        let testData = LabeledImages(testSet)
        /// Percent of the test images `model` gets right: all of them, and each class's.
        func accuracy(_ model: Classifier) -> (all: Double, perClass: [Double]) { model.accuracies(on: testData, classes: classes) }
        if seeds > 0 { try headline(real: realData, synthetic: synthData, test: testData, classNames: synth.classMap.names, progress: progress) }
        if headlineOnly { return }
        print("secondary protocols (classifier seed \(seed)):")
        let synthOnly = train(synthData.subset(real.count, seed: seed), "synthetic images only")
        let both = train(realData, "real and synthetic images", with: synthData)
        let (realOnly, syntheticOnly, mixed) = (accuracy(judge), accuracy(synthOnly), accuracy(both))
        let mix = realShare.map { String(format: " (%.0f%% of each batch real)", 100 * $0) }
            ?? (syntheticFirst ? " (synthetic first, then real)" : "")
        print("test accuracy per class: real only, synthetic only, real + synthetic")
        let testCounts = testSet.classCounts
        for k in 0..<classes {
            guard testCounts[k] > 0 else { print("  \(synth.classMap.names[k]): no test images"); continue }
            print(String(format: "  %@: %.1f%%, %.1f%%, %.1f%%", synth.classMap.names[k], realOnly.perClass[k],
                         syntheticOnly.perClass[k], mixed.perClass[k]))
        }
        print(String(format: "test accuracy on %d real images: real only %.1f%%, synthetic only %.1f%% (%d images), real + synthetic %.1f%%%@",
                     testSet.count, realOnly.all, syntheticOnly.all, min(real.count, synth.count), mixed.all, mix))
        // Fewer synthetic images than real ones: the fair comparison for the synthetic-only
        // classifier is as many real images, not all of them.
        if synth.count < real.count {
            let matched = accuracy(train(realData.subset(synth.count, seed: seed), "as many real images as synthetic"))
            print(String(format: "synthetic only against as many real images (%d): synthetic %.1f%%, real %.1f%%, gap %+.1f points",
                         synth.count, syntheticOnly.all, matched.all, syntheticOnly.all - matched.all))
        }
    }

    /// The headline table: real alone against real + synthetic concatenated, per amount.
    func headline(real: LabeledImages, synthetic: LabeledImages, test: LabeledImages, classNames: [String],
                  progress: ProgressLine) throws {
        let classes = classNames.count
        var measure = MixingMeasure(real: real, synthetic: synthetic, test: test, classes: classes)
        measure.seeds = (0..<seeds).map { seed &+ UInt64($0) }
        measure.epochs = epochs
        measure.minimumSteps = minimumSteps
        measure.augmentation = augment ? ClassifierAugmentation() : nil
        let realCounts = MixingMeasure.counts(real, classes: classes)
        let testCounts = MixingMeasure.counts(test, classes: classes)
        let daemonDefault = GenerationPlan(settings: Configuration(), real: realCounts).counts
        // An imbalanced set's other choices: the top-up without the cap (the default until
        // 2026-12-01), and the top-up alone (rows only where they differ from the default).
        var uncapped = Configuration()
        uncapped.maxSyntheticPerReal = 0
        var balanceOnly = uncapped
        balanceOnly.enlarge = 0
        let alternatives = [
            MixingMeasure.Amount(label: "balance, no cap (max_synthetic_per_real 0)",
                                 perClass: GenerationPlan(settings: uncapped, real: realCounts).counts),
            MixingMeasure.Amount(label: "balance only, no cap, enlarge 0", perClass: GenerationPlan(settings: balanceOnly, real: realCounts).counts),
        ]
        let (amounts, unmeasured) = measure.amounts(multiples: parsedMultiples!, default: daemonDefault, alternatives: alternatives,
                                                    classNames: classNames, wholeFolder: wholeFolder)
        let (realAlone, rows) = measure.run(amounts) { done, total in
            progress.update(fraction: Double(done) / Double(total), remaining: .nan,
                            text: "headline: classifier \(done) of \(total)")
        }
        progress.finish("headline: \(measure.seeds.count * (amounts.count + 1)) classifiers trained")
        func spread(_ values: [Double], sign: Bool = false) -> String {
            let f = sign ? "%+.1f" : "%.1f"
            return values.count < 2 ? "" : " (" + String(format: f, values.min()!) + " to " + String(format: f, values.max()!) + ")"
        }
        let mean = realAlone.reduce(0, +) / Double(realAlone.count)
        print("headline: real + synthetic, concatenated and sampled uniformly, against real alone; \(test.count) real test images, "
            + "\(measure.seeds.count) classifier seeds\(augment ? ", shifted images" : "")")
        print(String(format: "  real alone (%d images): %.1f%%", real.count, mean) + spread(realAlone))
        for row in rows {
            print(String(format: "  + %@, %d synthetic: %.1f%%", row.amount.label, row.amount.total, row.meanAccuracy) + spread(row.accuracies)
                + String(format: ", gain %+.1f", row.meanGain) + spread(row.gains, sign: true)
                + (row.gainInterval.map { String(format: ", 95%% interval of the mean %+.1f to %+.1f", $0.lowerBound, $0.upperBound) } ?? "")
                + ", \(row.seedsHigher) of \(row.gains.count) seeds higher")
            // A class with no test images has no gain to show (its 0 read as "no change").
            print("    per class, mean gain: " + zip(classNames, row.classGains).enumerated().filter { testCounts[$0.offset] > 0 }
                .map { String(format: "%@ %+.1f", $0.element.0, $0.element.1) }.joined(separator: ", "))
            if !row.grownMistakes.isEmpty {
                print("    mistakes grown most (points of the first class's test images): " + row.grownMistakes.map {
                    String(format: "%@ taken for %@ %+.1f", classNames[$0.actual], classNames[$0.predicted], $0.points)
                }.joined(separator: ", "))
            }
        }
        for skipped in unmeasured {
            print("  \(MixingMeasure.format(skipped.multiple))x real: not measured (\(skipped.reason))")
        }
    }
}
