import Engine

/// LeCam regularisation of D (Tseng et al. 2021, "Regularizing Generative Adversarial Networks
/// under Limited Data"): D's logits for real images are pulled toward a moving average of its
/// logits for generated ones, and the other way round,
///
///     L_lc = weight * (mean_i relu(D(x_i) - anchor_fake)^2 + mean_j relu(anchor_real - D(G(z_j)))^2)
///
/// added to D's loss. On a few hundred images D otherwise learns to tell every training image
/// apart from every sample, its logits drift apart without bound and G's gradient stops
/// carrying shape; the paper shows the term bounds a divergence that is robust to that, and
/// reports it helping most where DiffAugment alone falls short (limited data).
///
/// The anchors are exponential moving averages (decay 0.99) of D's mean logit on real and on
/// generated batches, updated after each half of a D step has used them: the real half uses
/// the fake anchor as it stood after the last step (the paper's code folds the current batch
/// in first; with decay 0.99 the difference is a hundredth of one batch). They are part of
/// the training state and saved with the checkpoint.
public final class LeCamRegularization {
    public let weight: Float
    public let decay: Float = 0.99
    /// Moving averages of D's mean logit on real and on generated images.
    public internal(set) var realAnchor: Float = 0
    public internal(set) var fakeAnchor: Float = 0

    public init(weight: Float) {
        precondition(weight > 0, "a LeCam weight must be positive, got \(weight)")
        self.weight = weight
    }

    /// With D's logits for the real batch: adds dL/dD(x) to `gradient` (before the real half's
    /// backward), moves the real anchor, and returns the real half's L_lc.
    public func addRealPart(realLogits: Tensor, to gradient: Tensor) -> Float {
        let loss = addPart(realLogits, gradient, excessOver: fakeAnchor, sign: 1)
        realAnchor = decay * realAnchor + (1 - decay) * mean(realLogits)
        return loss
    }

    /// The same for the generated batch: relu(anchor_real - D(G(z)))^2.
    public func addFakePart(fakeLogits: Tensor, to gradient: Tensor) -> Float {
        let loss = addPart(fakeLogits, gradient, excessOver: realAnchor, sign: -1)
        fakeAnchor = decay * fakeAnchor + (1 - decay) * mean(fakeLogits)
        return loss
    }

    /// weight * mean relu(sign * (logit - anchor))^2 and its gradient, added to `gradient`.
    private func addPart(_ logits: Tensor, _ gradient: Tensor, excessOver anchor: Float, sign: Float) -> Float {
        let batch = logits.count
        precondition(gradient.count == batch, "one gradient per logit")
        var loss: Float = 0
        for i in 0..<batch {
            let excess = sign * (logits[i] - anchor)
            guard excess > 0 else { continue }
            loss += excess * excess
            gradient[i] += 2 * weight * sign * excess / Float(batch)
        }
        return weight * loss / Float(batch)
    }

    private func mean(_ t: Tensor) -> Float { sum(t.data, t.count) / Float(t.count) }

    /// "real fake" as exact bit patterns, for checkpoint metadata.
    var encodedAnchors: String { "\(realAnchor.bitPattern) \(fakeAnchor.bitPattern)" }

    /// The anchors of `encodedAnchors`; `path` names the checkpoint in the error.
    static func decodeAnchors(_ text: String, path: String) throws(CheckpointError) -> (real: Float, fake: Float) {
        let parts = text.split(separator: " ").compactMap { UInt32($0) }
        guard parts.count == 2 else { throw .malformed(path: path, reason: "bad LeCam anchors '\(text)'") }
        return (Float(bitPattern: parts[0]), Float(bitPattern: parts[1]))
    }
}
