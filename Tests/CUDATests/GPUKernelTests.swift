import CUDA
import Foundation
import Testing

/// Kernels run on the GPU against the CPU engine's formulas. Runs where the NVIDIA driver and
/// NVRTC load (the device machine, through scripts/device-check); elsewhere skipped, saying so.
@Suite(.enabled(if: driverLoads && (try? compiler.get()) != nil, "no NVIDIA driver here (GPU tests run on the device machine)"))
struct GPUKernelTests {
    let context: CUDAContext
    let nvrtc: NVRTC

    init() throws {
        nvrtc = try compiler.get()
        context = try CUDAContext(driver: CUDADriver(), ordinal: 0)
    }

    func load(_ source: KernelSource) throws -> KernelModule {
        try context.load(nvrtc.compile(source, architecture: context.info.architecture), functions: source.functions)
    }

    /// Odd sizes, so that the grid-stride loops' remainders are exercised.
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 40) % 2001 - 1000) / 250
        }
    }

    @Test(arguments: [1, 257, 100_003])
    func activationsMatchTheCPUFormulas(count: Int) throws {
        let module = try load(ElementwiseKernels.source)
        let x = values(count, seed: 1), dy = values(count, seed: 2)
        let xs = try context.upload(x), dys = try context.upload(dy)
        let y = try context.allocate(bytes: count * 4), dx = try context.allocate(bytes: count * 4)
        try module.launch("leaky_relu_forward", grid: 7, block: 128, [.buffer(xs), .buffer(y), .int64(count), .float(0.2)])
        try module.launch("leaky_relu_backward", grid: 7, block: 128, [.buffer(xs), .buffer(dys), .buffer(dx), .int64(count), .float(0.2)])
        try context.synchronize()
        #expect(try y.floats() == x.map { $0 > 0 ? $0 : 0.2 * $0 })
        #expect(try dx.floats() == zip(x, dy).map { $0 > 0 ? $1 : 0.2 * $1 })
        try module.launch("tanh_forward", grid: 3, block: 256, [.buffer(xs), .buffer(y), .int64(count)])
        let tanh = try y.floats()
        #expect(zip(tanh, x).allSatisfy { abs($0 - Float(Foundation.tanh(Double($1)))) <= 2e-6 })
    }

    /// One Adam step over a flat parameter buffer equals `Engine/Optim/Adam.swift`'s formula.
    @Test func adamMatchesTheCPUFormula() throws {
        let module = try load(OptimizerKernels.source)
        let n = 1001
        let w = values(n, seed: 3), g = values(n, seed: 4)
        let m0 = values(n, seed: 5).map { $0 * 0.1 }, v0 = values(n, seed: 6).map { $0 * $0 * 0.01 }
        let (lr, b1, b2, eps, t): (Float, Float, Float, Float, Float) = (2e-4, 0.5, 0.999, 1e-8, 3)
        let c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t)
        let ws = try context.upload(w), gs = try context.upload(g), ms = try context.upload(m0), vs = try context.upload(v0)
        try module.launch("adam_step", grid: 4, block: 128, [.buffer(ws), .buffer(gs), .buffer(ms), .buffer(vs), .int64(n),
                                                              .float(lr), .float(b1), .float(b2), .float(eps), .float(c1), .float(c2),
                                                              .float(0), .int32(0)])
        let out = try ws.floats()
        for i in 0..<n {
            let m = b1 * m0[i] + (1 - b1) * g[i], v = b2 * v0[i] + (1 - b2) * g[i] * g[i]
            let expected = w[i] - lr * (m / c1) / ((v / c2).squareRoot() + eps)
            #expect(abs(out[i] - expected) <= 1e-6 * max(1, abs(expected)), "parameter \(i)")
        }
    }
}
