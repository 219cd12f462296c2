/// The output of a projection discriminator (Miyato & Koyama 2018):
/// logit = w . phi + b + embed(y) . phi, for features phi (B, F) and class labels y.
public final class ProjectionHead: Module {
    public let linear: Linear
    public let embedding: Embedding

    private var features: Tensor?
    private var labels: [Int32] = []
    private var output: Tensor?
    private var featureGrad: Tensor?

    public init(_ name: String, features: Int, classes: Int) {
        linear = Linear("\(name).linear", inFeatures: features, outFeatures: 1)
        embedding = Embedding("\(name).embed", count: classes, dimension: features)
    }

    public var parameters: [Parameter] { linear.parameters + embedding.parameters }

    /// phi (B, F), labels (B) -> logits (B).
    public func forward(_ phi: Tensor, labels: [Int32]) -> Tensor {
        let batch = phi.shape[0], f = phi.shape[1]
        precondition(labels.count == batch, "ProjectionHead: \(labels.count) labels for batch \(batch)")
        let linearOut = linear.forward(phi)
        let e = embedding.forward(labels)
        let y = Tensor.reuse(output, shape: [batch]); output = y
        for b in 0..<batch {
            y[b] = linearOut[b] + dot(e.data + b * f, phi.data + b * f, f)
        }
        features = phi
        self.labels = labels
        return y
    }

    /// dlogits (B) -> dphi (B, F).
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let phi = features else { preconditionFailure("ProjectionHead.backward before forward") }
        let batch = phi.shape[0], f = phi.shape[1]
        let dyColumn = dy.reshaped([batch, 1])
        let dx = linear.backward(dyColumn, inputGradient: inputGradient, parameterGradients: parameterGradients)
        if parameterGradients {
            // d embed[y_b] += dy_b * phi_b
            for b in 0..<batch {
                axpy(embedding.weight.grad.data + Int(labels[b]) * f, dy[b], phi.data + b * f, f)
            }
        }
        guard let dx else { return nil }
        // dphi_b += dy_b * embed[y_b] (on top of the linear part, dy_b * w)
        for b in 0..<batch {
            axpy(dx.data + b * f, dy[b], embedding.weight.value.data + Int(labels[b]) * f, f)
        }
        return dx
    }
}
