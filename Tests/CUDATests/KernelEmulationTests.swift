import CUDA
import Engine
import Foundation
import Testing

/// The kernels' logic on the CPU (`KernelEmulator`: the CUDA C compiled by g++ with CUDA's
/// thread model emulated), against the engine's CPU code, in CI and wherever there is no GPU.
/// The same checks run on the GPU itself in `GPUKernelTests`.
@Suite(.enabled(if: KernelEmulator.compilerPath != nil, "g++ is not installed: the kernels are not emulated on the CPU"))
struct KernelEmulationTests {
    @Test(arguments: KernelChecks.geometries)
    func im2colAndCol2imMatchTheEngine(_ g: ConvGeometry) throws {
        let device = KernelEmulator(ConvolutionKernels.source)
        let image = KernelChecks.values(g.batch * g.channels * g.height * g.width, seed: 7)
        let cols = KernelChecks.values(g.patchSize * g.columnCount, seed: 8)
        let cpu = KernelChecks.cpuConvolution(g, image: image, cols: cols)
        let images = device.upload(image), columns = device.allocate(bytes: cols.count * 4)
        let given = device.upload(cols), back = device.allocate(bytes: image.count * 4)
        device.launch("im2col", grid: 3, block: 32, [.buffer(images), .buffer(columns), .int32s(KernelChecks.fields(g))])
        device.launch("col2im", grid: 3, block: 32, [.buffer(given), .buffer(back), .int32s(KernelChecks.fields(g))])
        #expect(try device.floats(columns) == cpu.cols)
        #expect(KernelChecks.close(try device.floats(back), cpu.image))
    }

    @Test func biasAndItsGradientMatchTheSums() throws {
        let device = KernelEmulator(ConvolutionKernels.source)
        let (batch, channels, spatial) = (3, 5, 49)
        let y = KernelChecks.values(batch * channels * spatial, seed: 9), bias = KernelChecks.values(channels, seed: 10)
        let ys = device.upload(y), biases = device.upload(bias), db = device.allocate(bytes: channels * 4)
        device.launch("add_channel_bias", grid: 2, block: 64, [.buffer(ys), .buffer(biases), .int64(batch), .int32(Int32(channels)), .int64(spatial)])
        device.launch("channel_bias_gradient", grid: channels, block: ConvolutionKernels.reductionBlock,
                      [.buffer(ys), .buffer(db), .int64(batch), .int32(Int32(channels)), .int64(spatial)])
        let added = try device.floats(ys)
        #expect(added == y.indices.map { y[$0] + bias[($0 / spatial) % channels] })
        var expected = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            var sum: Double = 0
            for b in 0..<batch { for s in 0..<spatial { sum += Double(added[(b * channels + c) * spatial + s]) } }
            expected[c] = Float(sum)
        }
        #expect(KernelChecks.close(try device.floats(db), expected, tolerance: 1e-4))
    }

    @Test(arguments: [1, 64, 1000])
    func hingeLossesMatchTheEngine(count: Int) throws {
        let device = KernelEmulator(LossKernels.source)
        var logits = KernelChecks.values(count, seed: 11)
        if count > 2 { logits[0] = 1; logits[1] = -1 }  // on the kink
        let tensor = Tensor(shape: [count], values: logits)
        let input = device.upload(logits)
        var outputs: [(gradient: KernelEmulator.Buffer, loss: KernelEmulator.Buffer)] = []
        for sign: Float in [1, -1] {
            let gradient = device.allocate(bytes: count * 4), loss = device.allocate(bytes: 4)
            device.launch("hinge_discriminator", grid: 1, block: LossKernels.block,
                          [.buffer(input), .buffer(gradient), .buffer(loss), .int64(count), .float(sign)])
            outputs.append((gradient, loss))
        }
        let gradient = device.allocate(bytes: count * 4), loss = device.allocate(bytes: 4)
        device.launch("hinge_generator", grid: 1, block: LossKernels.block, [.buffer(input), .buffer(gradient), .buffer(loss), .int64(count)])
        for (index, real) in [true, false].enumerated() {
            let cpuGradient = Tensor(zeros: [count])
            let cpuLoss = HingeLoss.discriminator(tensor, real: real, gradient: cpuGradient)
            #expect(KernelChecks.close(try device.floats(outputs[index].loss), [cpuLoss]))
            #expect(try device.floats(outputs[index].gradient) == cpuGradient.values)
        }
        let cpuGradient = Tensor(zeros: [count])
        let cpuLoss = HingeLoss.generator(tensor, gradient: cpuGradient)
        #expect(KernelChecks.close(try device.floats(loss), [cpuLoss]))
        #expect(try device.floats(gradient) == cpuGradient.values)
    }

    @Test(arguments: [1, 3])
    func augmentationMatchesItsDefinitionAndItsAdjoint(channels: Int) throws {
        let device = KernelEmulator(AugmentKernels.source)
        let (batch, height, width) = (5, 12, 12)
        let size = channels * height * width
        let x = KernelChecks.values(batch * size, seed: 12), g = KernelChecks.values(batch * size, seed: 13)
        let params = device.allocate(bytes: batch * 8 * 4), step = device.upload([0, 0])
        device.launch("augment_draw", grid: 1, block: 32, [.buffer(params), .int32(Int32(batch)), .int32(Int32(height)),
                                                           .int32(Int32(width)), .int32(7), .uint64(42), .buffer(step)])
        let geometry: [KernelEmulator.Argument] = [.int32(Int32(channels)), .int32(Int32(height)), .int32(Int32(width))]
        let xs = device.upload(x), zeros = device.allocate(bytes: x.count * 4), gs = device.upload(g)
        let fx = device.allocate(bytes: x.count * 4), f0 = device.allocate(bytes: x.count * 4), bg = device.allocate(bytes: x.count * 4)
        device.launch("augment_forward", grid: batch, block: AugmentKernels.block, [.buffer(xs), .buffer(fx), .buffer(params)] + geometry)
        device.launch("augment_forward", grid: batch, block: AugmentKernels.block, [.buffer(zeros), .buffer(f0), .buffer(params)] + geometry)
        device.launch("augment_backward", grid: batch, block: AugmentKernels.block, [.buffer(gs), .buffer(bg), .buffer(params)] + geometry)
        let p = try device.floats(params)
        #expect(KernelChecks.plausible(p), "\(p)")
        #expect(Set(stride(from: 0, to: p.count, by: 8).map { p[$0] }).count == batch, "each image draws its own")
        #expect(KernelChecks.close(try device.floats(fx), KernelChecks.augment(x, parameters: p, channels: channels, height: height, width: width)))
        let (left, right) = KernelChecks.adjointSides(x: x, fx: try device.floats(fx), f0: try device.floats(f0), g: g, bg: try device.floats(bg))
        #expect(abs(left - right) <= 1e-4 * max(1, abs(left)), "<F(x) - F(0), g> = \(left), <x, B(g)> = \(right)")
    }
}
