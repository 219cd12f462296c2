#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Binary cross-entropy on logits, mean over the batch, as PyTorch's BCEWithLogitsLoss.
///
/// loss = mean(max(x, 0) - x * t + log(1 + e^-|x|)): never overflows, and keeps precision
/// for large |x| where log(sigmoid(x)) would round to 0 or -inf.
/// d loss / d x_i = (sigmoid(x_i) - t) / B.
public struct BinaryCrossEntropyWithLogits: Sendable {
    public init() {}

    /// Loss and gradient for logits (B) against a constant target (1 real, 0 fake).
    /// `gradient` receives d loss / d logits.
    public func callAsFunction(_ logits: Tensor, target: Float, gradient: Tensor? = nil) -> Float {
        let n = logits.count
        var total: Double = 0
        for i in 0..<n {
            let x = logits[i]
            total += Double(Swift.max(x, 0) - x * target + log1pf(expf(-abs(x))))
            if let gradient { gradient[i] = (sigmoid(x) - target) / Float(n) }
        }
        return Float(total / Double(n))
    }
}

/// The hinge loss of Lim & Ye (2017), used by SNGAN and BigGAN.
/// Discriminator: mean(relu(1 - x)) on real, mean(relu(1 + x)) on fake. Generator: -mean(x).
public enum HingeLoss {
    public static func discriminator(_ logits: Tensor, real: Bool, gradient: Tensor? = nil) -> Float {
        let n = logits.count
        let sign: Float = real ? 1 : -1
        var total: Double = 0
        for i in 0..<n {
            let margin = 1 - sign * logits[i]
            total += Double(Swift.max(margin, 0))
            // At the kink (margin == 0) the subgradient 0 is used, as relu'(0) = 0 in PyTorch.
            if let gradient { gradient[i] = margin > 0 ? -sign / Float(n) : 0 }
        }
        return Float(total / Double(n))
    }

    public static func generator(_ logits: Tensor, gradient: Tensor? = nil) -> Float {
        let n = logits.count
        var total: Double = 0
        for i in 0..<n {
            total += Double(logits[i])
            if let gradient { gradient[i] = -1 / Float(n) }
        }
        return Float(-total / Double(n))
    }
}
