import CUDA
import Engine
#if canImport(Glibc)
import Glibc
#endif

/// Adam over a whole `ParameterArena` in one launch, with the arithmetic of
/// `Engine/Optim/Adam.swift` (the CPU optimiser it mirrors gives the hyperparameters, the step
/// count and the moments, and gets them back for a checkpoint).
public final class DeviceAdam {
    public let arena: ParameterArena
    public let optimizer: Adam
    public let firstMoments: DeviceTensor, secondMoments: DeviceTensor
    public private(set) var step: Int

    public init(_ optimizer: Adam, arena: ParameterArena) throws(CUDAError) {
        precondition(optimizer.parameters.map(ObjectIdentifier.init) == arena.parameters.map(ObjectIdentifier.init),
                     "the optimiser and the arena must hold the same parameters")
        self.arena = arena
        self.optimizer = optimizer
        step = optimizer.step
        firstMoments = try DeviceTensor(on: arena.device, shape: [arena.count])
        secondMoments = try DeviceTensor(on: arena.device, shape: [arena.count])
        try arena.device.fill(firstMoments, 0)
        try arena.device.fill(secondMoments, 0)
        for (index, parameter) in arena.parameters.enumerated() {
            try view(firstMoments, parameter).upload(optimizer.firstMoments[index].values)
            try view(secondMoments, parameter).upload(optimizer.secondMoments[index].values)
        }
    }

    /// The moments' view of `parameter`: the arena's layout.
    private func view(_ moments: DeviceTensor, _ parameter: Parameter) -> DeviceTensor {
        let value = arena.value(parameter)
        return DeviceTensor(storage: moments.storage, offset: value.offset - arena.values.offset, shape: value.shape)
    }

    /// One update of every parameter from the arena's gradients.
    public func update() throws(CUDAError) {
        step += 1
        let o = optimizer, t = Float(step)
        let correction1 = 1 - pow(o.beta1, t), correction2 = 1 - pow(o.beta2, t)
        try arena.device.launchElementwise("adam_step", count: arena.count,
                                           [arena.values.argument, arena.gradients.argument, firstMoments.argument,
                                            secondMoments.argument, .int64(arena.count), .float(o.learningRate), .float(o.beta1),
                                            .float(o.beta2), .float(o.eps), .float(correction1), .float(correction2),
                                            .float(o.weightDecay), .int32(o.decoupledWeightDecay ? 1 : 0)])
    }

    /// The moments and step count into the CPU optimiser (before a checkpoint save).
    public func download() throws(CUDAError) {
        for (index, parameter) in arena.parameters.enumerated() {
            let first = try view(firstMoments, parameter).values(), second = try view(secondMoments, parameter).values()
            for i in first.indices { optimizer.firstMoments[index][i] = first[i]; optimizer.secondMoments[index][i] = second[i] }
        }
        optimizer.restore(step: step)
    }
}
