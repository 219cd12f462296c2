import Engine
import Foundation
import Imaging

/// What generation's class check asks of each sample (`SyntheticWriter.judge`).
public protocol SampleJudge {
    /// The classes it knows, in index order: the model's.
    var classes: [String] { get }
    /// Whether each image (at the dataset's own size) shows its label's class.
    func accepts(_ images: [Image], labels: [Int32]) -> [Bool]
    /// A judge with the same verdicts that may work on another thread while this one works:
    /// each sampling worker judges its own batches (see `Sampler.sample(_:judges:)`).
    func copy() -> any SampleJudge
}

/// A classifier trained on a dataset's real images (the small CNN of `synthd eval`), kept in
/// the state folder as `judge.ckpt`, that generation's class check asks whether a sample shows
/// the class it was drawn for.
///
/// Why: a classifier trained on synthetic images learns whatever a sample looks like under the
/// label it was drawn with, so a "shirt" that looks like a T-shirt teaches it a wrong boundary.
/// Drawing such samples again (and sampling at a higher temperature for variety) made the
/// synthetic images much better training data on Fashion-MNIST (docs/training.md).
///
/// It knows the classes and per-class image counts it was trained on: a judge for other data
/// (a class or images added since) is out of date and is trained again.
public final class Judge: SampleJudge {
    public let classifier: Classifier
    /// Class names in index order, and images per class, of the data it was trained on.
    public let classes: [String]
    public let imagesPerClass: [Int]
    public let channels: Int
    public let resolution: Int
    /// The spread of each class's real images in the classifier's features (mean distance
    /// from their mean), what generation's diversity is measured against (`diversity`); nil
    /// for a judge saved before it was kept.
    public let realSpread: [Double]?
    /// The real images' features, to find samples that are near-copies of them (nil for a
    /// judge saved before they were kept).
    public let nearCopies: NearCopies?
    /// How it was trained; nil for a judge saved before recipes were kept (`predatesItsRecipe`).
    public let recipe: Recipe?
    /// Whether `accepts` rejects near-copies of real images (memorised samples: they add
    /// nothing the real image does not, and a user's synthetic set should not hold copies).
    public var dropsNearCopies = true
    /// Samples `accepts` rejected as near-copies (of its class, otherwise accepted) so far.
    public private(set) var nearCopiesDropped = 0
    /// How sure the judge must be, beyond naming the label's class: the softmax probability of
    /// the label at least this (0: the argmax alone, the default).
    public var minimumConfidence: Float = 0
    /// `accepts`'s input batch, kept between calls (a megabyte a batch of 256, every batch).
    private var input: Tensor?

    /// Passes over the data: the same as `synthd eval`'s classifiers.
    public static let epochs = 3
    /// Channels of the first convolution: half of `synthd eval`'s classifier, a quarter of its
    /// work per image (generation judges every sample: at full width judging took a third of
    /// generation's time).
    public static let width = 16

    init(classifier: Classifier, classes: [String], imagesPerClass: [Int], channels: Int, resolution: Int, realSpread: [Double]? = nil,
         nearCopies: NearCopies? = nil, recipe: Recipe? = nil) {
        self.classifier = classifier
        self.classes = classes
        self.imagesPerClass = imagesPerClass
        self.channels = channels
        self.resolution = resolution
        self.realSpread = realSpread
        self.nearCopies = nearCopies
        self.recipe = recipe
    }

    /// Trains a judge on `set` as `recipe` says (by default `Recipe(trainingImages:)`); nil
    /// when `shouldStop` said stop first.
    public static func train(on set: TrainingSet, seed: UInt64, recipe: Recipe? = nil, shouldStop: () -> Bool = { false },
                             progress: (Double) -> Void = { _ in }) -> Judge? {
        let recipe = recipe ?? Recipe(trainingImages: set.count)
        let data = LabeledImages(set)
        let classifier = Classifier.train(on: data, classes: set.classMap.count, epochs: epochs, seed: seed,
                                          minimumSteps: recipe.minimumSteps, width: recipe.width,
                                          augmentation: recipe.augmentation, shouldStop: shouldStop, progress: progress)
        if shouldStop() { return nil }
        let features = classifier.evaluate(data).features
        let realSpread = (0..<set.classMap.count).map { k in
            spread(of: data.labels.indices.filter { data.labels[$0] == k }, in: features)
        }
        return Judge(classifier: classifier, classes: set.classMap.names, imagesPerClass: set.classCounts,
                     channels: set.channels, resolution: set.resolution, realSpread: realSpread,
                     nearCopies: NearCopies(features: features, labels: data.labels, classes: set.classMap.count),
                     recipe: recipe)
    }

