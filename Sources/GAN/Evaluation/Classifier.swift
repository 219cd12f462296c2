import Engine

/// Images and labels in bytes, as `TrainingSet` holds them; concatenable.
public struct LabeledImages: Sendable {
    public var pixels: [UInt8]
    public var labels: [Int32]
    public let channels: Int
    public let resolution: Int

    public init(pixels: [UInt8], labels: [Int32], channels: Int, resolution: Int) {
        self.pixels = pixels
        self.labels = labels
        self.channels = channels
        self.resolution = resolution
    }

    public init(_ set: TrainingSet) {
        self.init(pixels: set.pixels, labels: set.labels, channels: set.channels, resolution: set.resolution)
    }

    public var count: Int { labels.count }
    var imageBytes: Int { channels * resolution * resolution }

    /// `count` images chosen at random (all of them when there are fewer).
    public func subset(_ count: Int, seed: UInt64) -> LabeledImages {
        var order = Array(0..<self.count)
        var rng = RandomGenerator(seed: seed)
        rng.shuffle(&order)
        return select(Array(order.prefix(count)))
    }

    public func select(_ indices: [Int]) -> LabeledImages {
        var pixels: [UInt8] = []
        pixels.reserveCapacity(indices.count * imageBytes)
        for i in indices { pixels += self.pixels[(i * imageBytes)..<((i + 1) * imageBytes)] }
        return LabeledImages(pixels: pixels, labels: indices.map { labels[$0] }, channels: channels, resolution: resolution)
    }

    public static func + (a: LabeledImages, b: LabeledImages) -> LabeledImages {
        precondition(a.channels == b.channels && a.resolution == b.resolution, "image formats differ")
        return LabeledImages(pixels: a.pixels + b.pixels, labels: a.labels + b.labels, channels: a.channels, resolution: a.resolution)
    }

    func fill(_ batch: Tensor, labels out: inout [Int32], indices: ArraySlice<Int>) {
        fillScaled(batch, labels: &out, pixels: pixels, allLabels: labels, imageBytes: imageBytes, indices: indices)
    }
}

/// The small CNN that `synthd eval` trains to judge synthetic images: three stride-2
/// convolutions (32, 64, 128 channels, BatchNorm on the last two), a 128-wide feature layer
/// and a linear classifier. The feature layer is the space of the Frechet distance.
/// `width` scales the convolutions (w, 2w, 4w channels; the generation judge's is narrower).
public final class Classifier: Module {
    public static let featureSize = 128
    /// Images a training batch holds (fewer when the data has fewer), and the fewest steps a
    /// training takes however few passes it is asked for.
    public static let batchSize = 128, fewestSteps = 600
    public static let defaultWidth = 32
    let convolutions: [Conv2d]
    let norms: [BatchNorm2d]
    let activations: [Activation]
    /// The second and third convolutions' BatchNorm and LeakyReLU as one layer each
    /// (`BatchNormActivation`: the same parameters).
    private let normalized: [BatchNormActivation]
    let hidden: Linear
    let hiddenActivation = Activation(.relu)
    let output: Linear
    public let classes: Int
    public var width: Int { convolutions[0].outChannels }

    public init(channels: Int, classes: Int, resolution: Int = 32, width w: Int = Classifier.defaultWidth) {
        self.classes = classes
        convolutions = [Conv2d("C.conv1", inChannels: channels, outChannels: w, kernelSize: 4, stride: 2, padding: 1),
                        Conv2d("C.conv2", inChannels: w, outChannels: 2 * w, kernelSize: 4, stride: 2, padding: 1),
                        Conv2d("C.conv3", inChannels: 2 * w, outChannels: 4 * w, kernelSize: 4, stride: 2, padding: 1)]
        norms = [BatchNorm2d("C.bn2", channels: 2 * w), BatchNorm2d("C.bn3", channels: 4 * w)]
        activations = (0..<3).map { _ in Activation(.leakyReLU(slope: 0.2)) }
        normalized = norms.map { BatchNormActivation($0, activation: .leakyReLU(slope: 0.2)) }
        let side = resolution / 8
        hidden = Linear("C.fc1", inFeatures: 4 * w * side * side, outFeatures: Self.featureSize)
        output = Linear("C.fc2", inFeatures: Self.featureSize, outFeatures: classes)
    }

