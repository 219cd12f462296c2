import Engine

/// The generator a state folder holds, with the exponential moving average of its weights
/// (what sampling uses), loaded without the rest of the training state: the best on the
/// held-out images where the model holds images out (`ModelRecord.best`), else the last
/// checkpoint's.
public enum SavedGenerator {
    /// `averaged: false` loads the last checkpoint's generator with its own (last-step)
    /// weights instead of their moving average, for comparing the two; `lastCheckpoint: true`
    /// the last checkpoint's moving average where a model has chosen another (to see what the
    /// choice on held-out images changed). Either way the record names what was loaded.
    public static func load(_ state: StateFolder, averaged: Bool = true,
                            lastCheckpoint: Bool = false) throws -> (generator: Generator, record: ModelRecord) {
        guard var record = try state.readRecord() else {
            throw StateFolder.Error(path: state.path, reason: "no trained model here (no model.json); run synthd train first")
        }
        let generator = Generator(record.configuration)
        let averagedTensors = generator.parameters.map { NamedTensor("ema.\($0.name)", $0.value) } + generator.buffers
        if let best = record.best {
            let path = state.bestGeneratorPath(best)
            if averaged && !lastCheckpoint {
                do {
                    try Checkpoint.read(from: path).restore(averagedTensors, path: path)
                } catch {
                    throw StateFolder.Error(path: path, reason: "the best generator that model.json names cannot be read (\(error)); "
                        + "run synthd train on the dataset to score and write it again")
                }
                return (generator, record)
            }
            record.best = nil   // the weights loaded are the last checkpoint's: name them so
        }
        let checkpoint = try Checkpoint.read(from: state.checkpointPath)
        try checkpoint.restore(averaged ? averagedTensors : generator.stateTensors, path: state.checkpointPath)
        return (generator, record)
    }
}
