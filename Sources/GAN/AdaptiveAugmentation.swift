import Engine

/// Adaptive discriminator augmentation (Karras et al. 2020, "StyleGAN2-ADA"): how often
/// DiffAugment's transforms are applied is steered by how much D overfits.
///
/// The overfitting signal is r = E[sign(D(x))] over D's training logits on real images: a D
/// that has memorised its real images calls nearly all of them real (r near 1). Every
/// `interval` steps the probability p moves by (images seen) / `rampImages` towards more
/// augmentation when r is above `target` (0.6: 80% of real images called real), towards less
/// when it is below, and stays within [0, 1]. Each image's colour, translation and cutout are
/// then applied each with probability p.
///
/// The paper's ramp (500k images from 0 to 1) is 2% of its runs; a run here is 100k-400k
/// images on a CPU, so the ramp is 25k images: D can be reined in within ~400 steps of batch 64.
/// The device engine keeps the same four numbers in device memory and updates them with the same
/// arithmetic (`AugmentKernels`' `ada_observe`), so a checkpoint holds one state either way.
public struct AdaptiveAugmentation: Sendable, Equatable {
    /// The paper's target for r.
    public static let standardTarget: Float = 0.6
    public static let standardInterval = 4
    public static let standardRampImages: Float = 25_000

    public var target: Float
    /// Steps between adjustments.
    public var interval: Int
    /// Images over which p can move from 0 to 1.
    public var rampImages: Float
    /// The current probability of each transform, in [0, 1].
    public private(set) var probability: Float
    /// Real logits above 0, logits seen and steps since the last adjustment.
    public private(set) var positive: Float = 0, seen: Float = 0, steps: Float = 0

    public init(probability: Float = 0, target: Float = standardTarget, interval: Int = standardInterval,
                rampImages: Float = standardRampImages) {
        precondition(interval >= 1 && rampImages > 0, "interval and ramp must be positive")
        self.probability = min(max(probability, 0), 1)
        self.target = target
        self.interval = interval
        self.rampImages = rampImages
    }

    /// Counts one step's real logits, and adjusts p when `interval` steps have been counted.
    public mutating func observe(realLogits logits: Tensor) {
        var above = 0
        for i in 0..<logits.count where logits.data[i] > 0 { above += 1 }
        positive += Float(above)
        seen += Float(logits.count)
        steps += 1
        if steps >= Float(interval) { adjust() }
    }

    /// The arithmetic `ada_observe` repeats on a device, step for step.
    private mutating func adjust() {
        // r = E[sign]: (above - below) / seen, a logit of exactly 0 counted as below.
        let r = 2 * positive / seen - 1
        let direction: Float = r > target ? 1 : (r < target ? -1 : 0)
        probability = min(max(probability + direction * seen / rampImages, 0), 1)
        (positive, seen, steps) = (0, 0, 0)
    }

    /// The state as four floats {p, positive, seen, steps}: the device's layout.
    public var state: [Float] { [probability, positive, seen, steps] }

    /// Replaces the state by one the device kept (`state`'s layout).
    public mutating func restore(state values: [Float]) {
        precondition(values.count == 4, "an adaptive augmentation state is 4 floats")
        (probability, positive, seen, steps) = (values[0], values[1], values[2], values[3])
    }

    /// The state as a checkpoint metadata string: the four floats' bit patterns.
    public var encoded: String { state.map { String($0.bitPattern) }.joined(separator: " ") }

    /// Restores `encoded`; `path` names the checkpoint in the error.
    public mutating func restore(encoded text: String, path: String) throws(CheckpointError) {
        let values = text.split(separator: " ").compactMap { UInt32($0) }.map(Float.init(bitPattern:))
        guard values.count == 4, (0...1).contains(values[0]) else {
            throw .malformed(path: path, reason: "bad adaptive augmentation state '\(text)'")
        }
        restore(state: values)
    }
}