    public var parameters: [Parameter] {
        convolutions.flatMap(\.parameters) + norms.flatMap(\.parameters) + hidden.parameters + output.parameters
    }

    public var buffers: [NamedTensor] { norms.flatMap(\.buffers) }

    public func setTraining(_ training: Bool) { norms.forEach { $0.setTraining(training) } }

    /// The features of the last forward (B, 128).
    public private(set) var features: Tensor?

    /// `bfloat16`: the convolutions' products in bfloat16 (`Conv2d.forward`), for the judge.
    public func forward(_ x: Tensor, bfloat16: Bool = false) -> Tensor {
        var h = x
        for i in 0..<3 {
            h = convolutions[i].forward(h, bfloat16: bfloat16)
            h = i > 0 ? normalized[i - 1].forward(h) : activations[i].forward(h)
        }
        let f = hiddenActivation.forward(hidden.forward(h.reshaped([h.shape[0], h.count / h.shape[0]])))
        features = f
        return output.forward(f)
    }

    public func backward(_ dLogits: Tensor) {
        var d = hiddenActivation.backward(output.backward(dLogits)!)
        let last = convolutions[2]
        d = hidden.backward(d)!
        let side = Int(Double(d.shape[1] / last.outChannels).squareRoot())
        d = d.reshaped([d.shape[0], last.outChannels, side, side])
        for i in (0..<3).reversed() {
            d = i > 0 ? normalized[i - 1].backward(d) : activations[i].backward(d)
            guard let next = convolutions[i].backward(d, inputGradient: i > 0) else { break }
            d = next
        }
    }

    /// Trains a new classifier: Adam (lr 1e-3), batches of 128, `epochs` passes but at least
    /// `minimumSteps` steps (500 images make 3 steps an epoch: far too few to compare).
    /// `shouldStop` is asked before every step; when it says stop, the classifier is returned
    /// as far as it got.
    public static func train(on data: LabeledImages, classes: Int, epochs: Int, seed: UInt64, minimumSteps: Int = fewestSteps,
                             width: Int = defaultWidth, augmentation: ClassifierAugmentation? = nil,
                             shouldStop: () -> Bool = { false },
                             progress: (Double) -> Void = { _ in }) -> Classifier {
        train(on: data, order: BatchOrder(count: data.count, batchSize: min(batchSize, data.count)), classes: classes,
              epochs: epochs, seed: seed, minimumSteps: minimumSteps, width: width, augmentation: augmentation,
              shouldStop: shouldStop, progress: progress)
    }

    /// Trains a new classifier on `first` and `second` together, `firstShare` of every batch
    /// of 128 (fewer when a set is too small for its share) from `first` (e.g. real images
    /// beside many more synthetic ones). As many steps as `epochs` passes over both sets would
    /// take, and at least `minimumSteps`.
    public static func train(on first: LabeledImages, and second: LabeledImages, firstShare: Double, classes: Int,
                             epochs: Int, seed: UInt64, minimumSteps: Int = fewestSteps, augmentation: ClassifierAugmentation? = nil,
                             progress: (Double) -> Void = { _ in }) -> Classifier {
        precondition(firstShare > 0 && firstShare < 1, "the share must be in (0, 1)")
        // Smaller batches when a set is too small to give its share of 128.
        let batch = max(2, min(batchSize, Int(Double(first.count) / firstShare), Int(Double(second.count) / (1 - firstShare))))
        let fromFirst = min(first.count, max(1, Int((firstShare * Double(batch)).rounded())))
        let fromSecond = min(second.count, batch - fromFirst)
        let order = BatchOrder([.init(indices: 0..<first.count, perBatch: fromFirst),
                                .init(indices: first.count..<(first.count + second.count), perBatch: fromSecond)])
        return train(on: first + second, order: order, classes: classes, epochs: epochs, seed: seed,
                     minimumSteps: minimumSteps, augmentation: augmentation, progress: progress)
    }