    /// The spread (`FeatureStatistics.spread`) of the feature rows `rows`.
    static func spread(of rows: [Int], in features: [Float]) -> Double {
        let d = Classifier.featureSize
        return FeatureStatistics.spread(rows.flatMap { features[($0 * d)..<(($0 + 1) * d)] }, dimension: d)
    }

    /// The seed a model's judge is trained from.
    public static func seed(for options: TrainingOptions) -> UInt64 { options.seed &+ 6000 }

    /// The state folder's judge for `record`'s model. When there is none, or it knows other
    /// classes (a class was added since and the training that followed was cut short), one is
    /// trained on `loadSet()` and saved first: so a model trained by an older synthd, or whose
    /// training stopped before its judge, still gets the class check. A damaged judge file is
    /// replaced the same way (it holds nothing that cannot be made again); one that cannot be
    /// read at all (permissions, a failing disk, a folder in its place) is an error that names
    /// it, rather than a judge trained for nothing and a save that fails. nil when `shouldStop`
    /// said stop first, or when the dataset's classes are not the model's (a class was added
    /// and the model has not been trained on it yet). `beforeSave` may refuse the save by
    /// throwing (a cluster node that lost the dataset's lease; see `Trainer.beforeWrite`).
    public static func current(in state: StateFolder, for record: ModelRecord, loadSet: () throws -> TrainingSet,
                               shouldStop: () -> Bool = { false }, progress: (Double) -> Void = { _ in },
                               beforeSave: () throws -> Void = {}) throws -> Judge? {
        let existing: Judge?
        do {
            existing = try load(from: state)
        } catch let error as CheckpointError {
            if case .io = error { throw error }
            existing = nil   // damaged: made again below
        } catch {
            existing = nil   // not a judge's description: made again below
        }
        if let judge = existing, judge.classes == record.classes, judge.knowsItsRealImages, !judge.predatesItsRecipe { return judge }
        let set = try loadSet()
        guard set.classMap.names == record.classes else { return nil }
        guard let judge = train(on: set, seed: seed(for: record.options), shouldStop: shouldStop, progress: progress) else {
            return nil
        }
        try beforeSave()
        try judge.save(in: state)
        return judge
    }

    /// Whether this judge was trained on exactly `set`'s classes and image counts.
    public func isCurrent(for set: TrainingSet) -> Bool {
        classes == set.classMap.names && imagesPerClass == set.classCounts
            && channels == set.channels && resolution == set.resolution && knowsItsRealImages && !predatesItsRecipe
    }

    /// Whether it is a small dataset's judge saved before small datasets' judges trained longer
    /// on shifted images (`Recipe(trainingImages:)`): such a judge is trained again, once (about
    /// 30 s). A large dataset's old judge was trained as its recipe says and stays.
    public var predatesItsRecipe: Bool {
        recipe == nil && Recipe(trainingImages: imagesPerClass.reduce(0, +)) != Recipe.beforeRecipesWereKept
    }

    /// Whether it keeps what its real images look like (their spread and features, for the
    /// diversity report and the near-copy check): a judge saved by an older synthd does not,
    /// and is trained again once.
    public var knowsItsRealImages: Bool { realSpread != nil && nearCopies != nil }

    /// Whether each image (at the dataset's own size, as generation writes it) is put in its
    /// label's class. The images are fitted to the judge's resolution as training data is. The
    /// convolutions multiply in bfloat16 where the CPU has it (`Conv2d.forward`): judging every
    /// sample in Float took a sixth of class-checked generation; a verdict is an argmax, which
    /// that rounding moves only for samples on a class boundary.
    public func accepts(_ images: [Image], labels: [Int32]) -> [Bool] {
        precondition(images.count == labels.count, "\(images.count) images, \(labels.count) labels")
        var verdicts: [Bool] = []
        verdicts.reserveCapacity(images.count)
        forEachBatch(of: images) { start, logits in
            verdicts += self.verdicts(logits, labels: labels[start..<(start + logits.shape[0])],
                                      nearest: .features(classifier.features!.values))
        }
        return verdicts
    }

    /// The classifier's features (`Classifier.features`, 128 a row) of images at the
    /// dataset's size, as `accepts` sees them.
    public func features(_ images: [Image]) -> [Float] {
        var features: [Float] = []
        forEachBatch(of: images) { _, _ in features += classifier.features!.values }
        return features
    }

