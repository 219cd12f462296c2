/// Damaged copies of a valid file, for tests that every reader of outside bytes answers them
/// with a result or its typed error, never a crash (a trap on an overflow or an index out of
/// range takes the daemon down with it). Deterministic: the same seed gives the same copies,
/// so a failure names the mutant that caused it.
///
/// What a damaged file looks like in practice, each drawn with equal odds: a flipped bit, a
/// byte set to a boundary value, a 16/32/64-bit field set to a boundary value in either byte
/// order (lengths, counts and dimensions of headers), a truncation, a repeated or removed run.
public struct Mutations: Sequence, IteratorProtocol {
    let original: [UInt8]
    var state: UInt64
    var remaining: Int

    public init(of original: [UInt8], count: Int, seed: UInt64) {
        precondition(!original.isEmpty, "nothing to mutate")
        self.original = original
        self.state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        self.remaining = count
    }

    public mutating func next() -> [UInt8]? {
        guard remaining > 0 else { return nil }
        remaining -= 1
        var bytes = original
        // One to three damages on top of each other: a header that survives one may not two.
        for _ in 0..<(1 + random(3)) { mutate(&bytes) }
        return bytes
    }

    static let boundaryBytes: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]
    static let boundaryWords: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
                                          0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, .max]

    mutating func mutate(_ bytes: inout [UInt8]) {
        if bytes.isEmpty { bytes = [Self.boundaryBytes[random(Self.boundaryBytes.count)]]; return }
        let at = random(bytes.count)
        switch random(6) {
        case 0:
            bytes[at] ^= 1 << UInt8(random(8))
        case 1:
            bytes[at] = Self.boundaryBytes[random(Self.boundaryBytes.count)]
        case 2:
            let width = [2, 4, 8][random(3)]
            let value = Self.boundaryWords[random(Self.boundaryWords.count)]
            let bigEndian = random(2) == 0
            for i in 0..<width where at + i < bytes.count {
                let shift = UInt64(8 * (bigEndian ? width - 1 - i : i))
                bytes[at + i] = UInt8(truncatingIfNeeded: value >> shift)
            }
        case 3:
            bytes.removeSubrange(at...)
        case 4:
            let end = Swift.min(bytes.count, at + 1 + random(64))
            bytes.insert(contentsOf: bytes[at..<end], at: end)
        default:
            bytes.removeSubrange(at..<Swift.min(bytes.count, at + 1 + random(64)))
        }
    }

    /// 0 ..< n, from SplitMix64.
    mutating func random(_ n: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(n))
    }
}
