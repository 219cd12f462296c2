import Engine
import GAN

extension Configuration {
    /// Names a generation by the checkpoint that made it and the settings that chose what it
    /// holds ("step-6650-1f0c9a2e"), so that either a newer model or a change to the
    /// dataset's [generation] settings (policy and counts, seed, temperature, class check,
    /// near-copies, shift, the written size) makes a new generation, while a restart or a
    /// touched file finds the current one already published.
    ///
    /// `record`: the model's record, for the size its images are written at; nil names the
    /// generation as if `max_short_side` were the default's.
    public func generationID(checkpoint: String, record: ModelRecord? = nil) -> String {
        let counts = policy == .balance
            ? "balance to \(balanceTo)" + (enlarge > 0 ? ", enlarge \(enlarge)" : "")
                + (maxSyntheticPerReal > 0 ? ", at most \(maxSyntheticPerReal) per real" : "")
            : "per-class \(perClass)"
        var settings = "\(counts); seed \(seed); temperature \(temperature.map { "\($0)" } ?? "auto"); class check \(classCheck)"
        // Added later, each said only where it is not the default: generations without them keep their names.
        if shift > 0 { settings += "; shift \(shift)" }
        if classCheck && !dropNearCopies { settings += "; near-copies kept" }
        if let record, case let size = record.writtenSize(maxShortSide: maxShortSide),
           size != record.writtenSize(maxShortSide: SyntheticWriter.defaultMaxShortSide) {
            settings += "; written at \(size.width)x\(size.height)"
        }
        let crc = Array(settings.utf8).withUnsafeBytes { CRC32.checksum($0) }
        let hex = String(crc, radix: 16)
        return checkpoint + "-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// The generation the model of `record` makes with these settings: its generator's
    /// checkpoint and its size.
    public func generationID(of record: ModelRecord) -> String {
        generationID(checkpoint: record.generatorID, record: record)
    }
}