    /// The classifier on `images` in batches of 256, each fitted to the judge's resolution as
    /// training data is; `body` gets each batch's first index and its logits.
    private func forEachBatch(of images: [Image], _ body: (Int, Tensor) -> Void) {
        let plane = resolution * resolution, batchSize = 256
        for start in stride(from: 0, to: images.count, by: batchSize) {
            let count = min(batchSize, images.count - start)
            let x = Tensor.reuse(input, shape: [count, channels, resolution, resolution])   // every value written below
            input = x
            for row in 0..<count {
                let image = images[start + row]
                let fitted = Resampling.fit(channels == 3 ? Resampling.rgb(image) : Resampling.grey(image), resolution: resolution)
                let base = x.data + row * channels * plane
                for p in 0..<plane {
                    for c in 0..<channels { base[c * plane + p] = scaledPixel(fitted.pixels[p * channels + c]) }
                }
            }
            // bfloat16 where it is faster: by the context's kernel, else by AVX512-BF16 where that beats Float.
            let bfloat16 = ComputeContext.current.bfloat16Kernel != nil || BFloat16Payoff.dotProductsPayOff
            body(start, classifier.forward(x, bfloat16: bfloat16))
        }
    }

    /// Each class's diversity: the spread of `features` (rows, with their class in
    /// `labels`) over the real images' (`realSpread`); nil for a class with under 16 rows, or
    /// when the judge has no real spread. Under `collapseThreshold` the class's samples have
    /// collapsed (as `synthd eval` reports).
    public func diversity(features: [Float], labels: [Int32]) -> [Double?] {
        guard let realSpread else { return Array(repeating: nil, count: classes.count) }
        return classes.indices.map { k in
            let rows = labels.indices.filter { labels[$0] == k }
            guard rows.count >= 16, realSpread[k] > 0 else { return nil }
            return Self.spread(of: rows, in: features) / realSpread[k]
        }
    }

    /// Diversity under this is a collapse: samples of the class vary less than half as much
    /// as its real images in the judge's features.
    public static let collapseThreshold = 0.5

    /// What the near-copy rule is given for a batch: its features (rows; the distances are
    /// found here, on the CPU), or each sample's squared distance to the nearest real image of
    /// its class, found where the features are (`DeviceJudge.nearestReal`).
    enum NearestReal {
        case features([Float])
        case distances([Float])
    }

    /// The class check's rule on a batch's (B, K) logits: the label's class is the argmax, at
    /// least `minimumConfidence` likely, and (given `nearest` and `dropsNearCopies`) not a
    /// near-copy of a real image.
    func verdicts(_ logits: Tensor, labels: ArraySlice<Int32>, nearest: NearestReal?) -> [Bool] {
        let predicted = SoftmaxCrossEntropy.predictions(logits)
        var verdicts = zip(predicted, labels).enumerated().map { row, pair in
            let label = Int(pair.1)
            return pair.0 == label && (minimumConfidence <= 0 || Self.probability(logits, row: row, of: label) >= minimumConfidence)
        }
        guard dropsNearCopies, let nearCopies, let nearest else { return verdicts }
        // Only the samples still accepted: a rejected one is redrawn whatever its distance (at
        // temperature 1.5 a quarter of the batch or more).
        let accepted = verdicts.indices.filter { verdicts[$0] }
        let acceptedLabels = accepted.map { labels[labels.startIndex + $0] }
        let copies: [Bool]
        switch nearest {
        case .features(let features):
            let d = NearCopies.dimension
            copies = nearCopies.areCopies(accepted.flatMap { features[($0 * d)..<(($0 + 1) * d)] }, labels: acceptedLabels)
        case .distances(let distances):
            copies = nearCopies.areCopies(nearest: accepted.map { distances[$0] }, labels: acceptedLabels)
        }
        for (row, copy) in zip(accepted, copies) where copy {
            verdicts[row] = false
            nearCopiesDropped += 1
        }
        return verdicts
    }

    /// A judge with its own classifier (layers keep their activations, so one classifier
    /// judges one batch at a time).
    public func copy() -> any SampleJudge {
        let twin = Classifier(channels: channels, classes: classes.count, resolution: resolution, width: classifier.width)
        for (target, source) in zip(twin.stateTensors, classifier.stateTensors) { target.tensor.copy(from: source.tensor) }
        twin.setTraining(false)
        let judge = Judge(classifier: twin, classes: classes, imagesPerClass: imagesPerClass, channels: channels, resolution: resolution,
                          realSpread: realSpread, nearCopies: nearCopies, recipe: recipe)
        judge.minimumConfidence = minimumConfidence
        judge.dropsNearCopies = dropsNearCopies
        return judge
    }

    /// The softmax probability of class `k` in row `row` of (B, K) logits.
    static func probability(_ logits: Tensor, row: Int, of k: Int) -> Float {
        let classes = logits.shape[1], base = logits.data + row * classes
        var most = base[0]
        for j in 1..<classes { most = max(most, base[j]) }
        var total: Float = 0
        for j in 0..<classes { total += expf(base[j] - most) }
        return expf(base[k] - most) / total
    }

    // MARK: The file

