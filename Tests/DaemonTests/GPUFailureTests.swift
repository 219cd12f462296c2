import CUDA
import Daemon
import Foundation
import GAN
import Imaging
import KernelEmulation
import Logging
import LogTestSupport
import Testing

/// A job whose GPU fails: under `device = "auto"` it is retried at once on the CPU from what
/// is on disk, and says so; with an explicit `cuda` it fails with a message naming the
/// dataset, the GPU and what it had, to be retried later. Either way the last checkpoint is
/// untouched and nothing half-made is published. The GPU here is the CPU emulation with a
/// fault injected (`FailingDevice`).
@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device engine is not emulated"))
final class GPUFailureTests {
    let root = NSTemporaryDirectory() + "synthd-gpu-failure-\(UUID().uuidString)"
    let lines = CapturedLines()
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func makeScheduler() throws -> Scheduler {
        var configuration = try JobRunnerTests.petsUnder(root)
        configuration.trainingMinutes = 0.005  // 0.3 s
        configuration.classCheck = false
        return try Scheduler(configuration: configuration, logger: Logger(label: "t"))
    }

    func runner(_ scheduler: Scheduler, _ compute: ComputeDevice) -> JobRunner {
        let lines = self.lines
        return JobRunner(configuration: scheduler.configuration, store: scheduler.store, output: scheduler.output,
                         logger: .capturing(into: lines), compute: compute)
    }

    /// The state folder's checkpoint and record, byte for byte.
    func savedModel(_ scheduler: Scheduler) throws -> [Data] {
        let folder = scheduler.store.folder("pets")
        return try ["/checkpoint.ckpt", "/model.json"].map { try Data(contentsOf: URL(fileURLWithPath: folder + $0)) }
    }

