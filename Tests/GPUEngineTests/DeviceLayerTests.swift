import CUDA
import Engine
import GPUEngine
import KernelEmulation
import Testing

/// The device layers against the CPU layers on the CPU emulation of CUDA (every CI run).
@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the GPU layers are not emulated on the CPU"))
struct EmulatedLayerTests {
    let checks = DeviceLayerChecks(device: EmulatedDevice())

    @Test func linear() throws { try checks.linear() }
    @Test(arguments: [(4, 2, 1), (3, 1, 1)]) func conv2d(_ shape: (Int, Int, Int)) throws {
        try checks.conv2d(kernel: shape.0, stride: shape.1, padding: shape.2)
    }
    @Test func convTranspose2d() throws { try checks.convTranspose2d() }
    @Test(arguments: [DeviceBatchNormActivation.none, .relu, .leakyReLU]) func batchNorm(_ activation: DeviceBatchNormActivation) throws {
        try checks.batchNorm(activation)
    }
    @Test func activations() throws { for kind in [Activation.Kind.relu, .leakyReLU(slope: 0.2), .tanh] { try checks.activation(kind) } }
    @Test func classConditioning() throws { try checks.classConditioning() }
    @Test(arguments: [false, true]) func classConditionalBatchNorm(channelMajor: Bool) throws {
        try checks.classConditionalBatchNorm(shape: [5, 3, 2, 3], slices: 1, channelMajor: channelMajor)
        try checks.classConditionalBatchNorm(shape: [6, 2, 40, 40], slices: 4, channelMajor: channelMajor)
    }
    @Test(arguments: [false, true]) func spectralNormalization(transposed: Bool) throws {
        try checks.spectralNormalization(transposed: transposed)
    }
}

/// The same on a GPU (the device machine); skipped elsewhere, saying so.
@Suite(.enabled(if: gpu != nil, "no NVIDIA GPU here (GPU tests run on the device machine)"))
struct GPULayerTests {
    var checks: DeviceLayerChecks { DeviceLayerChecks(device: gpu!) }

    @Test func linear() throws { try checks.linear() }
    @Test(arguments: [(4, 2, 1), (3, 1, 1)]) func conv2d(_ shape: (Int, Int, Int)) throws {
        try checks.conv2d(kernel: shape.0, stride: shape.1, padding: shape.2)
    }
    @Test func convTranspose2d() throws { try checks.convTranspose2d() }
    @Test(arguments: [DeviceBatchNormActivation.none, .relu, .leakyReLU]) func batchNorm(_ activation: DeviceBatchNormActivation) throws {
        try checks.batchNorm(activation)
    }
    @Test func activations() throws { for kind in [Activation.Kind.relu, .leakyReLU(slope: 0.2), .tanh] { try checks.activation(kind) } }
    @Test func classConditioning() throws { try checks.classConditioning() }
    @Test(arguments: [false, true]) func classConditionalBatchNorm(channelMajor: Bool) throws {
        try checks.classConditionalBatchNorm(shape: [5, 3, 2, 3], slices: 1, channelMajor: channelMajor)
        try checks.classConditionalBatchNorm(shape: [6, 2, 40, 40], slices: 4, channelMajor: channelMajor)
    }
    @Test(arguments: [false, true]) func spectralNormalization(transposed: Bool) throws {
        try checks.spectralNormalization(transposed: transposed)
    }
}

typealias DeviceBatchNormActivation = GPUEngine.DeviceBatchNorm.FusedActivation

/// The GPU the tests share, or nil where the driver, NVRTC or cuBLAS does not load.
let gpu: CUDADevice? = (try? CUDADriver()) != nil ? try? CUDADevice() : nil
