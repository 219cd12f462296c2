import Engine

/// What a training checkpoint holds: both networks' parameters and BatchNorm statistics,
/// both Adam optimisers' moments and step counts, the step's random streams (noise, and
/// consistency regularisation's translations when it is on), LeCam regularisation's anchors
/// and adaptive augmentation's probability when they are on, and the number of steps taken.
/// Restoring it continues training exactly where it stopped.
extension TrainingStep {
    /// Metadata keys.
    enum Key {
        static let steps = "steps"
        static let rng = "rng"
        static let generatorAdamStep = "adam.G.step"
        static let discriminatorAdamStep = "adam.D.step"
        static let loss = "loss"
        static let model = "model"
        static let consistencyRNG = "consistency.rng"
        static let leCamAnchors = "lecam.anchors"
        static let adaptiveAugmentation = "augment.adaptive"
    }

    private var optimizerTensors: [NamedTensor] {
        func moments(_ adam: Adam, _ prefix: String) -> [NamedTensor] {
            adam.parameters.indices.flatMap { i in
                [NamedTensor("\(prefix).m.\(adam.parameters[i].name)", adam.firstMoments[i]),
                 NamedTensor("\(prefix).v.\(adam.parameters[i].name)", adam.secondMoments[i])]
            }
        }
        return moments(generatorOptimizer, "adam.G") + moments(discriminatorOptimizer, "adam.D")
    }

    /// Everything needed to resume, as a checkpoint (write it with `Checkpoint.write(to:)`).
    public func checkpoint(steps: Int, extra: [NamedTensor] = [], metadata: [String: String] = [:]) -> Checkpoint {
        var checkpoint = Checkpoint()
        checkpoint.add(checkpointTensors(extra: extra))
        checkpoint.metadata = checkpointMetadata(steps: steps, metadata)
        return checkpoint
    }

    /// At least the bytes `checkpoint(steps:extra:metadata:)` would write, without copying a
    /// tensor (a checkpoint of the reference model is ~36 MB: a free-space check before a job
    /// should not build one).
    public func checkpointBytesAtMost(steps: Int, extra: [NamedTensor] = [], metadata: [String: String] = [:]) -> Int {
        Checkpoint.bytesAtMost(checkpointTensors(extra: extra), metadata: checkpointMetadata(steps: steps, metadata))
    }

    private func checkpointTensors(extra: [NamedTensor]) -> [NamedTensor] {
        generator.stateTensors + discriminator.stateTensors + optimizerTensors + extra
    }

    private func checkpointMetadata(steps: Int, _ given: [String: String]) -> [String: String] {
        var metadata = given
        metadata[Key.steps] = String(steps)
        metadata[Key.rng] = rng.encoded
        metadata[Key.generatorAdamStep] = String(generatorOptimizer.step)
        metadata[Key.discriminatorAdamStep] = String(discriminatorOptimizer.step)
        metadata[Key.loss] = loss.rawValue
        metadata[Key.model] = modelDescription
        if let consistency { metadata[Key.consistencyRNG] = consistency.transform.rng.encoded }
        if let leCam { metadata[Key.leCamAnchors] = leCam.encodedAnchors }
        if let adaptive = augmentation?.adaptive { metadata[Key.adaptiveAugmentation] = adaptive.encoded }
        return metadata
    }

    /// Restores the state saved by `checkpoint(steps:)` and returns the step count. `path`
    /// names the file in errors. Nothing changes unless everything fits.
    public func restore(from checkpoint: Checkpoint, extra: [NamedTensor] = [], path: String,
                        growableRows: Set<String> = []) throws(CheckpointError) -> Int {
        func field(_ key: String) throws(CheckpointError) -> String {
            guard let value = checkpoint.metadata[key] else {
                throw .malformed(path: path, reason: "no '\(key)' entry: not a training checkpoint")
            }
            return value
        }
        if let saved = checkpoint.metadata[Key.model], saved != modelDescription, growableRows.isEmpty {
            throw .malformed(path: path, reason: "it holds a \(saved) model, this one is \(modelDescription)")
        }
        guard let steps = Int(try field(Key.steps)),
              let gStep = Int(try field(Key.generatorAdamStep)),
              let dStep = Int(try field(Key.discriminatorAdamStep)),
              let savedLoss = AdversarialLoss(rawValue: try field(Key.loss)) else {
            throw .malformed(path: path, reason: "a step or optimiser entry is not a number")
        }
        let savedRNG = try RandomGenerator(decoding: field(Key.rng), path: path)
        var savedConsistencyRNG: RandomGenerator?
        if let text = checkpoint.metadata[Key.consistencyRNG] { savedConsistencyRNG = try RandomGenerator(decoding: text, path: path) }
        // A checkpoint from before the term (none saved) starts it afresh.
        var savedAnchors: (real: Float, fake: Float)?
        if let text = checkpoint.metadata[Key.leCamAnchors] { savedAnchors = try LeCamRegularization.decodeAnchors(text, path: path) }
        var savedAdaptive = augmentation?.adaptive
        if let text = checkpoint.metadata[Key.adaptiveAugmentation] { try savedAdaptive?.restore(encoded: text, path: path) }
        try checkpoint.restore(generator.stateTensors + discriminator.stateTensors + optimizerTensors + extra,
                               path: path, growableRows: growableRows)
        rng = savedRNG
        if let consistency, let savedConsistencyRNG { consistency.transform.rng = savedConsistencyRNG }
        if let leCam, let savedAnchors { (leCam.realAnchor, leCam.fakeAnchor) = savedAnchors }
        if let savedAdaptive { augmentation?.adaptive = savedAdaptive }
        generatorOptimizer.restore(step: gStep)
        discriminatorOptimizer.restore(step: dStep)
        loss = savedLoss
        return steps
    }

    /// Names of the tensors that grow by a row per added class: both embedding tables and
    /// their Adam moments.
    public var classTableNames: Set<String> {
        let tables = [generator.embedding.weight.name, discriminator.head.embedding.weight.name]
            + generator.classNorms.flatMap { [$0.scale.name, $0.shift.name] }
        return Set(tables + tables.flatMap { ["adam.G.m.\($0)", "adam.G.v.\($0)", "adam.D.m.\($0)", "adam.D.v.\($0)"] })
    }

    /// "C=1 K=10 R=32 z=128": what must match for a checkpoint to load.
    var modelDescription: String {
        let c = generator.configuration
        return "C=\(c.imageChannels) K=\(c.classes) R=\(c.resolution) z=\(c.latentSize) e=\(c.embeddingSize) base=\(c.baseChannels)"
            + (c.classConditionalNorm ? " cbn" : "") + (c.discriminatorNormalization == .spectral ? " sn" : "")
    }
}

/// A random stream's position as one metadata string: "seed counter spare-bits|none".
extension RandomGenerator {
    var encoded: String { "\(seed) \(counter) \(spareNormal.map { String($0.bitPattern) } ?? "none")" }

    init(decoding text: String, path: String) throws(CheckpointError) {
        let parts = text.split(separator: " ")
        guard parts.count == 3, let seed = UInt64(parts[0]), let counter = UInt64(parts[1]) else {
            throw .malformed(path: path, reason: "bad random stream '\(text)'")
        }
        var spare: Float? = nil
        if parts[2] != "none" {
            guard let bits = UInt32(parts[2]) else { throw .malformed(path: path, reason: "bad random stream '\(text)'") }
            spare = Float(bitPattern: bits)
        }
        self.init(seed: seed, counter: counter, spareNormal: spare)
    }
}