    func trainedOnTheCPU(_ scheduler: Scheduler) throws -> Job {
        let job = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let outcome = runner(scheduler, .cpu()).run(job, shouldStop: { false })
        guard case .completed = outcome else { throw Failure("training on the CPU: \(outcome)") }
        return job
    }

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ d: String) { description = d } }

    @Test func outOfMemoryWithAnExplicitGPUFailsNamingTheDatasetAndKeepsTheCheckpoint() throws {
        let scheduler = try makeScheduler()
        let job = try trainedOnTheCPU(scheduler)
        let before = try savedModel(scheduler)
        let steps = try #require(try StateFolder(scheduler.store.folder("pets")).readRecord()).steps

        let gpu = FailingDevice(EmulatedDevice(), fault: .outOfMemory(afterAllocations: 0))
        let compute = ComputeDevice(gpu, label: "cuda:0 (test GPU)", request: .cuda(0))
        guard case .failed(let message, let retry, _) = runner(scheduler, compute).run(job, shouldStop: { false }) else {
            Issue.record("the job did not fail"); return
        }
        #expect(message == "training 'pets' on cuda:0 (test GPU) failed: GPU memory exhausted: asked for 64 MiB with 3 MiB free "
            + "of 81920 MiB; the last checkpoint (step-\(steps)) is intact")
        #expect(retry == .later, "the GPU may have room later: not the dataset's fault")
        #expect(try savedModel(scheduler) == before, "the checkpoint and record are untouched")
        #expect(compute.current.gpu != nil, "running out of memory does not retire the GPU")
    }

    /// The context lost after a few steps on the GPU (a few hundred launches): the job fails
    /// before its next checkpoint, and the one on disk is the CPU's, byte for byte.
    @Test func aContextLostMidTrainingLeavesTheLastCheckpoint() throws {
        let scheduler = try makeScheduler()
        let job = try trainedOnTheCPU(scheduler)
        let before = try savedModel(scheduler)
        var configuration = scheduler.configuration
        // Ended by the failure, however slow the emulation runs on a busy machine: a budget
        // and a checkpoint interval it cannot reach first (a minute's budget ran out before
        // the 400th operation under a parallel build).
        configuration.trainingMinutes = 30
        configuration.checkpointSeconds = 86_400
        let gpu = FailingDevice(EmulatedDevice(), fault: .lostContext(afterOperations: 400))
        let runner = JobRunner(configuration: configuration, store: scheduler.store, output: scheduler.output, logger: Logger(label: "t"),
                               compute: ComputeDevice(gpu, label: "cuda:0 (test GPU)", request: .cuda(0)))
        guard case .failed(let message, .later, _) = runner.run(job, shouldStop: { false }) else { Issue.record("did not fail"); return }
        #expect(message.contains("(the GPU's context is lost: synthd cannot use this GPU again until it restarts)"), "\(message)")
        #expect(gpu.operationsRun == 400, "it failed in the middle of training")
        #expect(try savedModel(scheduler) == before)
    }

    @Test func outOfMemoryUnderAutoIsRetriedOnTheCPUAndSaysSo() throws {
        let scheduler = try makeScheduler()
        let job = try trainedOnTheCPU(scheduler)
        let steps = try #require(try StateFolder(scheduler.store.folder("pets")).readRecord()).steps

        let gpu = FailingDevice(EmulatedDevice(), fault: .outOfMemory(afterAllocations: 0))
        let compute = ComputeDevice(gpu, label: "cuda:0 (test GPU)", request: .auto)
        let outcome = runner(scheduler, compute).run(job, shouldStop: { false })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        let record = try #require(try StateFolder(scheduler.store.folder("pets")).readRecord())
        #expect(record.steps > steps, "the CPU trained on from the last checkpoint")
        #expect(scheduler.store.get("pets").device == "cpu (after a GPU failure)")
        #expect(lines.all.contains("warning training 'pets' on cuda:0 (test GPU) failed: GPU memory exhausted: asked for 64 MiB "
            + "with 3 MiB free of 81920 MiB; the last checkpoint (step-\(steps)) is intact; retrying on the CPU (device = auto)"),
                "\(lines.all)")
        #expect(compute.current.gpu != nil, "the next job tries the GPU again")
    }

    /// A lost context fails every later call: under `auto` the GPU is retired after the first
    /// such failure and the next jobs go straight to the CPU without touching it.
    @Test func aLostContextUnderAutoRetiresTheGPU() throws {
        let scheduler = try makeScheduler()
        let gpu = FailingDevice(EmulatedDevice(), fault: .lostContext(afterOperations: 0))
        let compute = ComputeDevice(gpu, label: "cuda:0 (test GPU)", request: .auto)
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        let outcome = runner(scheduler, compute).run(train, shouldStop: { false })
        guard case .completed = outcome else { Issue.record("\(outcome)"); return }
        #expect(compute.current.gpu == nil)
        #expect(compute.current.label == "cpu (the GPU failed: \(FailingDevice.lostContextError))")
        #expect(lines.all.contains { $0.hasPrefix("warning training 'pets' on cuda:0 (test GPU) failed: CUDA driver call cuLaunchKernel failed: "
            + "an illegal memory access was encountered (700) (the GPU's context is lost: synthd cannot use this GPU again until it "
            + "restarts); no checkpoint had been written yet; retrying on the CPU (device = auto); the next jobs run on the CPU too") },
                "\(lines.all)")

        let refused = gpu.refusedCalls
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = runner(scheduler, compute).run(generate, shouldStop: { false }) else { Issue.record("generation failed"); return }
        #expect(gpu.refusedCalls == refused, "the retired GPU was not asked again")
        #expect(scheduler.store.get("pets").device?.hasPrefix("cpu (the GPU failed") == true)
        #expect(scheduler.output.imagesPublished("pets") > 0)
    }

    /// Generation on a GPU that fails publishes nothing (explicit `cuda`), or publishes what
    /// the CPU then made (`auto`).
    @Test func aGenerationWhoseGPUFailsPublishesNothingOrTheCPUsImages() throws {
        let scheduler = try makeScheduler()
        _ = try trainedOnTheCPU(scheduler)
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        let explicit = ComputeDevice(FailingDevice(EmulatedDevice(), fault: .lostContext(afterOperations: 3)),
                                     label: "cuda:0 (test GPU)", request: .cuda(0))
        let failed = runner(scheduler, explicit).run(generate, shouldStop: { false })
        guard case .failed(let message, .later, _) = failed else { Issue.record("the generation did not fail: \(failed)"); return }
        #expect(message.hasPrefix("generating images of 'pets' on cuda:0 (test GPU) failed: CUDA driver call cuLaunchKernel failed"))
        #expect(message.hasSuffix("; nothing of this generation was published"))
        #expect(scheduler.output.current("pets") == nil)
        #expect(explicit.current.gpu != nil, "an explicit GPU is not retired: its jobs fail and are retried later")

        let auto = ComputeDevice(FailingDevice(EmulatedDevice(), fault: .lostContext(afterOperations: 3)),
                                 label: "cuda:0 (test GPU)", request: .auto)
        guard case .completed = runner(scheduler, auto).run(generate, shouldStop: { false }) else { Issue.record("not retried"); return }
        #expect(scheduler.output.imagesPublished("pets") > 0)
    }
}
