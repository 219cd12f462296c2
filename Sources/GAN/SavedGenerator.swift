import Engine

/// The generator a state folder holds, with the exponential moving average of its weights
/// (what sampling uses), loaded without the rest of the training state.
public enum SavedGenerator {
    /// `averaged: false` loads the generator's own (last-step) weights instead of their
    /// moving average, for comparing the two.
    public static func load(_ state: StateFolder, averaged: Bool = true) throws -> (generator: Generator, record: ModelRecord) {
        guard let record = try state.readRecord() else {
            throw StateFolder.Error(path: state.path, reason: "no trained model here (no model.json); run synthd train first")
        }
        let checkpoint = try Checkpoint.read(from: state.checkpointPath)
        let generator = Generator(record.configuration)
        let tensors = averaged
            ? generator.parameters.map { NamedTensor("ema.\($0.name)", $0.value) } + generator.buffers
            : generator.stateTensors
        try checkpoint.restore(tensors, path: state.checkpointPath)
        return (generator, record)
    }
}
