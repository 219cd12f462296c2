/// An exponential moving average of parameters: shadow = decay * shadow + (1 - decay) * value.
/// Sampling from the averaged generator gives steadier images than the last iterate
/// (Yazici et al. 2019).
public final class ExponentialMovingAverage: @unchecked Sendable {
    public let parameters: [Parameter]
    public var decay: Float
    public let shadows: [Tensor]

    public init(_ parameters: [Parameter], decay: Float = 0.999) {
        precondition((0...1).contains(decay), "EMA decay must be in [0, 1], got \(decay)")
        self.parameters = parameters
        self.decay = decay
        shadows = parameters.map { p in
            let t = Tensor(zeros: p.shape)
            t.copy(from: p.value)
            return t
        }
    }

    public func update() {
        let d = decay
        for (shadow, parameter) in zip(shadows, parameters) {
            let s = shadow.data, p = parameter.value.data
            for i in 0..<shadow.count { s[i] = d * s[i] + (1 - d) * p[i] }
        }
    }

    /// Copies the averages into `target`'s parameters (a second model of the same shapes).
    public func copy(into target: [Parameter]) {
        precondition(target.count == shadows.count, "EMA: \(target.count) targets for \(shadows.count) averages")
        for (shadow, parameter) in zip(shadows, target) { parameter.value.copy(from: shadow) }
    }
}
