import Engine

/// Consistency regularisation of D (Zhang et al. 2020, "Consistency Regularization for
/// Generative Adversarial Networks"): D should give a real image and a slightly moved copy of
/// it the same logit. After D's real pass, the real batch is translated by up to 1/8 of the
/// side (each image its own shift, zero fill), passed through D again, and
///
///     L_cr = weight * mean_i (D(T(x_i)) - D(x_i))^2
///
/// is added to D's loss, with D(x_i) held fixed (its own gradient comes from the adversarial
/// loss). It keeps D from keying on exact pixel positions; the paper reports lower FID for
/// DCGAN-style and BigGAN models at weight 10. It costs one more D forward and backward per
/// step, on the real batch.
public final class ConsistencyRegularization {
    public let weight: Float
    /// The translation; its random stream is saved with the training checkpoint.
    public let transform: DiffAugment
    private var target: [Float] = []
    private var logitGrad: Tensor?

    public init(weight: Float, seed: UInt64) {
        precondition(weight > 0, "a consistency weight must be positive, got \(weight)")
        self.weight = weight
        transform = DiffAugment(policy: .translation, seed: seed)
    }

    /// After D's forward and backward on `real` (what D saw, already augmented if D's inputs
    /// are), with `realLogits` from that forward: adds L_cr's gradient to D's parameter
    /// gradients and returns L_cr.
    public func accumulate(_ discriminator: Discriminator, real: Tensor, labels: [Int32], realLogits: Tensor) -> Float {
        target = realLogits.values   // the next forward may reuse the logits' buffer
        let logits = discriminator.forward(transform.forward(real), labels: labels)
        let batch = logits.count
        let gradient = Tensor.reuse(logitGrad, shape: [batch]); logitGrad = gradient
        var loss: Float = 0
        for i in 0..<batch {
            let difference = logits[i] - target[i]
            loss += difference * difference
            gradient[i] = 2 * weight * difference / Float(batch)
        }
        discriminator.backward(gradient, inputGradient: false)
        return weight * loss / Float(batch)
    }
}
