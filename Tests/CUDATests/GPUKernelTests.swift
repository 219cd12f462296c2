import CUDA
import Engine
import Foundation
import KernelEmulation
import Testing

/// The kernel checks (`DeviceKernelChecks`) on the CPU emulation of CUDA (`EmulatedDevice`):
/// the kernels' logic in every CI run, on machines without a GPU.
@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the kernels are not emulated on the CPU"))
struct EmulatedKernelTests {
    let checks = DeviceKernelChecks(device: EmulatedDevice())

    @Test(arguments: [1, 257, 10_003]) func activations(count: Int) throws { try checks.activations(count: count) }
    @Test func matrixProducts() throws { try checks.matrixProducts() }
    @Test func captureRecordsOnlyItsThread() throws { try checks.captureRecordsOnlyItsThread() }
    @Test func adamWithHostCorrections() throws { try checks.adamWithHostCorrections() }
    @Test func adamWithADeviceStepCount() throws { try checks.adamWithADeviceStepCount() }
    @Test(arguments: KernelChecks.geometries) func im2colAndCol2im(_ g: ConvGeometry) throws { try checks.im2colAndCol2im(g) }
    @Test func biasAndItsGradient() throws { try checks.biasAndItsGradient() }
    @Test func fromChannelMajor() throws { try checks.fromChannelMajor() }
    @Test(arguments: [1, 64, 1000]) func hingeLosses(count: Int) throws { try checks.hingeLosses(count: count) }
    @Test(arguments: [1, 64, 1000]) func binaryCrossEntropy(count: Int) throws { try checks.binaryCrossEntropy(count: count) }
    @Test(arguments: [1, 3]) func augmentation(channels: Int) throws { try checks.augmentation(channels: channels) }
    @Test func augmentationProbability() throws { try checks.augmentationProbability() }
    @Test(arguments: [(Int32(0), Float(0), false), (2, 0, false), (2, 300, false), (2, 0, true)])
    func batchNorm(activation: Int32, offset: Float, inputBias: Bool) throws {
        try checks.batchNorm(activation: activation, offset: offset, inputBias: inputBias)
    }
    @Test func classConditioning() throws { try checks.classConditioning() }
    @Test func batchesAndLatents() throws { try checks.batchesAndLatents() }
    @Test(arguments: [1, 3]) func imagesForTheJudge(channels: Int) throws { try checks.imagesForTheJudge(channels: channels) }

    /// A launch whose arguments do not match the kernel's parameters fails on the emulation
    /// (a GPU would run on garbage): `fill(float* x, long n, float value)`.
    @Test func argumentsMustMatchTheParameters() throws {
        let device = EmulatedDevice(), x = try device.upload([Float](repeating: 1, count: 4))
        try device.launch("fill", grid: 1, block: 4, [.buffer(x), .int64(4), .float(2)])
        #expect(try x.floats() == [2, 2, 2, 2])
        for (arguments, problem) in [([KernelArgument.buffer(x), .int32(4), .float(3)], "argument 1 is 4 bytes, its parameter 8"),
                                     ([.buffer(x), .int64(4)], "2 arguments for 3 parameters"),
                                     ([.buffer(x), .int64(4), .float(3), .int32(0)], "4 arguments for 3 parameters")] {
            #expect { try device.launch("fill", grid: 1, block: 4, arguments) } throws: { error in
                "\(error)".contains(problem) && "\(error)".contains("fill")
            }
        }
        #expect(try x.floats() == [2, 2, 2, 2], "nothing ran")
    }

    /// A GPU runs a block's threads in no promised order, so a thread that reads what another
    /// wrote needs a barrier between them. The emulation shuffles the threads of every phase, so
    /// a missing barrier shows even where the natural order (thread t - 1 before thread t) would
    /// hide it: each thread reads its left neighbour's slot.
    /// A block's shared memory holds garbage until its threads write it: on the emulation, NaN
    /// bytes before every block, so a block that reads what it did not write (here: only block
    /// 0 writes) reads NaN, not another block's values or a static's zeros.
    @Test func sharedMemoryStartsUnwrittenInEveryBlock() throws {
        EmulatedDevice.register(KernelSource(name: "shared-memory-test.cu", code: """
            extern "C" __global__ void first_block_writes(float* out) {
                __shared__ float slots[32];
                if (blockIdx.x == 0) slots[threadIdx.x] = 1.f;
                __syncthreads();
                out[blockIdx.x * blockDim.x + threadIdx.x] = slots[threadIdx.x];
            }
            """, functions: ["first_block_writes"]))
        let device = EmulatedDevice(), out = try device.allocate(bytes: 3 * 32 * 4)
        try device.launch("first_block_writes", grid: 3, block: 32, [.buffer(out)])
        let values = try out.floats()
        #expect(values.prefix(32).allSatisfy { $0 == 1 })
        #expect(values.dropFirst(32).allSatisfy { $0.isNaN }, "blocks 1 and 2 read slots they never wrote")
    }

    @Test func aMissingBarrierShows() throws {
        EmulatedDevice.register(KernelSource(name: "barrier-test.cu", code: """
            extern "C" __global__ void left_neighbour(float* out, int with_barrier) {
                __shared__ float slots[256];
                slots[threadIdx.x] = -1.f;
                __syncthreads();
                slots[threadIdx.x] = (float)threadIdx.x;
                if (with_barrier) __syncthreads();
                out[threadIdx.x] = threadIdx.x == 0 ? 0.f : slots[threadIdx.x - 1];
            }
            """, functions: ["left_neighbour"]))
        let device = EmulatedDevice(), block = 256
        let expected = (0..<block).map { Float(max(0, $0 - 1)) }
        let out = try device.allocate(bytes: block * 4)
        try device.launch("left_neighbour", grid: 1, block: block, [.buffer(out), .int32(1)])
        #expect(try out.floats() == expected)
        for _ in 0..<3 {
            try device.launch("left_neighbour", grid: 1, block: block, [.buffer(out), .int32(0)])
            let wrong = zip(try out.floats(), expected).filter { $0 != $1 }.count
            #expect(wrong > block / 4, "without the barrier about half the threads read their neighbour's old value")
        }
    }
}

