import GAN

/// What a dataset's own synthd.toml asks of its model that the model was not made with: the
/// `[training]` keys that are fixed when a model is made (its resolution, how G takes the
/// class, how D is normalised, augmentation, held-out images, batch, seed). A model resumes as
/// it began, so such a change used to do nothing at all, silently: `resolution = 64` written
/// into a trained dataset's synthd.toml left it at 32x32. Now it makes a new model.
///
/// Only the dataset's own choices count, those that differ from the daemon's: a daemon-wide
/// default changed in the daemon's configuration applies to new datasets, and does not train
/// every dataset again.
public enum ModelChange {
    /// The keys, in words ("resolution 64 (the model's: 32)"); empty when the model is as asked.
    public static func asked(by settings: Configuration, over base: Configuration, of record: ModelRecord) -> [String] {
        var changes: [String] = []
        func compare<T: Equatable>(_ key: String, _ asked: T, _ daemon: T, _ model: T, _ text: (T) -> String) {
            if asked != daemon && asked != model { changes.append("\(key) \(text(asked)) (the model's: \(text(model)))") }
        }
        let made = record.configuration, options = record.options
        compare("resolution", settings.resolution, base.resolution, made.resolution) { "\($0)" }
        compare("conditioning", settings.conditioning, base.conditioning,
                GeneratorConditioning(classConditionalNorm: made.classConditionalNorm)) { "\"\($0.rawValue)\"" }
        compare("discriminator", settings.discriminator, base.discriminator, made.discriminatorNormalization) { "\"\($0.rawValue)\"" }
        compare("hold_out", settings.holdOut, base.holdOut, options.holdOut) { "\($0)" }
        // "auto" decides by the dataset's size, as augmentation's does: only a weight given counts.
        if case .weight(let weight) = settings.modeSeeking, settings.modeSeeking != base.modeSeeking,
           weight != options.modeSeekingWeight {
            changes.append("mode_seeking \(weight) (the model's: \(options.modeSeekingWeight))")
        }
        compare("batch", settings.batch, base.batch, options.batchSize) { "\($0)" }
        compare("seed", UInt64(truncatingIfNeeded: settings.seed), UInt64(truncatingIfNeeded: base.seed), options.seed) { "\($0)" }
        // "auto" decides by the dataset's size, which may cross its line: only an explicit choice.
        if settings.augmentation != .auto {
            compare("augmentation", settings.augmentation, base.augmentation, AugmentationPolicy(madeWith: options)) { "\"\($0.rawValue)\"" }
        }
        return changes
    }
}
