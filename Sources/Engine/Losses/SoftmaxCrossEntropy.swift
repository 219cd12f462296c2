#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy on logits (B, K) against class labels, mean over the batch, as
/// PyTorch's CrossEntropyLoss. Computed with the log-sum-exp shift so that large logits do
/// not overflow. d loss / d logits = (softmax(logits) - onehot(label)) / B.
public struct SoftmaxCrossEntropy: Sendable {
    public init() {}

    public func callAsFunction(_ logits: Tensor, labels: [Int32], gradient: Tensor? = nil) -> Float {
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        precondition(labels.count == batch, "\(labels.count) labels for \(batch) rows")
        var total: Double = 0
        for b in 0..<batch {
            let row = logits.data + b * classes
            var top = row[0]
            for k in 1..<classes { top = max(top, row[k]) }
            var denominator: Float = 0
            for k in 0..<classes { denominator += expf(row[k] - top) }
            let logDenominator = logf(denominator) + top
            total += Double(logDenominator - row[Int(labels[b])])
            if let gradient {
                let g = gradient.data + b * classes
                for k in 0..<classes { g[k] = expf(row[k] - logDenominator) / Float(batch) }
                g[Int(labels[b])] -= 1 / Float(batch)
            }
        }
        return Float(total / Double(batch))
    }

    /// The index of the largest logit in each row.
    public static func predictions(_ logits: Tensor) -> [Int] {
        let (batch, classes) = (logits.shape[0], logits.shape[1])
        return (0..<batch).map { b in
            let row = logits.data + b * classes
            var best = 0
            for k in 1..<classes where row[k] > row[best] { best = k }
            return best
        }
    }
}
