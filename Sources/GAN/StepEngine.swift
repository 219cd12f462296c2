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
    ///
    /// Returns the reports of the steps not reported yet, oldest first, ending with this one;
    /// or none: an engine may hold them back and read several at once (a device does, so that
    /// the host does not wait for every step; see `DeviceStepEngine.reportInterval`).
    func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> [StepReport]
    /// The reports held back, oldest first, up to the last step (waits for it).
    func flushReports() throws -> [StepReport]
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

    public func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> [StepReport] {
        let (images, labels) = nextBatch()
        let report = trainingStep(real: images, realLabels: labels)
        average.decay = averageDecay
        average.update()
        return [report]
    }

    public func flushReports() throws -> [StepReport] { [] }

    public func synchronize() throws {}
}

/// A device engine: the dataset in device memory, each step's batch and latents drawn there
/// (`DeviceBatchSource`), `DeviceTrainingStep` and the average (`DeviceMovingAverage`, its
/// warm-up from G's update count); after two eager steps the whole step is captured once
/// (`KernelDevice.capture`: a CUDA graph) and replayed, so that a step costs one launch.
/// The steps' losses are read every `reportInterval` steps, in one copy, so that the host
/// queues the next replays while the device works instead of waiting for each step.
public final class DeviceStepEngine: StepEngine {
    public let trainingStep: DeviceTrainingStep
    public let average: DeviceMovingAverage
    public let source: DeviceBatchSource
    public var deviceName: String { trainingStep.device.name }
    let mostDecay: Float
    let captures: Bool
    private var eagerSteps = 0
    /// Steps between reads of their losses (at most `DeviceTrainingStep.reportSlots`).
    public let reportInterval: Int
    /// The step counter's value at the first step, steps taken since, and how many of them
    /// have not been reported.
    private let firstStep: Int
    private var stepsTaken = 0, unreported = 0
    /// The captured step, once there is one.
    public private(set) var captured: (any CapturedWork)?

    /// Throws `CUDAError`s as they come.
    /// `captures`: replay a captured step after two eager ones (false: every step eager).
    /// `reportInterval`: 16 by default, 0.02 s of batch-64 steps on an H200; 1 reads every step.
    public init(_ step: TrainingStep, average: ExponentialMovingAverage, set: TrainingSet, batch: Int, seed: UInt64,
                mostDecay: Float, on device: any KernelDevice, captures: Bool = true, reportInterval: Int = 16) throws {
        precondition((1...DeviceTrainingStep.reportSlots).contains(reportInterval), "reportInterval \(reportInterval)")
        self.reportInterval = reportInterval
        firstStep = step.generatorOptimizer.step   // where the device's step counter starts
        trainingStep = try DeviceTrainingStep(step, on: device)
        self.average = try DeviceMovingAverage(average, arena: trainingStep.generator.arena)
        let configuration = step.generator.configuration
        source = try DeviceBatchSource(set, batch: batch, latentSize: configuration.latentSize, classes: configuration.classes,
                                       seed: seed, pairedLabels: step.modeSeeking != nil, on: device)
        self.mostDecay = mostDecay
        self.captures = captures
    }

    public func step(averageDecay: Float, nextBatch: () -> (images: Tensor, labels: [Int32])) throws -> [StepReport] {
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
        stepsTaken += 1
        unreported += 1
        return unreported >= reportInterval ? try flushReports() : []
    }

    public func flushReports() throws -> [StepReport] {
        guard unreported > 0 else { return [] }
        let reports = try trainingStep.reports(last: unreported, through: firstStep + stepsTaken - 1)
        unreported = 0
        return reports
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

