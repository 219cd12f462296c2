import Engine
import Imaging

/// Scores a generator on the real images training never saw (`HeldOutSplit`): the kernel
/// distance (`kernelDistance`) between samples drawn from fixed noise and the held-out images,
/// both in the judge's features (the classifier of generation's class check). Lower is better.
///
/// The samples keep the held-out images' class proportions, `samplesPerImage` of them per
/// held-out image up to about 1,000 (the held-out side is what it is: 50 images from 500),
/// drawn at temperature 1 with standing BatchNorm statistics, as generation draws them. The
/// noise, the labels and the statistics' noise are the same at every checkpoint, so two
/// scores differ by what the generator learnt, not by what it was asked for.
///
/// Which checkpoint generation uses (`isChosen`): the latest whose score is within two standard
/// errors of the lowest score so far. Measured on 54 held-out images (data/small, 10 minutes),
/// the scores of the last third of training wandered by about +-0.03 from checkpoint to
/// checkpoint while every other measure kept improving with more steps (docs/quality.md): the
/// plain minimum picks an earlier checkpoint by chance. The score is class-conditional and its
/// standard error the jackknife's over the held-out images (`ClassKernelDistance`): most of the
/// wander is which few real images each class is held to, not the samples (blocks of samples
/// gave standard errors of 0.003-0.005, a tenth of it).
///
/// The judge was trained on all of the dataset's real images, the held-out ones included: its
/// features only measure, and what matters here is that G and D never trained on them.
public struct CheckpointSelection {
    public let heldOutCount: Int
    public let fingerprint: UInt64
    private let judge: Judge
    private let heldOutFeatures: [Float]
    /// Features are multiplied by this so that the held-out ones have a mean square of 1 per
    /// value: the kernel's x.y / d is then of order 1, as with the Inception features it was
    /// made for (the judge's features are ReLU outputs in the tens, where the cube of the dot
    /// product would be all that counts).
    private let featureScale: Float
    private let labels: [Int32]
    private let heldOutLabels: [Int32]
    private let seed: UInt64
    /// Samples drawn: about this many, at least one per held-out image.
    public static let samples = 1_000

    public init(split: HeldOutSplit, judge: Judge, seed: UInt64) {
        precondition(split.heldOut.count >= Self.smallestHeldOut, "\(split.heldOut.count) held-out images: too few to score against")
        let heldOut = split.heldOut
        heldOutCount = heldOut.count
        fingerprint = split.fingerprint
        self.judge = judge
        self.seed = seed
        let features = judge.features(Self.images(heldOut))
        let meanSquare = features.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, features.count))
        let scale: Float = meanSquare > 0 ? Float(1 / meanSquare.squareRoot()) : 1
        featureScale = scale
        heldOutFeatures = features.map { $0 * scale }
        heldOutLabels = heldOut.labels
        labels = heldOut.labels.flatMap { Array(repeating: $0, count: max(2, Self.samples / heldOut.count)) }
    }

    public var sampleCount: Int { labels.count }

    /// Fewer held-out images than this score nothing.
    public static let smallestHeldOut = 4

    /// The class-conditional kernel distance of `generator`'s samples to the held-out images,
    /// with its standard error (`ClassKernelDistance`).
    public func score(_ generator: Generator, record: ModelRecord) throws -> HeldOutScore.Measure {
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 256
        sampler.temperature = 1
        sampler.statistics = try sampler.standingStatistics(seed: seed &+ 1)
        let squares = try sampler.sampleSquares([(labels, seed)], judges: nil).images
        let score = ClassKernelDistance(samples: judge.features(squares).map { $0 * featureScale }, sampleLabels: labels,
                                        real: heldOutFeatures, realLabels: heldOutLabels, dimension: Classifier.featureSize)
        return HeldOutScore.Measure(distance: score.distance, standardError: score.standardError)
    }

    /// Whether a checkpoint scoring `measure` becomes the one generation uses, after checkpoints
    /// whose lowest score was `lowest` (nil: it is the first).
    public static func isChosen(_ measure: HeldOutScore.Measure, lowest: Double?) -> Bool {
        guard let lowest else { return true }
        return measure.distance <= lowest + 2 * measure.standardError
    }

    /// Planar bytes (`LabeledImages`) as images the judge reads (interleaved).
    static func images(_ data: LabeledImages) -> [Image] {
        let c = data.channels, r = data.resolution, plane = r * r
        return (0..<data.count).map { i in
            var pixels = [UInt8](repeating: 0, count: c * plane)
            for p in 0..<plane { for k in 0..<c { pixels[p * c + k] = data.pixels[i * c * plane + k * plane + p] } }
            return Image(width: r, height: r, mode: c == 3 ? .rgb : .grey, pixels: pixels)
        }
    }
}

/// The generator generation uses when a model holds images out: the checkpoint whose EMA
/// generator scored best on them (`CheckpointSelection.isChosen`: the latest within the noise
/// of the lowest score), kept in its own file next to the
/// training checkpoint. Stored in model.json.
public struct BestGenerator: Sendable, Codable, Equatable {
    public var step: Int
    /// Its kernel distance to the held-out images (lower is better).
    public var distance: Double
    public var heldOutImages: Int
    /// The held-out images' fingerprint (`HeldOutSplit.fingerprint`): a score is comparable
    /// only with scores against the same images.
    public var heldOut: String
    /// The file in the state folder ("best-step-1200.ckpt"): a new best is written under a new
    /// name before model.json names it, so the record never names a half-written file.
    public var file: String

    public init(step: Int, distance: Double, heldOutImages: Int, heldOut fingerprint: UInt64) {
        self.step = step
        self.distance = distance
        self.heldOutImages = heldOutImages
        heldOut = Self.describe(fingerprint)
        file = "best-step-\(step).ckpt"
    }

    /// A fingerprint as model.json keeps it (hex: JSON numbers are not exact beyond 2^53).
    public static func describe(_ fingerprint: UInt64) -> String { String(fingerprint, radix: 16) }
}

/// One checkpoint's score, a line of `heldout.csv`.
public struct HeldOutScore: Sendable, Codable, Equatable {
    public var step: Int
    public var distance: Double
    public var standardError: Double

    public struct Measure: Sendable, Equatable {
        public var distance: Double
        public var standardError: Double
    }

    public init(step: Int, _ measure: Measure) {
        self.step = step
        distance = measure.distance
        standardError = measure.standardError
    }

    public var measure: Measure { Measure(distance: distance, standardError: standardError) }
}
