import Engine

/// The mode-seeking term in G's loss (Mao et al. 2019, "Mode Seeking Generative Adversarial
/// Networks for Diverse Image Synthesis"): two latent vectors of one class should give images
/// about as far apart as the vectors are, so that G does not send many of them to one image.
/// A batch's second half repeats its first half's fake labels (`pairLabels`), and over the
/// pairs (i, i + B/2), with x = G(z, y),
///
///     lz = mean|x_i - x_{i+B/2}| / mean|z_i - z_{i+B/2}|,   L_ms = weight / (lz + 1e-5)
///
/// is added to G's loss (the paper's reciprocal form: a pair drawn to one image costs much, a
/// spread one little). Why synthd has it: every generator measured drew samples that a
/// classifier of the real images found easier and less spread than new real images, and mixed
/// into a small dataset they did not help it; with this term at weight 1 they were as spread as
/// new real images and the mixed classifier gained (docs/quality.md, "A mode-seeking term").
///
/// D is not involved: the term reads G's output and its input only, so its gradient is added
/// to dL/dx before G's backward. An odd batch's last image has no partner and no part in it.
public struct ModeSeekingRegularization: Sendable, Equatable {
    public let weight: Float
    /// Keeps the reciprocal finite when a pair's images coincide (the paper's value).
    public static let epsilon = 1e-5

    public init(weight: Float) {
        precondition(weight > 0 && weight.isFinite, "a mode-seeking weight must be positive, got \(weight)")
        self.weight = weight
    }

    /// Gives the second half of a batch's labels the first half's, pair by pair: the pairs the
    /// term compares are of one class (the class decides much of an image; two classes' images
    /// would be far apart whatever G does with z).
    public static func pairLabels(_ labels: inout [Int32]) {
        let half = labels.count / 2
        for i in half..<2 * half { labels[i] = labels[i - half] }
    }

    /// L_ms for generated images `fake` ([B, ...]) drawn from `noise` ([B, latent]); its
    /// gradient in the images is added to `gradient` (the shape of `fake`).
    @discardableResult
    public func callAsFunction(fake: Tensor, noise: Tensor, gradient: Tensor) -> Float {
        let batch = fake.shape[0], half = batch / 2
        precondition(noise.shape[0] == batch && gradient.count == fake.count, "one latent vector and one gradient per image")
        guard half > 0 else { return 0 }
        // Image i's partner is `half` images on: element j of the first half pairs with j + images.
        let images = half * (fake.count / batch), codes = half * (noise.count / batch)
        let x = fake.data, z = noise.data
        var imageSum: Double = 0, codeSum: Double = 0
        for j in 0..<images { imageSum += Double(abs(x[j] - x[j + images])) }
        for j in 0..<codes { codeSum += Double(abs(z[j] - z[j + codes])) }
        let code = codeSum / Double(codes)
        guard code > 0 else { return 0 }  // pairs of equal vectors say nothing
        let denominator = imageSum / Double(images) / code + Self.epsilon
        // dL/dx_j = -weight / (lz + eps)^2 * sign(x_j - x_{j+images}) / (images * code); its partner the opposite.
        let scale = Float(-Double(weight) / (denominator * denominator) / (Double(images) * code))
        let g = gradient.data
        for j in 0..<images {
            let difference = x[j] - x[j + images]
            let part: Float = difference > 0 ? scale : difference < 0 ? -scale : 0
            g[j] += part
            g[j + images] -= part
        }
        return Float(Double(weight) / denominator)
    }

    /// lz, the pairs' mean image distance over their mean code distance, from the term's
    /// value L = weight / (lz + epsilon) (what the CPU step and the device both report): how
    /// far apart G draws two codes of one class, the diversity a collapsing G loses first.
    /// Nil for L = 0 (a batch with no pair, or pairs of equal codes).
    public func pairSpread(fromLoss loss: Float) -> Float? {
        guard loss > 0, loss.isFinite else { return nil }
        return Float(Double(weight) / Double(loss) - Self.epsilon)
    }
}
