import Engine

/// D(x, y), a projection discriminator: Conv 4/2/1 -> LeakyReLU(0.2), then
/// [Conv 4/2/1 -> BN -> LeakyReLU(0.2)] x (stages - 1) down to (C0, 4, 4), flatten to phi,
/// logit = Linear(phi) + embed(y) . phi.
///
/// With spectral normalisation (`ModelConfiguration.discriminatorNormalization`) there is no
/// BatchNorm, and every convolution, the linear head and the class embedding compute with
/// their weight divided by its largest singular value. The trained weights are then the
/// `SpectralNormalization` wrappers' (same names); `prepareForward(iterate:)` refreshes the
/// layers' copies and `finishBackward()` hands their gradients back.
public final class Discriminator: Module {
    public let configuration: ModelConfiguration
    public let convolutions: [Conv2d]
    public let norms: [BatchNorm2d]      // one per convolution after the first; none when spectral
    private let activations: [Activation]
    /// After each convolution but the first, its BatchNorm and LeakyReLU as one layer
    /// (`BatchNormActivation`: the same parameters); none when spectral.
    private let normalized: [BatchNormActivation]
    public let head: ProjectionHead
    /// One per convolution, then the linear head and the embedding; none with BatchNorm.
    public let spectralNorms: [SpectralNormalization]

    public init(_ configuration: ModelConfiguration) {
        self.configuration = configuration
        let c = configuration
        var convolutions: [Conv2d] = []
        var norms: [BatchNorm2d] = []
        var input = c.imageChannels
        for index in 0..<c.stages {
            // Stage `stages - 1` is the full-resolution end; widths mirror the generator's.
            let output = c.channels(atStage: c.stages - 1 - index)
            convolutions.append(Conv2d("D.conv\(index + 1)", inChannels: input, outChannels: output,
                                       kernelSize: 4, stride: 2, padding: 1))
            if index > 0 && c.discriminatorNormalization == .batch {
                norms.append(BatchNorm2d("D.bn\(index + 1)", channels: output))
            }
            input = output
        }
        self.convolutions = convolutions
        self.norms = norms
        activations = convolutions.map { _ in Activation(.leakyReLU(slope: 0.2)) }
        normalized = norms.map { BatchNormActivation($0, activation: .leakyReLU(slope: 0.2)) }
        head = ProjectionHead("D.head", features: input * 16, classes: c.classes)
        if c.discriminatorNormalization == .spectral {
            spectralNorms = convolutions.map { SpectralNormalization($0.weight) }
                + [SpectralNormalization(head.linear.weight),
                   SpectralNormalization(head.embedding.weight, transposed: true)]
        } else {
            spectralNorms = []
        }
        var layerParameters: [Parameter] = []
        for index in convolutions.indices {
            layerParameters += convolutions[index].parameters
            if index > 0, !norms.isEmpty { layerParameters += norms[index - 1].parameters }
        }
        layerParameters += head.parameters
        // The wrappers' weights stand in for the layers' (same names, same places).
        let trained = Dictionary(uniqueKeysWithValues: spectralNorms.map { (ObjectIdentifier($0.target), $0.weight) })
        parameters = layerParameters.map { trained[ObjectIdentifier($0)] ?? $0 }
    }

    /// Fixed at construction (optimisers and checkpoints follow this order).
    public let parameters: [Parameter]

    public var buffers: [NamedTensor] {
        norms.flatMap(\.buffers) + spectralNorms.map { NamedTensor($0.vectorName, $0.u) }
    }

    /// Before a forward pass with changed weights: the layers get W / sigma, after one power
    /// iteration when `iterate` (once per D update). Nothing to do with BatchNorm.
    public func prepareForward(iterate: Bool) {
        for normalization in spectralNorms { normalization.normalize(iterate: iterate) }
    }

    /// After the backward passes of a D update: the layers' gradients, taken with respect to
    /// W / sigma, become the trained weights' gradients.
    public func finishBackward() {
        for normalization in spectralNorms { normalization.accumulateGradient() }
    }

    public func setTraining(_ training: Bool) { norms.forEach { $0.setTraining(training) } }

    /// images (B, C, R, R), labels (B) -> logits (B).
    public func forward(_ images: Tensor, labels: [Int32]) -> Tensor {
        var x = images
        for index in convolutions.indices {
            x = convolutions[index].forward(x)
            x = index > 0 && !normalized.isEmpty ? normalized[index - 1].forward(x) : activations[index].forward(x)
        }
        return head.forward(x.reshaped([x.shape[0], x.count / x.shape[0]]), labels: labels)
    }

    /// d loss / d logits -> parameter gradients (when `parameterGradients`) and
    /// d loss / d images (when `inputGradient`). The generator step needs only the latter:
    /// D's weights do not change there, so their gradients would be thrown away.
    @discardableResult
    public func backward(_ dLogits: Tensor, inputGradient: Bool, parameterGradients: Bool = true) -> Tensor? {
        let last = convolutions.count - 1
        let finalShape = [dLogits.count, convolutions[last].outChannels, 4, 4]
        guard var dx = head.backward(dLogits, parameterGradients: parameterGradients)?.reshaped(finalShape) else {
            return nil
        }
        for index in convolutions.indices.reversed() {
            dx = index > 0 && !normalized.isEmpty
                ? normalized[index - 1].backward(dx, parameterGradients: parameterGradients) : activations[index].backward(dx)
            let needInput = index > 0 || inputGradient
            guard let next = convolutions[index].backward(dx, inputGradient: needInput,
                                                          parameterGradients: parameterGradients) else {
                return nil
            }
            dx = next
        }
        return dx
    }
}