    public static func path(in state: StateFolder) -> String { state.path + "/judge.ckpt" }

    /// Writes `judge.ckpt` atomically.
    public func save(in state: StateFolder) throws {
        var checkpoint = Checkpoint()
        checkpoint.add(classifier.stateTensors)
        checkpoint.metadata = ["judge.classes": classes.joined(separator: "\n"),
                               "judge.images": imagesPerClass.map(String.init).joined(separator: ","),
                               "judge.channels": String(channels), "judge.resolution": String(resolution),
                               "judge.width": String(classifier.width)]
        if let recipe {
            checkpoint.metadata["judge.minimum_steps"] = String(recipe.minimumSteps)
            checkpoint.metadata["judge.shift"] = String(recipe.augmentation?.maxShift ?? 0)
        }
        if let realSpread { checkpoint.metadata["judge.spread"] = realSpread.map { String($0) }.joined(separator: ",") }
        if let nearCopies {
            let rows = nearCopies.real.flatMap { $0 }
            checkpoint.add("judge.real_features", Tensor(shape: [rows.count / NearCopies.dimension, NearCopies.dimension], values: rows))
            checkpoint.metadata["judge.real_counts"] = nearCopies.real.map { String($0.count / NearCopies.dimension) }.joined(separator: ",")
            checkpoint.metadata["judge.copy_thresholds"] = nearCopies.thresholds.map { $0.map { String($0) } ?? "" }.joined(separator: ",")
        }
        try checkpoint.write(to: Self.path(in: state))
    }

    /// The state folder's judge, or nil when it has none.
    public static func load(from state: StateFolder) throws -> Judge? {
        let path = path(in: state)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let checkpoint = try Checkpoint.read(from: path)
        let metadata = checkpoint.metadata
        guard let names = metadata["judge.classes"], let counts = metadata["judge.images"],
              let channels = metadata["judge.channels"].flatMap(Int.init), channels == 1 || channels == 3,
              let resolution = metadata["judge.resolution"].flatMap(Int.init), resolution >= 8, resolution % 8 == 0,
              let width = metadata["judge.width"].flatMap(Int.init), width >= 1, width <= 1024 else {
            throw StateFolder.Error(path: path, reason: "not a judge checkpoint (its description is missing or wrong); delete it and run synthd train to make a new one")
        }
        let classes = names.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let imagesPerClass = counts.split(separator: ",").compactMap { Int($0) }
        guard imagesPerClass.count == classes.count else {
            throw StateFolder.Error(path: path, reason: "judge describes \(classes.count) classes but \(imagesPerClass.count) counts")
        }
        let classifier = Classifier(channels: channels, classes: classes.count, resolution: resolution, width: width)
        try checkpoint.restore(classifier.stateTensors, path: path)
        classifier.setTraining(false)
        // Written by synthd since the diversity report; a judge without it (or with a damaged
        // list) still judges, without the report.
        let spread = metadata["judge.spread"]?.split(separator: ",").compactMap { Double($0) }
        // Written since 2026-12-06; without it (or damaged) the judge is older than its recipe.
        var recipe: Recipe?
        if let steps = metadata["judge.minimum_steps"].flatMap(Int.init), steps >= 1,
           let shift = metadata["judge.shift"].flatMap(Int.init), shift >= 0 {
            recipe = Recipe(width: width, minimumSteps: steps, augmentation: shift > 0 ? ClassifierAugmentation(maxShift: shift) : nil)
        }
        return Judge(classifier: classifier, classes: classes, imagesPerClass: imagesPerClass, channels: channels,
                     resolution: resolution, realSpread: spread?.count == classes.count ? spread : nil,
                     nearCopies: savedNearCopies(checkpoint, classes: classes.count), recipe: recipe)
    }

    /// The real features and thresholds `save` wrote, or nil when absent or inconsistent.
    private static func savedNearCopies(_ checkpoint: Checkpoint, classes: Int) -> NearCopies? {
        let d = NearCopies.dimension
        guard let entry = checkpoint.entry(named: "judge.real_features"), entry.shape.count == 2, entry.shape[1] == d,
              let counts = checkpoint.metadata["judge.real_counts"]?.split(separator: ",").compactMap({ Int($0) }),
              counts.count == classes, counts.reduce(0, +) == entry.shape[0],
              let thresholds = checkpoint.metadata["judge.copy_thresholds"]?
                  .split(separator: ",", omittingEmptySubsequences: false).map({ Float($0) }),
              thresholds.count == classes else { return nil }
        var real: [[Float]] = [], start = 0
        for count in counts {
            real.append(Array(entry.values[(start * d)..<((start + count) * d)]))
            start += count
        }
        return NearCopies(real: real, thresholds: thresholds)
    }
}
