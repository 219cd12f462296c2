import CUDA
import Engine
import Foundation
import GAN
import GPUEngine
import KernelEmulation
import Testing

/// Training on a device writes the same checkpoint format as the CPU: a run moves from the
/// device to the CPU and back at checkpoints, each engine starting from exactly what the other
/// saved (here the device is the CPU emulation of CUDA).
@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device engine is not emulated"))
final class DeviceTrainerTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    func options() -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 4
        options.seed = 8
        options.baseChannels = 8
        options.checkpointSeconds = 1e9
        return options
    }

    /// Everything a checkpoint holds of the models and the average.
    func state(_ trainer: Trainer) -> [[Float]] {
        (trainer.step.generator.stateTensors + trainer.step.discriminator.stateTensors).map(\.tensor.values)
            + trainer.ema.shadows.map(\.values)
    }

    @Test func aRunMovesBetweenTheDeviceAndTheCPUAtCheckpoints() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 5, value: 40)
        try data.addImages("b", count: 3, value: 90)
        let path = NSTemporaryDirectory() + "synthd-state-\(UUID().uuidString)"
        folders.append(path)
        let folder = try StateFolder(path)
        let device = EmulatedDevice()

        let onDevice = try Trainer(set: Trainer.loadDataset(data.root, state: folder, resolution: 32), state: folder,
                                   options: options(), device: device)
        #expect(onDevice.engine.deviceName == device.name)
        let initial = state(onDevice)
        try onDevice.train(.steps(3))
        let afterDevice = state(onDevice)
        #expect(afterDevice != initial, "the device's training reached the CPU model of record")
        #expect(onDevice.record.steps == 3)
        #expect(folder.readHistory().count == 3 && folder.readHistory().allSatisfy { $0.discriminator.isFinite })

        let onCPU = try Trainer(set: Trainer.loadDataset(data.root, state: folder, resolution: 32), state: folder, options: options())
        #expect(onCPU.record.steps == 3)
        #expect(state(onCPU) == afterDevice, "the CPU resumes from exactly what the device saved")
        try onCPU.train(.steps(2))
        let afterCPU = state(onCPU)

        let backOnDevice = try Trainer(set: Trainer.loadDataset(data.root, state: folder, resolution: 32), state: folder,
                                       options: options(), device: device)
        #expect(backOnDevice.record.steps == 5)
        try backOnDevice.engine.synchronize()
        #expect(state(backOnDevice) == afterCPU, "the device starts from exactly what the CPU saved")
        try backOnDevice.train(.steps(1))
        #expect(backOnDevice.record.steps == 6)
        let grid = folder.samplesPath
        #expect(FileManager.default.fileExists(atPath: grid))
    }
}

/// The captured step (one replay per step) does exactly what the eager steps do: new data,
/// augmentation draws, Adam's bias corrections and the average's warm-up all come from
/// counters in device memory, not from the host. Losses read every few steps are each
/// step's losses.
struct CapturedStepChecks {
    let device: any KernelDevice

    func capturedStepsEqualEagerSteps() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 5, value: 40)
        try data.addImages("b", count: 3, value: 90)
        let set = try TrainingSet.load(data.root, resolution: 32)
        var states: [[[Float]]] = [], reports: [[StepReport]] = []
        for captures in [false, true] {
            let step = DeviceStepComparison.makeStep(loss: .hinge, augmentation: .all, channels: 1, classes: 2)
            let average = ExponentialMovingAverage(step.generator.parameters, decay: 0.999)
            // Eager: every step read at once; captured: every second step's read brings two.
            let engine = try DeviceStepEngine(step, average: average, set: set, batch: 4, seed: 3, mostDecay: 0.999,
                                              on: device, captures: captures, reportInterval: captures ? 2 : 1)
            var run: [StepReport] = [], perCall: [Int] = []
            for _ in 0..<5 {
                let reports = try engine.step(averageDecay: 0, nextBatch: { preconditionFailure("the device draws its batches") })
                run += reports
                perCall.append(reports.count)
            }
            #expect(perCall == (captures ? [0, 2, 0, 2, 0] : [1, 1, 1, 1, 1]))
            run += try engine.flushReports()
            let none = try engine.flushReports()
            #expect(run.count == 5 && none.isEmpty)
            #expect((engine.captured != nil) == captures)
            if let captured = engine.captured {
                #expect(captured.operationCount > 50, "a whole step in one capture: \(captured.operationCount) operations")
            }
            try engine.synchronize()
            states.append((step.generator.stateTensors + step.discriminator.stateTensors).map(\.tensor.values) + average.shadows.map(\.values))
            #expect(step.generatorOptimizer.step == 5 && step.discriminatorOptimizer.step == 5)
            reports.append(run)
        }
        #expect(reports[0] == reports[1])
        #expect(states[0] == states[1], "captured and replayed steps differ from eager ones")
        #expect(Set(reports[0].map(\.discriminatorLoss)).count == 5, "new batches and draws every step")
    }

    /// Losses read 16 steps at a time are the ones each step left (read after every step
    /// here as well), for a run resumed mid-way (the device's step counter does not start at
    /// 0) and past the ring of `DeviceTrainingStep.reportSlots` steps.
    func reportsReadInBatchesAreEachStepsLosses() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let set = try TrainingSet.load(data.root, resolution: 32)
        let step = DeviceStepComparison.makeStep(loss: .hinge, augmentation: nil, channels: 1, classes: 2)
        let average = ExponentialMovingAverage(step.generator.parameters, decay: 0.999)
        let first = try DeviceStepEngine(step, average: average, set: set, batch: 2, seed: 3, mostDecay: 0.999, on: device)
        for _ in 0..<5 { _ = try first.step(averageDecay: 0) { preconditionFailure("the device draws its batches") } }
        try first.synchronize()
        #expect(step.generatorOptimizer.step == 5)

        let resumed = try DeviceStepEngine(step, average: average, set: set, batch: 2, seed: 3, mostDecay: 0.999, on: device)
        var batched: [StepReport] = [], eachStep: [StepReport] = []
        let steps = DeviceTrainingStep.reportSlots + 6
        for _ in 0..<steps {
            batched += try resumed.step(averageDecay: 0) { preconditionFailure("the device draws its batches") }
            eachStep.append(try resumed.trainingStep.report())
        }
        batched += try resumed.flushReports()
        #expect(batched.count == steps && batched == eachStep)
        #expect(Set(eachStep.map(\.discriminatorLoss)).count > steps / 2, "the steps' losses differ")
    }
}

