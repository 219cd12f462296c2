import CUDA
import Engine
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

    func values(_ count: Int, seed: UInt64) -> [Float] { KernelChecks.values(count, seed: seed) }

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

    /// im2col and col2im against the engine's on odd geometries. im2col only copies, so it
    /// matches exactly; col2im adds in another order than the CPU's, so within float rounding.
    @Test(arguments: KernelChecks.geometries)
    func im2colAndCol2imMatchTheCPU(_ g: ConvGeometry) throws {
        let module = try load(ConvolutionKernels.source)
        let geometry = KernelArgument.int32s(KernelChecks.fields(g))
        let image = values(g.batch * g.channels * g.height * g.width, seed: 7), cols = values(g.patchSize * g.columnCount, seed: 8)
        let cpu = KernelChecks.cpuConvolution(g, image: image, cols: cols)
        let images = try context.upload(image), columns = try context.allocate(bytes: cols.count * 4)
        try module.launch("im2col", grid: 40, block: 128, [.buffer(images), .buffer(columns), geometry])
        #expect(try columns.floats() == cpu.cols)
        let given = try context.upload(cols), back = try context.allocate(bytes: image.count * 4)
        try module.launch("col2im", grid: 40, block: 128, [.buffer(given), .buffer(back), geometry])
        #expect(KernelChecks.close(try back.floats(), cpu.image))
    }

    @Test func biasAndItsGradientMatchTheCPU() throws {
        let module = try load(ConvolutionKernels.source)
        let (batch, channels, spatial) = (3, 5, 49)
        let y = values(batch * channels * spatial, seed: 9), bias = values(channels, seed: 10)
        let ys = try context.upload(y), biases = try context.upload(bias), db = try context.allocate(bytes: channels * 4)
        try module.launch("add_channel_bias", grid: 8, block: 128, [.buffer(ys), .buffer(biases), .int64(batch), .int32(Int32(channels)), .int64(spatial)])
        let added = try ys.floats()
        for i in added.indices { #expect(added[i] == y[i] + bias[(i / spatial) % channels]) }
        try module.launch("channel_bias_gradient", grid: channels, block: ConvolutionKernels.reductionBlock,
                          [.buffer(biases), .buffer(db), .int64(1), .int32(Int32(channels)), .int64(1)])
        #expect(try db.floats() == bias, "one element per channel sums to itself")
        try module.launch("channel_bias_gradient", grid: channels, block: ConvolutionKernels.reductionBlock,
                          [.buffer(ys), .buffer(db), .int64(batch), .int32(Int32(channels)), .int64(spatial)])
        let sums = try db.floats()
        for c in 0..<channels {
            var expected: Double = 0
            for b in 0..<batch { for s in 0..<spatial { expected += Double(added[(b * channels + c) * spatial + s]) } }
            #expect(abs(Double(sums[c]) - expected) <= 1e-4 * max(1, abs(expected)), "channel \(c)")
        }
    }

    /// The hinge losses and their gradients equal `HingeLoss`'s, the kink included.
    @Test(arguments: [1, 64, 1000])
    func hingeLossesMatchTheCPU(count: Int) throws {
        let module = try load(LossKernels.source)
        var logits = values(count, seed: 11)
        if count > 2 { logits[0] = 1; logits[1] = -1 }  // on the kink for real and for generated images
        let tensor = Tensor(shape: [count], values: logits)
        let input = try context.upload(logits), gradient = try context.allocate(bytes: count * 4), loss = try context.allocate(bytes: 4)
        for real in [true, false] {
            let cpuGradient = Tensor(zeros: [count])
            let cpuLoss = HingeLoss.discriminator(tensor, real: real, gradient: cpuGradient)
            try module.launch("hinge_discriminator", grid: 1, block: LossKernels.block,
                              [.buffer(input), .buffer(gradient), .buffer(loss), .int64(count), .float(real ? 1 : -1)])
            #expect(abs(try loss.floats()[0] - cpuLoss) <= 1e-5 * max(1, abs(cpuLoss)))
            #expect(try gradient.floats() == cpuGradient.values)
        }
        let cpuGradient = Tensor(zeros: [count])
        let cpuLoss = HingeLoss.generator(tensor, gradient: cpuGradient)
        try module.launch("hinge_generator", grid: 1, block: LossKernels.block, [.buffer(input), .buffer(gradient), .buffer(loss), .int64(count)])
        #expect(abs(try loss.floats()[0] - cpuLoss) <= 1e-5 * max(1, abs(cpuLoss)))
        #expect(try gradient.floats() == cpuGradient.values)
    }

    /// DiffAugment's forward map against a plain transcription of the documented maps
    /// (`KernelChecks.augment`),
    /// with the parameters the device drew; the backward pass as the adjoint of the forward
    /// map's linear part: <F(x) - F(0), g> = <x, B(g)>.
    @Test(arguments: [1, 3])
    func augmentationMatchesItsDefinitionAndItsAdjoint(channels: Int) throws {
        let module = try load(AugmentKernels.source)
        let (batch, height, width) = (5, 12, 12)
        let size = channels * height * width
        let x = values(batch * size, seed: 12), g = values(batch * size, seed: 13)
        let params = try context.allocate(bytes: batch * 8 * 4), step = try context.upload([0, 0])  // a zero 64-bit counter
        try module.launch("augment_draw", grid: 1, block: 32, [.buffer(params), .int32(Int32(batch)), .int32(Int32(height)),
                                                               .int32(Int32(width)), .int32(7), .uint64(42), .buffer(step)])
        let p = try params.floats()
        #expect(KernelChecks.plausible(p), "\(p)")
        let geometry: [KernelArgument] = [.int32(Int32(channels)), .int32(Int32(height)), .int32(Int32(width))]
        func forward(_ input: [Float]) throws -> [Float] {
            let from = try context.upload(input), to = try context.allocate(bytes: input.count * 4)
            try module.launch("augment_forward", grid: batch, block: AugmentKernels.block, [.buffer(from), .buffer(to), .buffer(params)] + geometry)
            return try to.floats()
        }
        let y = try forward(x)
        #expect(KernelChecks.close(y, KernelChecks.augment(x, parameters: p, channels: channels, height: height, width: width)))
        let offset = try forward([Float](repeating: 0, count: x.count))
        let gs = try context.upload(g), dx = try context.allocate(bytes: g.count * 4)
        try module.launch("augment_backward", grid: batch, block: AugmentKernels.block, [.buffer(gs), .buffer(dx), .buffer(params)] + geometry)
        let (left, right) = KernelChecks.adjointSides(x: x, fx: y, f0: offset, g: g, bg: try dx.floats())
        #expect(abs(left - right) <= 1e-4 * max(1, abs(left)), "<F(x) - F(0), g> = \(left), <x, B(g)> = \(right)")
    }
}
