import CUDA
import Engine
import GPUEngine

/// Where the trainer's steps run: the CPU engine, or a `KernelDevice` (a GPU). Either way the
/// CPU `TrainingStep` and `ExponentialMovingAverage` are the model of record: `synchronize`
/// brings them up to date before a checkpoint, a sample grid or generation, so checkpoints are
/// the same format wherever a model trained, and a run moves between engines at any
/// checkpoint.
public protocol StepEngine: AnyObject {
    /// Says where, for logs and `synthd status` ("cpu", "NVIDIA H200 (sm_90)").
    var deviceName: String { get }
    /// One training step, then the generator's moving average with `averageDecay` (a device
    /// engine computes the same warm-up from its own update count). `nextBatch` gives the real
    /// batch to an engine that reads it from the host.
    func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> StepReport
    /// The CPU step's models and optimisers and the CPU average, as the engine holds them.
    func synchronize() throws
}

/// The CPU engine: the step and the average themselves.
public final class CPUStepEngine: StepEngine {
    public let trainingStep: TrainingStep
    public let average: ExponentialMovingAverage
    public var deviceName: String { "cpu" }

    public init(_ trainingStep: TrainingStep, average: ExponentialMovingAverage) {
        self.trainingStep = trainingStep
        self.average = average
    }

    public func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> StepReport {
        let (images, labels) = nextBatch()
        let report = trainingStep(real: images, realLabels: labels)
        average.decay = averageDecay
        average.update()
        return report
    }

    public func synchronize() throws {}
}

/// A device engine: the dataset in device memory, each step's batch and latents drawn there
/// (`DeviceBatchSource`), `DeviceTrainingStep` and the average (`DeviceMovingAverage`, its
/// warm-up from G's update count); after two eager steps the whole step is captured once
/// (`KernelDevice.capture`: a CUDA graph) and replayed, so that a step costs one launch.
public final class DeviceStepEngine: StepEngine {
    public let trainingStep: DeviceTrainingStep
    public let average: DeviceMovingAverage
    public let source: DeviceBatchSource
    public var deviceName: String { trainingStep.device.name }
    let mostDecay: Float
    let captures: Bool
    private var eagerSteps = 0
    /// The captured step, once there is one.
    public private(set) var captured: (any CapturedWork)?

    /// Throws `CUDAError`s as they come.
    /// `captures`: replay a captured step after two eager ones (false: every step eager).
    public init(_ step: TrainingStep, average: ExponentialMovingAverage, set: TrainingSet, batch: Int, seed: UInt64,
                mostDecay: Float, on device: any KernelDevice, captures: Bool = true) throws {
        trainingStep = try DeviceTrainingStep(step, on: device)
        self.average = try DeviceMovingAverage(average, arena: trainingStep.generator.arena)
        let configuration = step.generator.configuration
        source = try DeviceBatchSource(set, batch: batch, latentSize: configuration.latentSize, classes: configuration.classes,
                                       seed: seed, on: device)
        self.mostDecay = mostDecay
        self.captures = captures
    }

    public func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> StepReport {
        let device = trainingStep.device
        if captured == nil && captures && eagerSteps >= 2 {
            // Layers have their buffers from the eager steps: the capture allocates nothing.
            captured = try device.capture { () throws(CUDAError) in try runOnce() }
        }
        if let captured {
            try device.replay(captured)
        } else {
            try runOnce()
            eagerSteps += 1
        }
        return try trainingStep.report()
    }

    private func runOnce() throws(CUDAError) {
        try trainingStep.run(from: source)
        try average.update(mostDecay: mostDecay, step: trainingStep.generatorStepCount)
    }

    public func synchronize() throws {
        try trainingStep.download()
        try average.download()
    }
}

