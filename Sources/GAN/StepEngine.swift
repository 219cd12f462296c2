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
    /// One step on a real batch (noise and fake labels from the step's random stream).
    func step(real: Tensor, realLabels: [Int32]) throws -> StepReport
    /// The generator's moving average after a step.
    func updateAverage(decay: Float) throws
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

    public func step(real: Tensor, realLabels: [Int32]) throws -> StepReport { trainingStep(real: real, realLabels: realLabels) }

    public func updateAverage(decay: Float) throws {
        average.decay = decay
        average.update()
    }

    public func synchronize() throws {}
}

/// A device engine: `DeviceTrainingStep` and `DeviceMovingAverage`, fed from the CPU's batches
/// (uploaded each step; the dataset in device memory with the batch gathered there is the next
/// step for speed).
public final class DeviceStepEngine: StepEngine {
    public let trainingStep: DeviceTrainingStep
    public let average: DeviceMovingAverage
    public var deviceName: String { trainingStep.device.name }
    private var real: DeviceTensor?, noise: DeviceTensor?
    private var realLabels: DeviceBuffer?, fakeLabels: DeviceBuffer?

    /// Throws `.unsupported` when the step uses what the device engine lacks (see
    /// `DeviceTrainingStep.unsupported`), and `CUDAError`s as they come.
    public init(_ step: TrainingStep, average: ExponentialMovingAverage, on device: any KernelDevice) throws {
        if let reason = DeviceTrainingStep.unsupported(step) { throw DeviceTrainingError.unsupported(reason) }
        trainingStep = try DeviceTrainingStep(step, on: device)
        self.average = try DeviceMovingAverage(average, arena: trainingStep.generator.arena)
    }

    public func step(real batch: Tensor, realLabels labels: [Int32]) throws -> StepReport {
        let device = trainingStep.device
        let (z, drawn) = trainingStep.step.drawLatents(batch: batch.shape[0])
        let real = try DeviceTensor.reuse(self.real, shape: batch.shape, on: device)
        let noise = try DeviceTensor.reuse(self.noise, shape: z.shape, on: device)
        (self.real, self.noise) = (real, noise)
        try real.upload(batch.values)
        try noise.upload(z.values)
        let realLabels = try labelBuffer(self.realLabels, labels, on: device), fakeLabels = try labelBuffer(self.fakeLabels, drawn, on: device)
        (self.realLabels, self.fakeLabels) = (realLabels, fakeLabels)
        return try trainingStep(real: real, realLabels: DeviceLabels(storage: realLabels, count: labels.count),
                                noise: noise, fakeLabels: DeviceLabels(storage: fakeLabels, count: drawn.count))
    }

    private func labelBuffer(_ existing: DeviceBuffer?, _ labels: [Int32], on device: any KernelDevice) throws -> DeviceBuffer {
        let buffer = existing?.bytes == labels.count * 4 ? existing! : try device.allocate(bytes: labels.count * 4)
        try labels.withUnsafeBytes { try device.write($0, to: buffer.address) }
        return buffer
    }

    public func updateAverage(decay: Float) throws { try average.update(decay: decay) }

    public func synchronize() throws {
        try trainingStep.download()
        try average.download()
    }
}

/// Why a model does not train on a device.
public enum DeviceTrainingError: Error, Equatable, CustomStringConvertible {
    case unsupported(String)

    public var description: String {
        switch self {
        case .unsupported(let reason): "this model cannot train on the GPU: \(reason); it trains on the CPU"
        }
    }
}
