import Engine

/// A trained dataset whose own synthd.toml asks for more `[training] minutes` than its model
/// has had trains on for the difference. `minutes` was read for a new model only, so raising
/// it for a model that disappointed (the first thing a user tries) did nothing, silently.
///
/// As for `ModelChange`, only the dataset's own choice counts: a daemon-wide `minutes`
/// changed in the daemon's configuration applies to new datasets and trains no model again.
/// Lowering it undoes nothing.
public struct TrainingOn: Equatable, Sendable, CustomStringConvertible {
    /// The minutes asked and the minutes the model has had.
    public let asked: Double
    public let had: Double

    /// The minutes to train on for.
    public var minutes: Double { asked - had }

    /// What the dataset's settings ask beyond what its model has had; nil when nothing (no
    /// completed training yet: that training takes the asked minutes itself).
    public static func asked(by settings: Configuration, over base: Configuration, of runtime: DatasetRuntime) -> TrainingOn? {
        guard runtime.trainedFingerprint != nil, settings.trainingMinutes != base.trainingMinutes else { return nil }
        let had = runtime.trainedMinutes ?? base.trainingMinutes
        // A second's difference is not worth a round (and a float's noise never starts one).
        guard settings.trainingMinutes - had >= 1.0 / 60 else { return nil }
        return TrainingOn(asked: settings.trainingMinutes, had: had)
    }

    /// "synthd.toml asks for 1h00m of training, the model has had 20m00s: training on for 40m00s"
    public var description: String {
        "synthd.toml asks for \(durationText(asked * 60)) of training, the model has had \(durationText(had * 60)): "
            + "training on for \(durationText(minutes * 60))"
    }
}