@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device engine is not emulated"))
struct EmulatedCapturedStepTests {
    @Test func capturedStepsEqualEagerSteps() throws { try CapturedStepChecks(device: EmulatedDevice()).capturedStepsEqualEagerSteps() }
    @Test func reportsReadInBatchesAreEachStepsLosses() throws {
        try CapturedStepChecks(device: EmulatedDevice()).reportsReadInBatchesAreEachStepsLosses()
    }
}

extension DeviceTrainerTests {
    /// A resumed run (each of the daemon's time slices is one) draws on from where the last
    /// stopped: its batches are not the first run's again.
    @Test func aResumedRunDrawsNewBatches() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 6, value: 40)
        try data.addImages("b", count: 6, value: 90)
        let set = try TrainingSet.load(data.root, resolution: 32)
        let step = DeviceStepComparison.makeStep(loss: .hinge, augmentation: nil, channels: 1, classes: 2)
        let average = ExponentialMovingAverage(step.generator.parameters, decay: 0.999)
        let device = EmulatedDevice()
        func firstBatch() throws -> [Float] {
            let engine = try DeviceStepEngine(step, average: average, set: set, batch: 4, seed: 3, mostDecay: 0.999, on: device,
                                              captures: false)
            _ = try engine.step(averageDecay: 0) { preconditionFailure("the device draws its batches") }
            let batch = try engine.source.batch.values()
            try engine.synchronize()
            return batch
        }
        let first = try firstBatch(), resumed = try firstBatch()
        #expect(step.generatorOptimizer.step == 2)
        #expect(first != resumed)
    }
}

extension DeviceTrainerTests {
    /// LeCam, spectral normalisation and consistency regularisation train on the device,
    /// LeCam's anchors and the power iteration's vectors saved with the checkpoint.
    @Test func everyModelOptionTrainsOnTheDevice() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 4, value: 40)
        try data.addImages("b", count: 4, value: 90)
        let device = EmulatedDevice()
        func trainer(_ change: (inout TrainingOptions) -> Void) throws -> (Trainer, StateFolder) {
            let path = NSTemporaryDirectory() + "synthd-state-\(UUID().uuidString)"
            folders.append(path)
            let folder = try StateFolder(path)
            var options = options()
            change(&options)
            return (try Trainer(set: Trainer.loadDataset(data.root, state: folder, resolution: 32), state: folder, options: options,
                                device: device), folder)
        }

        let (leCam, folder) = try trainer { $0.leCamWeight = 0.1 }
        #expect(leCam.engine.deviceName == device.name)
        try leCam.train(.steps(2))
        let anchors = try #require(leCam.step.leCam)
        #expect(anchors.realAnchor != 0 && anchors.fakeAnchor != 0, "the device's anchors reached the CPU step")
        let resumed = try Trainer(set: Trainer.loadDataset(data.root, state: folder, resolution: 32), state: folder, options: options())
        #expect(resumed.step.leCam?.realAnchor == anchors.realAnchor && resumed.step.leCam?.fakeAnchor == anchors.fakeAnchor)

        let (spectral, _) = try trainer { $0.discriminatorNormalization = .spectral }
        #expect(spectral.engine.deviceName == device.name)
        let vectors = spectral.step.discriminator.spectralNorms.map(\.u.values)
        try spectral.train(.steps(2))
        #expect(spectral.step.discriminator.spectralNorms.map(\.u.values) != vectors, "the device's power iteration reached the CPU model")

        let (consistency, _) = try trainer { $0.consistencyWeight = 1 }
        #expect(consistency.engine.deviceName == device.name)
        let weights = consistency.step.discriminator.parameters.map(\.value.values)
        try consistency.train(.steps(2))
        #expect(consistency.step.discriminator.parameters.map(\.value.values) != weights, "D trained on the device")
    }
}
