import CUDA
import Engine
import GPUEngine

/// `Discriminator` on a `KernelDevice`. BatchNorm form: Conv -> LeakyReLU, then
/// [Conv -> BatchNorm fused with LeakyReLU] x (stages - 1), projection head (over the last
/// maps as they are: the CPU model flattens them, the head's kernels read them so). Spectral
/// form: every Conv -> LeakyReLU, the layers computing with W / sigma from an arena of their
/// own, refreshed by `prepareForward` and handed back by `finishBackward`, as the
/// CPU model does.
public final class DeviceDiscriminator {
    public let model: Discriminator
    /// The trained parameters (what Adam updates and checkpoints keep).
    public let arena: ParameterArena
    let convolutions: [DeviceConv2d]
    let activations: [DeviceActivation]
    let norms: [DeviceBatchNorm]
    let spectralNorms: [DeviceSpectralNormalization]
    let head: DeviceProjectionHead

    public init(_ model: Discriminator, on device: any KernelDevice) throws(CUDAError) {
        self.model = model
        let arena = try ParameterArena(model.parameters, on: device)
        self.arena = arena
        let layers: any ParameterSource
        if model.spectralNorms.isEmpty {
            spectralNorms = []
            layers = arena
        } else {
            // The spectrally normalised layers' W / sigma and their gradients.
            let targets = try ParameterArena(model.spectralNorms.map(\.target), on: device)
            var spectralNorms: [DeviceSpectralNormalization] = []
            for normalization in model.spectralNorms {
                spectralNorms.append(try DeviceSpectralNormalization(normalization, weights: arena, targets: targets))
            }
            self.spectralNorms = spectralNorms
            layers = ParameterViews([targets, arena])
        }
        convolutions = model.convolutions.map { DeviceConv2d($0, arena: layers) }
        // Every convolution leaves its maps channel-major (BatchNorm, LeakyReLU and the
        // projection head take them so): no layout pass each way. Its bias goes to the next
        // layer's pass: the LeakyReLU adds it, a BatchNorm cancels it (its running mean takes
        // it; no gradient).
        for (index, convolution) in convolutions.enumerated() {
            convolution.outputChannelMajor = true
            convolution.biasUse = index > 0 && !model.norms.isEmpty ? .cancelledByBatchNorm : .addedByNextLayer
        }
        // BatchNorm fuses the activation; the first convolution (and all with spectral
        // normalisation) has its own.
        activations = model.convolutions.indices.map { _ in DeviceActivation(.leakyReLU(slope: 0.2)) }
        var norms: [DeviceBatchNorm] = []
        for norm in model.norms { norms.append(try DeviceBatchNorm(norm, activation: .leakyReLU, slope: 0.2, arena: arena)) }
        self.norms = norms
        head = DeviceProjectionHead(model.head, arena: layers)
    }

    /// Before a forward pass with changed weights: the layers get W / sigma, after one power
    /// iteration when `iterate` (once per D update). Nothing to do with BatchNorm.
    public func prepareForward(iterate: Bool) throws(CUDAError) {
        for normalization in spectralNorms { try normalization.normalize(iterate: iterate) }
    }

    /// After the backward passes of a D update: the layers' gradients, taken with respect to
    /// W / sigma, become the trained weights' gradients.
    public func finishBackward() throws(CUDAError) {
        for normalization in spectralNorms { try normalization.accumulateGradient() }
    }

    /// images (B, C, R, R), labels (B) -> logits (B).
    public func forward(_ images: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        var x = images
        for index in convolutions.indices {
            x = try convolutions[index].forward(x)
            let bias = convolutions[index].deferredBias
            x = index > 0 && !norms.isEmpty ? try norms[index - 1].forward(x, inputBias: bias)
                : try activations[index].forward(x, bias: bias)
        }
        return try head.forward(x, labels: labels)
    }

    /// d loss / d logits -> parameter gradients (added, when `parameterGradients`) and
    /// d loss / d images (when `inputGradient`).
    @discardableResult
    public func backward(_ dLogits: DeviceTensor, inputGradient: Bool,
                         parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        guard var dx = try head.backward(dLogits, parameterGradients: parameterGradients) else { return nil }
        for index in convolutions.indices.reversed() {
            dx = index > 0 && !norms.isEmpty
                ? try norms[index - 1].backward(dx, parameterGradients: parameterGradients) : try activations[index].backward(dx)
            let needInput = index > 0 || inputGradient
            guard let next = try convolutions[index].backward(dx, inputGradient: needInput, parameterGradients: parameterGradients) else {
                return nil
            }
            dx = next
        }
        return dx
    }

    /// Parameters, running statistics and the power iteration's vectors into the CPU model.
    public func download() throws(CUDAError) {
        try arena.download()
        for norm in norms { try norm.downloadBuffers() }
        for normalization in spectralNorms { try normalization.download() }
    }
}
