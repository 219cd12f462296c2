/// The shape of a class-conditional DCGAN pair. The defaults are the reference cDCGAN-32 of
/// `shared/REFERENCE-MODEL.md`; resolution 64 adds one block to each network.
public struct ModelConfiguration: Sendable, Equatable, Codable {
    /// Image channels: 1 grey, 3 colour.
    public var imageChannels: Int
    /// Number of classes (rows of the embedding tables).
    public var classes: Int
    /// Side of the square images the networks make and judge: 32 or 64.
    public var resolution: Int
    public var latentSize: Int
    public var embeddingSize: Int
    /// Channels of the widest-resolution hidden layer; each halving of resolution doubles them.
    public var baseChannels: Int
    /// The generator also takes the class after every BatchNorm (a per-class scale and shift,
    /// `ClassConditionalAffine`), not only through the embedding at its input. Off in the
    /// reference model.
    public var classConditionalNorm: Bool
    /// How D keeps its layers in check: BatchNorm after its inner convolutions (the reference
    /// model) or spectral normalisation of every weight.
    public var discriminatorNormalization: DiscriminatorNormalization

    public init(imageChannels: Int = 1, classes: Int = 10, resolution: Int = 32,
                latentSize: Int = 128, embeddingSize: Int = 128, baseChannels: Int = 64,
                classConditionalNorm: Bool = false, discriminatorNormalization: DiscriminatorNormalization = .batch) {
        precondition([32, 64].contains(resolution), "resolution must be 32 or 64, got \(resolution)")
        precondition(classes >= 1 && imageChannels >= 1, "need at least one class and one channel")
        self.imageChannels = imageChannels
        self.classes = classes
        self.resolution = resolution
        self.latentSize = latentSize
        self.embeddingSize = embeddingSize
        self.baseChannels = baseChannels
        self.classConditionalNorm = classConditionalNorm
        self.discriminatorNormalization = discriminatorNormalization
    }

    private enum CodingKeys: String, CodingKey {
        case imageChannels, classes, resolution, latentSize, embeddingSize, baseChannels, classConditionalNorm
        case discriminatorNormalization
    }

    /// Models saved before `classConditionalNorm` or `discriminatorNormalization` existed had
    /// neither: the reference model's choices.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // Checked here, not by the initialiser's preconditions: a damaged model.json is an
        // error naming the file (`ModelRecord.problem` checks the rest), not a trap.
        let resolution = try c.decode(Int.self, forKey: .resolution)
        guard [32, 64].contains(resolution) else {
            throw DecodingError.dataCorruptedError(forKey: .resolution, in: c, debugDescription: "resolution \(resolution), expected 32 or 64")
        }
        for key in [CodingKeys.classes, .imageChannels] where try c.decode(Int.self, forKey: key) < 1 {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "\(key.stringValue) must be at least 1")
        }
        self.init(imageChannels: try c.decode(Int.self, forKey: .imageChannels),
                  classes: try c.decode(Int.self, forKey: .classes),
                  resolution: resolution,
                  latentSize: try c.decode(Int.self, forKey: .latentSize),
                  embeddingSize: try c.decode(Int.self, forKey: .embeddingSize),
                  baseChannels: try c.decode(Int.self, forKey: .baseChannels),
                  classConditionalNorm: try c.decodeIfPresent(Bool.self, forKey: .classConditionalNorm) ?? false,
                  discriminatorNormalization: try c.decodeIfPresent(DiscriminatorNormalization.self,
                                                                    forKey: .discriminatorNormalization) ?? .batch)
    }

    /// Stride-2 stages between 4x4 and the full resolution (3 at 32, 4 at 64).
    public var stages: Int { resolution == 32 ? 3 : 4 }

    /// Channels at stage i (0 = the 4x4 end): base * 2^(stages - 1 - i) ... wide at 4x4.
    public func channels(atStage stage: Int) -> Int { baseChannels << (stages - 1 - stage) }
}

/// How the generator takes the class: the choice behind `ModelConfiguration.classConditionalNorm`,
/// by the names that `synthd train --conditioning` and `[training] conditioning` use.
public enum GeneratorConditioning: String, Sendable, CaseIterable {
    /// The class embedding concatenated to z at G's input (the reference model).
    case input
    /// That, and a per-class scale and shift after every BatchNorm of G.
    case norm

    /// What new models get unless told otherwise. On Fashion-MNIST (20 minutes, two seeds) `norm`
    /// raised the synthetic-only classifier by 1.2 and 1.7 points over `input`, with the
    /// own-class share still at 90% and a Frechet distance as good or better (docs/training.md).
    public static let standard = GeneratorConditioning.norm

    public var classConditionalNorm: Bool { self == .norm }

    /// The conditioning of a model with or without per-class BatchNorm.
    public init(classConditionalNorm: Bool) { self = classConditionalNorm ? .norm : .input }
}

/// How the discriminator is normalised, by the names `synthd train --discriminator` and
/// `[training] discriminator` use.
public enum DiscriminatorNormalization: String, Sendable, Codable, CaseIterable {
    /// BatchNorm after every convolution but the first (the reference model).
    case batch
    /// Every weight divided by its largest singular value (Miyato et al. 2018), no BatchNorm:
    /// D is then 1-Lipschitz per layer whatever the batch holds.
    case spectral

    /// What new models get unless told otherwise.
    public static let standard = DiscriminatorNormalization.batch
}
