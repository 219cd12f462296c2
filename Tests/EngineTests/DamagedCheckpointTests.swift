import Engine
import FileTestSupport
import NumericTestSupport
import Testing

/// Damaged checkpoints: each is read back whole or refused with its typed error naming the
/// file, never a crash. A file damaged on disk fails its checksum; the copies whose checksum
/// and length are made right again reach the parser behind them (what a writer's bug, or a
/// file made to harm, would give it).
@Suite struct DamagedCheckpointTests {
    let path = "state/datasets/x/checkpoint.ckpt"

    func sample() -> Checkpoint {
        var checkpoint = Checkpoint()
        checkpoint.add("a.weight", randomTensor([2, 3], seed: 1))
        checkpoint.add("b.bias", randomTensor([4], seed: 2))
        checkpoint.add("c.table", randomTensor([3, 1, 2, 2], seed: 3))
        checkpoint.metadata["step"] = "1200"
        checkpoint.metadata["rng"] = "42 17 nil"
        return checkpoint
    }

    /// Length and checksum made to agree with the bytes as they now are.
    func resealed(_ bytes: [UInt8]) -> [UInt8] {
        let header = Checkpoint.magic.count + 12
        guard bytes.count >= header + 4 else { return bytes }
        var bytes = bytes
        let length = UInt64(bytes.count - header - 4)
        for i in 0..<8 { bytes[Checkpoint.magic.count + 4 + i] = UInt8(truncatingIfNeeded: length >> UInt64(8 * i)) }
        let crc = bytes[header..<(bytes.count - 4)].withUnsafeBytes { CRC32.checksum($0) }
        for i in 0..<4 { bytes[bytes.count - 4 + i] = UInt8(truncatingIfNeeded: crc >> UInt32(8 * i)) }
        return bytes
    }

    @Test(arguments: [false, true])
    func everyDamagedCopyIsReadWholeOrRefusedByName(resealed reseal: Bool) {
        let original = sample().encoded()
        var read = 0, refused = 0
        for (i, mutant) in Mutations(of: original, count: 3000, seed: reseal ? 11 : 10).enumerated() {
            let bytes = reseal ? resealed(mutant) : mutant
            do {
                let checkpoint = try Checkpoint.decode(bytes, path: path)
                // Damage the checksum sees is never read as a checkpoint (a mutation may leave
                // the bytes as they were: a field set to the value it had).
                #expect(reseal || bytes == original, "mutant \(i) read despite its damage")
                for entry in checkpoint.entries {
                    #expect(entry.values.count == entry.shape.reduce(1, *), "mutant \(i): \(entry.name)")
                }
                read += 1
            } catch {
                #expect(error.description.hasPrefix(path + ": "), "mutant \(i): \(error)")
                refused += 1
            }
        }
        // Both outcomes, many times when resealed: the damage reaches the parser.
        #expect(refused >= 100 && (!reseal || read >= 100), "\(read) read, \(refused) refused")
    }

    /// The fields whose products and sums overflowed (traps) before 2026-12-03: a length of
    /// 2^64 - 1, and resealed shapes whose dimensions' product passes 2^63.
    @Test func boundaryLengthsAndShapesAreRefused() {
        var bytes = sample().encoded()
        for i in 0..<8 { bytes[Checkpoint.magic.count + 4 + i] = 0xFF }
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(bytes, path: path) }

        var huge = Checkpoint()
        huge.add("w", randomTensor([1], seed: 1))
        var encoded = huge.encoded()
        // The payload: metadata count 0, tensor count 1, name "w", rank 1, dimension 1, one float.
        // Rank 4 with dimensions 2^32 - 1 (their product overflows), written over the tail.
        let rankAt = encoded.count - 4 - 4 - 8 - 4
        var tail: [UInt8] = [4, 0, 0, 0]
        for _ in 0..<4 { tail += [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0] }
        encoded = Array(encoded[..<rankAt]) + tail + [0, 0, 0, 0]
        #expect(throws: CheckpointError.self) { try Checkpoint.decode(resealed(encoded), path: path) }
    }
}
