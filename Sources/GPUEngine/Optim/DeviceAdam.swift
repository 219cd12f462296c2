import CUDA
import Engine

/// Adam over a whole `ParameterArena` in one launch, with the arithmetic of
/// `Engine/Optim/Adam.swift` (the CPU optimiser it mirrors gives the hyperparameters, the step
/// count and the moments, and gets them back for a checkpoint).
public final class DeviceAdam {
    public let arena: ParameterArena
    public let optimizer: Adam
    public let firstMoments: DeviceTensor, secondMoments: DeviceTensor
    /// Updates so far, in device memory (a 64-bit count): the bias corrections are computed
    /// from it on the device, so that a captured step replays them right.
    public let stepCount: DeviceBuffer

    public init(_ optimizer: Adam, arena: ParameterArena) throws(CUDAError) {
        precondition(optimizer.parameters.map(ObjectIdentifier.init) == arena.parameters.map(ObjectIdentifier.init),
                     "the optimiser and the arena must hold the same parameters")
        self.arena = arena
        self.optimizer = optimizer
        stepCount = try arena.device.upload(count: optimizer.step)
        firstMoments = try arena.buffer(holding: optimizer.firstMoments)
        secondMoments = try arena.buffer(holding: optimizer.secondMoments)
    }

    /// One update of every parameter from the arena's gradients, then the count advanced.
    public func update() throws(CUDAError) {
        let o = optimizer
        try arena.device.launchElementwise("adam_step_device", count: arena.count,
                                           [arena.values.argument, arena.gradients.argument, firstMoments.argument,
                                            secondMoments.argument, .int64(arena.count), .float(o.learningRate), .float(o.beta1),
                                            .float(o.beta2), .float(o.eps), .buffer(stepCount), .float(o.weightDecay),
                                            .int32(o.decoupledWeightDecay ? 1 : 0)])
        try arena.device.launch("adam_advance", grid: 1, block: 1, [.buffer(stepCount)])
    }

    /// The update count, read from the device.
    public func step() throws(CUDAError) -> Int {
        let words = try stepCount.int32s(2)
        return Int(UInt32(bitPattern: words[0])) | Int(words[1]) << 32
    }

    /// The moments and step count into the CPU optimiser (before a checkpoint save).
    public func download() throws(CUDAError) {
        try arena.download(firstMoments, into: optimizer.firstMoments)
        try arena.download(secondMoments, into: optimizer.secondMoments)
        optimizer.restore(step: try step())
    }
}
