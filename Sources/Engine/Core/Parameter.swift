/// A trainable tensor and the gradient that backward passes accumulate into (`+=`).
public final class Parameter: @unchecked Sendable {
    public let name: String
    public let value: Tensor
    public let grad: Tensor

    public init(_ name: String, shape: [Int]) {
        self.name = name
        self.value = Tensor(zeros: shape)
        self.grad = Tensor(zeros: shape)
    }

    public var shape: [Int] { value.shape }
}

/// A tensor saved with a model that is not trained by gradients (BatchNorm running statistics).
public struct NamedTensor: @unchecked Sendable {
    public let name: String
    public let tensor: Tensor
    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// Anything that owns parameters: a layer or a model built from layers.
///
/// A layer's `forward` returns a tensor the layer owns, valid until its next forward; its
/// `backward` takes the gradient of the loss with respect to that output, adds the
/// parameter gradients into `Parameter.grad` and returns the input gradient.
public protocol Module: AnyObject {
    /// Trainable parameters in a fixed order (optimiser state and checkpoints follow it).
    var parameters: [Parameter] { get }
    /// Non-trainable state saved in checkpoints.
    var buffers: [NamedTensor] { get }
    /// Switches between training and inference behaviour (BatchNorm).
    func setTraining(_ training: Bool)
}

extension Module {
    public var buffers: [NamedTensor] { [] }
    public func setTraining(_ training: Bool) {}

    public func zeroGradients() {
        for parameter in parameters { parameter.grad.zero() }
    }

    /// Every tensor a checkpoint saves for this module: parameters, then buffers.
    public var stateTensors: [NamedTensor] {
        parameters.map { NamedTensor($0.name, $0.value) } + buffers
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }
}