    /// Trains a classifier on `pretraining` (e.g. many synthetic images), then goes on training
    /// it on `data` (the real ones) with a fresh optimiser: each phase as `train(on:)` would.
    public static func train(on data: LabeledImages, after pretraining: LabeledImages, classes: Int, epochs: Int,
                             seed: UInt64, minimumSteps: Int = fewestSteps, augmentation: ClassifierAugmentation? = nil,
                             progress: (Double) -> Void = { _ in }) -> Classifier {
        let first = train(on: pretraining, order: BatchOrder(count: pretraining.count, batchSize: min(batchSize, pretraining.count)),
                          classes: classes, epochs: epochs, seed: seed, minimumSteps: minimumSteps,
                          augmentation: augmentation) { progress($0 / 2) }
        return train(on: data, order: BatchOrder(count: data.count, batchSize: min(batchSize, data.count)), classes: classes,
                     epochs: epochs, seed: seed &+ 7, minimumSteps: minimumSteps, augmentation: augmentation,
                     continuing: first) { progress(0.5 + $0 / 2) }
    }

    /// Trains `continuing`, or a new classifier.
    static func train(on data: LabeledImages, order initialOrder: BatchOrder, classes: Int, epochs: Int, seed: UInt64,
                      minimumSteps: Int, width: Int = defaultWidth, augmentation: ClassifierAugmentation? = nil,
                      continuing: Classifier? = nil,
                      shouldStop: () -> Bool = { false },
                      progress: (Double) -> Void) -> Classifier {
        let model: Classifier
        if let continuing {
            model = continuing
            model.setTraining(true)
        } else {
            model = Classifier(channels: data.channels, classes: classes, resolution: data.resolution, width: width)
            initializeDCGAN(model.parameters, seed: seed)
        }
        let adam = Adam(model.parameters, learningRate: 1e-3, beta1: 0.9, beta2: 0.999)
        let loss = SoftmaxCrossEntropy()
        var order = initialOrder
        let batch = order.batchSize
        let x = Tensor(zeros: [batch, data.channels, data.resolution, data.resolution])
        let dLogits = Tensor(zeros: [batch, classes])
        var labels: [Int32] = []
        var rng = RandomGenerator(seed: seed &+ 1)
        var augmentationRNG = RandomGenerator(seed: seed &+ 2)  // its own stream: batches stay as without it
        let totalSteps = max(epochs * max(1, data.count / batch), minimumSteps)
        for step in 0..<totalSteps where !shouldStop() {
            data.fill(x, labels: &labels, indices: order.next(&rng)[...])
            augmentation?.apply(to: x, rng: &augmentationRNG)
            model.zeroGradients()
            let logits = model.forward(x)
            _ = loss(logits, labels: labels, gradient: dLogits)
            model.backward(dLogits)
            adam.update()
            progress(Double(step + 1) / Double(totalSteps))
        }
        model.setTraining(false)
        return model
    }

    /// Predicted classes and features (count x 128) of `data`, in inference mode.
    public func evaluate(_ data: LabeledImages) -> (predictions: [Int], features: [Float]) {
        setTraining(false)
        var predictions: [Int] = [], features: [Float] = []
        var labels: [Int32] = []
        var start = 0
        while start < data.count {
            let n = min(256, data.count - start)
            let x = Tensor(zeros: [n, data.channels, data.resolution, data.resolution])
            data.fill(x, labels: &labels, indices: Array(start..<(start + n))[...])
            predictions += SoftmaxCrossEntropy.predictions(forward(x))
            features += self.features!.values
            start += n
        }
        return (predictions, features)
    }
}

extension Classifier {
    /// Percent of `test` classified right: over all its images, and within each of `classes`
    /// classes (0 for a class it has none of).
    public func accuracies(on test: LabeledImages, classes: Int) -> (all: Double, perClass: [Double]) {
        Self.accuracies(confusion(on: test, classes: classes))
    }

    /// How `test`'s images were classified: `[actual][predicted]` counts.
    public func confusion(on test: LabeledImages, classes: Int) -> [[Int]] {
        var counts = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for (prediction, label) in zip(evaluate(test).predictions, test.labels) { counts[Int(label)][prediction] += 1 }
        return counts
    }

    /// Percent right over all images of a confusion matrix, and within each class (0 for a
    /// class with none).
    public static func accuracies(_ confusion: [[Int]]) -> (all: Double, perClass: [Double]) {
        let right = confusion.indices.map { confusion[$0][$0] }, counts = confusion.map { $0.reduce(0, +) }
        return (100 * Double(right.reduce(0, +)) / Double(max(1, counts.reduce(0, +))),
                zip(right, counts).map { 100 * Double($0) / Double(max(1, $1)) })
    }
}
