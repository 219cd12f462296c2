import Engine

/// Consistency regularisation of D (Zhang et al. 2020, "Consistency Regularization for
/// Generative Adversarial Networks"): D should give a real image and a slightly moved copy of
/// it the same logit. The real batch is translated by up to 1/8 of the side (each image its
/// own shift, zero fill), and
///
///     L_cr = weight * mean_i (D(T(x_i)) - D(x_i))^2
///
/// is added to D's loss. It keeps D from keying on exact pixel positions; the paper reports
/// lower FID for DCGAN-style and BigGAN models at weight 10.
///
/// The gradient goes through both terms. (Holding D(x) fixed, as a target, was tried first:
/// moving every logit up or down together then lowers L_cr in each step and raises the target
/// for the next, and all of D's logits drifted by ~1.3 a step without bound.) Both passes
/// cannot hold BatchNorm's state at once, so a step runs D three times on real data: the
/// translated batch first for its logits (`translatedLogits`), then the real pass as usual
/// with L_cr's part added to its logit gradient (`addRealPart`), then the translated batch
/// again for its backward (`backwardTranslated`): one more forward than the loss needs.
public final class ConsistencyRegularization {
    public let weight: Float
    /// The translation; its random stream is saved with the training checkpoint.
    public let transform: DiffAugment
    private var translated: Tensor?
    private var logits: [Float] = []
    private var difference: [Float] = []
    private var logitGrad: Tensor?

    public init(weight: Float, seed: UInt64) {
        precondition(weight > 0, "a consistency weight must be positive, got \(weight)")
        self.weight = weight
        transform = DiffAugment(policy: .translation, seed: seed)
    }

    /// Before D's pass on `real` (what D sees, already augmented if D's inputs are): translates
    /// it and keeps D's logits for the translated copy.
    public func translatedLogits(_ discriminator: Discriminator, real: Tensor, labels: [Int32]) {
        let x = transform.forward(real)
        translated = x
        logits = discriminator.forward(x, labels: labels).values
    }

    /// With D's logits for the real batch: adds dL_cr/dD(x) to `gradient` (the real pass's
    /// logit gradient, before its backward) and returns L_cr.
    public func addRealPart(realLogits: Tensor, to gradient: Tensor) -> Float {
        let batch = realLogits.count
        precondition(logits.count == batch && gradient.count == batch, "translatedLogits first, for the same batch")
        difference = (0..<batch).map { logits[$0] - realLogits[$0] }
        var loss: Float = 0
        for i in 0..<batch {
            loss += difference[i] * difference[i]
            gradient[i] -= 2 * weight * difference[i] / Float(batch)
        }
        return weight * loss / Float(batch)
    }

    /// After the real pass's backward: D's forward and backward on the translated batch, for
    /// dL_cr/dD(T(x)).
    public func backwardTranslated(_ discriminator: Discriminator, labels: [Int32]) {
        guard let translated else { preconditionFailure("translatedLogits first") }
        let batch = difference.count
        _ = discriminator.forward(translated, labels: labels)
        let gradient = Tensor.reuse(logitGrad, shape: [batch]); logitGrad = gradient
        for i in 0..<batch { gradient[i] = 2 * weight * difference[i] / Float(batch) }
        discriminator.backward(gradient, inputGradient: false)
    }
}