/// CI must run the emulation (it is where the GPU engine is checked without a GPU), as it must
/// compile the kernels with NVRTC: a missing g++ there fails rather than skips.
@Suite struct EmulationAvailabilityTests {
    @Test func theEmulationRunsInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil && EmulatedDevice.compilerPath == nil {
            Issue.record("CI must run the GPU engine on the CPU emulation, but g++ is not installed (scripts/setup installs it)")
        }
    }
}

/// The same checks on a GPU. Runs where the NVIDIA driver, NVRTC and cuBLAS load (the device
/// machine, through scripts/device-check); elsewhere skipped, saying so.
@Suite(.enabled(if: gpu != nil, "no NVIDIA GPU here (GPU tests run on the device machine)"))
struct GPUKernelTests {
    var checks: DeviceKernelChecks { DeviceKernelChecks(device: gpu!) }

    @Test(arguments: [1, 257, 100_003]) func activations(count: Int) throws { try checks.activations(count: count) }
    @Test func matrixProducts() throws { try checks.matrixProducts() }
    @Test func captureRecordsOnlyItsThread() throws { try checks.captureRecordsOnlyItsThread() }
    @Test func adamWithHostCorrections() throws { try checks.adamWithHostCorrections() }
    @Test func adamWithADeviceStepCount() throws { try checks.adamWithADeviceStepCount() }
    @Test(arguments: KernelChecks.geometries) func im2colAndCol2im(_ g: ConvGeometry) throws { try checks.im2colAndCol2im(g) }
    @Test func biasAndItsGradient() throws { try checks.biasAndItsGradient() }
    @Test func fromChannelMajor() throws { try checks.fromChannelMajor() }
    @Test(arguments: [1, 64, 1000]) func hingeLosses(count: Int) throws { try checks.hingeLosses(count: count) }
    @Test(arguments: [1, 64, 1000]) func binaryCrossEntropy(count: Int) throws { try checks.binaryCrossEntropy(count: count) }
    @Test(arguments: [1, 3]) func augmentation(channels: Int) throws { try checks.augmentation(channels: channels) }
    @Test func augmentationProbability() throws { try checks.augmentationProbability() }
    @Test(arguments: [(Int32(0), Float(0), false), (2, 0, false), (2, 300, false), (2, 0, true)])
    func batchNorm(activation: Int32, offset: Float, inputBias: Bool) throws {
        try checks.batchNorm(activation: activation, offset: offset, inputBias: inputBias)
    }
    @Test func classConditioning() throws { try checks.classConditioning() }
    @Test func batchesAndLatents() throws { try checks.batchesAndLatents() }
    @Test(arguments: [1, 3]) func imagesForTheJudge(channels: Int) throws { try checks.imagesForTheJudge(channels: channels) }
}

/// The GPU the tests share (one context per process), or nil where none is usable.
let gpu: CUDADevice? = driverLoads ? try? CUDADevice() : nil
