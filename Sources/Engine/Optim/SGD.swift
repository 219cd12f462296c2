/// Stochastic gradient descent with momentum and L2 weight decay, as torch.optim.SGD
/// (dampening 0): buf = momentum * buf + g; p -= lr * buf.
public final class SGD: @unchecked Sendable {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let momentum: Float
    public var weightDecay: Float
    public let velocities: [Tensor]
    private var started = false

    public init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        velocities = parameters.map { Tensor(zeros: $0.shape) }
    }

    public func update() {
        for (index, parameter) in parameters.enumerated() {
            let p = parameter.value.data, g = parameter.grad.data, buf = velocities[index].data
            for i in 0..<parameter.value.count {
                let grad = g[i] + weightDecay * p[i]
                // PyTorch starts the buffer at the first gradient rather than at 0.
                buf[i] = started ? momentum * buf[i] + grad : grad
                p[i] -= learningRate * (momentum == 0 ? grad : buf[i])
            }
        }
        started = true
    }
}
