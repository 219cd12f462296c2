import Engine
import Imaging

/// A dataset split into the images G and D train on and a few real images they never see,
/// which the generator is scored on at each checkpoint (`CheckpointSelection`): so that what
/// users get is the checkpoint that generalised best, not the last one, which on a long run
/// over a small dataset is an overfitted discriminator's (a minute on an H200 collapsed every
/// class of a 10,000-image model; docs/quality.md).
///
/// An image is held out when its content hash falls in the lowest `fraction`-th of the hash
/// range, at most `mostPerClass` of a class (those of smallest hash); a class of fewer than
/// `smallestClass` images keeps all of them for training. The hash is of the fitted pixels, so
/// which side an image is on depends on what it is, not on its name, on the order the folder
/// lists it in, or on what else the class holds: adding images never moves an image G has
/// trained on into the held-out part (except when a class first reaches `smallestClass`, or
/// the cap lets an image back in after a removal), and copies of one image stay together.
public struct HeldOutSplit: Sendable {
    /// One image in this many is held out (on average: it is the hash that decides).
    public static let fraction = 10
    /// Classes with fewer images hold none out (10% of them would be one or two images).
    public static let smallestClass = 20
    /// Enough for a kernel distance per class; a large dataset keeps the rest for training.
    public static let mostPerClass = 100

    /// What G and D train on.
    public let training: TrainingSet
    /// The held-out images, class by class.
    public let heldOut: LabeledImages
    /// Identifies the held-out images (their hashes in order): scores measured against
    /// another held-out set are not comparable.
    public let fingerprint: UInt64

    public var isEmpty: Bool { heldOut.count == 0 }

    public init(_ set: TrainingSet) {
        let bytes = set.imageBytes
        let hashes = set.pixels.withUnsafeBufferPointer { pixels in
            (0..<set.count).map { i in contentHash(UnsafeBufferPointer(rebasing: pixels[(i * bytes)..<((i + 1) * bytes)])) }
        }
        var byClass = [[Int]](repeating: [], count: set.classMap.count)
        for (i, label) in set.labels.enumerated() { byClass[Int(label)].append(i) }
        var held = Set<Int>(), heldInOrder: [Int] = []
        let threshold = UInt64.max / UInt64(Self.fraction)
        for members in byClass where members.count >= Self.smallestClass {
            // The hash's high bits: FNV-1a's low bits depend on the bytes' low bits only.
            let chosen = members.filter { hashes[$0] < threshold }.sorted { (hashes[$0], $0) < (hashes[$1], $1) }
                .prefix(Self.mostPerClass)
            held.formUnion(chosen)
            heldInOrder += chosen
        }
        training = held.isEmpty ? set : set.selecting((0..<set.count).filter { !held.contains($0) })
        heldOut = LabeledImages(set.selecting(heldInOrder))
        var fingerprint: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in heldInOrder { fingerprint = (fingerprint ^ hashes[i]) &* 0x100_0000_01b3 }
        self.fingerprint = fingerprint
    }
}

/// 64-bit FNV-1a of `bytes`: stable across runs and machines (Swift's Hasher is seeded).
func contentHash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}
