import CUDA
import Engine

/// An exponential moving average of a whole `ParameterArena` in one launch per update, as
/// `Engine/Optim/ExponentialMovingAverage.swift` (which gives the starting shadows and gets
/// them back for a checkpoint).
public final class DeviceMovingAverage {
    public let arena: ParameterArena
    public let average: ExponentialMovingAverage
    public let shadows: DeviceTensor

    public init(_ average: ExponentialMovingAverage, arena: ParameterArena) throws(CUDAError) {
        precondition(average.parameters.map(ObjectIdentifier.init) == arena.parameters.map(ObjectIdentifier.init),
                     "the average and the arena must hold the same parameters")
        self.arena = arena
        self.average = average
        shadows = try arena.buffer(holding: average.shadows)
    }

    /// shadow = decay * shadow + (1 - decay) * value, for every parameter.
    public func update(decay: Float) throws(CUDAError) {
        average.decay = decay
        try arena.device.launchElementwise("ema_update", count: arena.count,
                                           [shadows.argument, arena.values.argument, .int64(arena.count), .float(decay)])
    }

    /// The same with the decay's warm-up, min(most, (1 + t) / (10 + t)), from the update count
    /// `step` in device memory (see `ema_update_warmup`).
    public func update(mostDecay: Float, step: DeviceBuffer) throws(CUDAError) {
        try arena.device.launchElementwise("ema_update_warmup", count: arena.count,
                                           [shadows.argument, arena.values.argument, .int64(arena.count), .float(mostDecay), .buffer(step)])
    }

    /// The shadows into the CPU average (before a checkpoint save or sampling on the CPU).
    public func download() throws(CUDAError) { try arena.download(shadows, into: average.shadows) }
}
