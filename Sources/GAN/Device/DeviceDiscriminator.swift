import CUDA
import Engine
import GPUEngine

/// `Discriminator` on a `KernelDevice` (BatchNorm form): Conv -> LeakyReLU, then
/// [Conv -> BatchNorm fused with LeakyReLU] x (stages - 1), flatten, projection head.
public final class DeviceDiscriminator {
    public let model: Discriminator
    public let arena: ParameterArena
    let convolutions: [DeviceConv2d]
    let firstActivation = DeviceActivation(.leakyReLU(slope: 0.2))
    let norms: [DeviceBatchNorm]
    let head: DeviceProjectionHead

    public init(_ model: Discriminator, on device: any KernelDevice) throws(CUDAError) {
        precondition(model.spectralNorms.isEmpty, "the device discriminator has no spectral normalisation yet")
        self.model = model
        let arena = try ParameterArena(model.parameters, on: device)
        self.arena = arena
        convolutions = model.convolutions.map { DeviceConv2d($0, arena: arena) }
        var norms: [DeviceBatchNorm] = []
        for norm in model.norms { norms.append(try DeviceBatchNorm(norm, activation: .leakyReLU, slope: 0.2, arena: arena)) }
        self.norms = norms
        head = DeviceProjectionHead(model.head, arena: arena)
    }

    /// images (B, C, R, R), labels (B) -> logits (B).
    public func forward(_ images: DeviceTensor, labels: DeviceLabels) throws(CUDAError) -> DeviceTensor {
        var x = try firstActivation.forward(try convolutions[0].forward(images))
        for index in 1..<convolutions.count { x = try norms[index - 1].forward(try convolutions[index].forward(x)) }
        return try head.forward(x.reshaped([x.shape[0], x.count / x.shape[0]]), labels: labels)
    }

    /// d loss / d logits -> parameter gradients (added, when `parameterGradients`) and
    /// d loss / d images (when `inputGradient`).
    @discardableResult
    public func backward(_ dLogits: DeviceTensor, inputGradient: Bool,
                         parameterGradients: Bool = true) throws(CUDAError) -> DeviceTensor? {
        let last = convolutions.count - 1
        let finalShape = [dLogits.count, model.convolutions[last].outChannels, 4, 4]
        guard var dx = try head.backward(dLogits, parameterGradients: parameterGradients)?.reshaped(finalShape) else { return nil }
        for index in convolutions.indices.reversed() {
            dx = index > 0 ? try norms[index - 1].backward(dx, parameterGradients: parameterGradients) : try firstActivation.backward(dx)
            let needInput = index > 0 || inputGradient
            guard let next = try convolutions[index].backward(dx, inputGradient: needInput, parameterGradients: parameterGradients) else {
                return nil
            }
            dx = next
        }
        return dx
    }

    /// Parameters and running statistics into the CPU model.
    public func download() throws(CUDAError) {
        try arena.download()
        for norm in norms { try norm.downloadBuffers() }
    }
}
