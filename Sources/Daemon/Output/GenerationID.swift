import Engine

extension Configuration {
    /// Names a generation by the checkpoint that made it and the settings that chose what it
    /// holds ("step-6650-1f0c9a2e"), so that either a newer model or a change to the
    /// dataset's [generation] settings (policy and counts, seed, temperature, class check, shift) makes a new
    /// generation, while a restart or a touched file finds the current one already published.
    public func generationID(checkpoint: String) -> String {
        let counts = policy == .balance
            ? "balance to \(balanceTo)" + (enlarge > 0 ? ", enlarge \(enlarge)" : "")
                + (maxSyntheticPerReal > 0 ? ", at most \(maxSyntheticPerReal) per real" : "")
            : "per-class \(perClass)"
        let settings = "\(counts); seed \(seed); temperature \(temperature.map { "\($0)" } ?? "auto"); class check \(classCheck)"
            + (shift > 0 ? "; shift \(shift)" : "")  // added later: generations without it keep their names
        let crc = Array(settings.utf8).withUnsafeBytes { CRC32.checksum($0) }
        let hex = String(crc, radix: 16)
        return checkpoint + "-" + String(repeating: "0", count: 8 - hex.count) + hex
    }
}
