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
        let params = device.allocate(bytes: batch * 8 * 4), step = device.allocate(bytes: 8)  // a zero step counter
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

    /// BatchNorm in training mode fused with its activation (none, LeakyReLU 0.2) against the
    /// engine's BatchNorm2d (and Activation): output, running statistics, and the gradients of
    /// the input, gamma and beta.
    @Test(arguments: [0, 2])
    func batchNormMatchesTheEngine(activation: Int32) throws {
        let (n, c, h, w) = (3, 4, 5, 7)
        let x = KernelChecks.values(n * c * h * w, seed: 14), dy = KernelChecks.values(n * c * h * w, seed: 15)
        let norm = BatchNorm2d("bn", channels: c)
        for i in 0..<c { norm.gamma.value[i] = 0.5 + Float(i) * 0.25; norm.beta.value[i] = Float(i) * 0.1 - 0.15 }
        let leaky = Activation(.leakyReLU(slope: 0.2))
        let input = Tensor(shape: [n, c, h, w], values: x)
        var y = norm.forward(input)
        if activation == 2 { y = leaky.forward(y) }
        let gradient = Tensor(shape: [n, c, h, w], values: dy)
        let dx = norm.backward(activation == 2 ? leaky.backward(gradient) : gradient)

        let device = KernelEmulator(BatchNormKernels.source)
        let xs = device.upload(x), ys = device.allocate(bytes: x.count * 4), xhat = device.allocate(bytes: x.count * 4)
        let gamma = device.upload((0..<c).map { 0.5 + Float($0) * 0.25 }), beta = device.upload((0..<c).map { Float($0) * 0.1 - 0.15 })
        let mean = device.allocate(bytes: c * 4), invStd = device.allocate(bytes: c * 4)
        let runningMean = device.upload([Float](repeating: 0, count: c)), runningVar = device.upload([Float](repeating: 1, count: c))
        device.launch("batchnorm_forward_training", grid: c, block: 256,
                      [.buffer(xs), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(beta), .buffer(mean), .buffer(invStd),
                       .buffer(runningMean), .buffer(runningVar), .int32(Int32(n)), .int32(Int32(c)), .int32(Int32(h * w)),
                       .float(norm.eps), .float(norm.momentum), .int32(activation), .float(0.2)])
        let dys = device.upload(dy), dxs = device.allocate(bytes: x.count * 4)
        let dgamma = device.allocate(bytes: c * 4), dbeta = device.allocate(bytes: c * 4)
        device.launch("batchnorm_backward_training", grid: c, block: 256,
                      [.buffer(dys), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(invStd), .buffer(dxs), .buffer(dgamma),
                       .buffer(dbeta), .int32(Int32(n)), .int32(Int32(c)), .int32(Int32(h * w)), .int32(activation), .float(0.2)])
        #expect(KernelChecks.close(try device.floats(ys), y.values, tolerance: 1e-4))
        #expect(KernelChecks.close(try device.floats(runningMean), norm.runningMean.values, tolerance: 1e-5))
        #expect(KernelChecks.close(try device.floats(runningVar), norm.runningVar.values, tolerance: 1e-5))
        #expect(KernelChecks.close(try device.floats(dxs), dx.values, tolerance: 1e-3))
        #expect(KernelChecks.close(try device.floats(dgamma), norm.gamma.grad.values, tolerance: 1e-4))
        #expect(KernelChecks.close(try device.floats(dbeta), norm.beta.grad.values, tolerance: 1e-4))
    }

    /// Three Adam steps with the step count in device memory (as a captured graph runs them)
    /// against the engine's Adam.
    @Test func adamWithADeviceStepCountMatchesTheEngine() throws {
        let count = 1001
        let parameter = Parameter("w", shape: [count])
        let w0 = KernelChecks.values(count, seed: 16)
        for i in 0..<count { parameter.value[i] = w0[i] }
        let adam = Adam([parameter], learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
        let device = KernelEmulator(OptimizerKernels.source)
        let w = device.upload(w0), m = device.allocate(bytes: count * 4), v = device.allocate(bytes: count * 4)
        let step = device.allocate(bytes: 8)
        for round in 0..<3 {
            let g = KernelChecks.values(count, seed: 17 + UInt64(round))
            for i in 0..<count { parameter.grad[i] = g[i] }
            adam.update()
            let gs = device.upload(g)
            device.launch("adam_step_device", grid: 2, block: 64, [.buffer(w), .buffer(gs), .buffer(m), .buffer(v), .int64(count),
                                                                  .float(2e-4), .float(0.5), .float(0.999), .float(1e-8), .buffer(step),
                                                                  .float(0), .int32(0)])
            device.launch("adam_advance", grid: 1, block: 1, [.buffer(step)])
        }
        #expect(KernelChecks.close(try device.floats(w), parameter.value.values, tolerance: 1e-6))
        #expect(KernelChecks.close(try device.floats(m), adam.firstMoments[0].values, tolerance: 1e-6))
    }

    /// Embedding, projection head and class-conditional affine, forward and backward, against
    /// the engine's layers; labels repeat and one class is absent, as in a real batch.
    @Test func classConditioningMatchesTheEngine() throws {
        let (batch, classes, features, channels, area) = (6, 4, 5, 3, 10)
        let labels: [Int32] = [2, 0, 2, 3, 0, 2]
        let device = KernelEmulator(ConditioningKernels.source)
        let labelBuffer = device.upload(labels)

        // Projection head: the engine's Linear part is left out on both sides (zero weight, bias).
        let head = ProjectionHead("head", features: features, classes: classes)
        let table = KernelChecks.values(classes * features, seed: 20)
        for i in table.indices { head.embedding.weight.value[i] = table[i] }
        let phi = KernelChecks.values(batch * features, seed: 21), dy = KernelChecks.values(batch, seed: 22)
        let cpuY = head.forward(Tensor(shape: [batch, features], values: phi), labels: labels)
        let cpuDphi = try #require(head.backward(Tensor(shape: [batch], values: dy)))
        let phis = device.upload(phi), tables = device.upload(table), ys = device.allocate(bytes: batch * 4)
        let dys = device.upload(dy), dphi = device.allocate(bytes: phi.count * 4), dtable = device.allocate(bytes: table.count * 4)
        device.launch("projection_forward", grid: 1, block: 4, [.buffer(phis), .buffer(tables), .buffer(labelBuffer), .buffer(ys),
                                                                .int32(Int32(batch)), .int32(Int32(features))])
        device.launch("projection_backward", grid: 2, block: 8, [.buffer(phis), .buffer(tables), .buffer(labelBuffer), .buffer(dys),
                                                                 .buffer(dphi), .buffer(dtable), .int32(Int32(batch)),
                                                                 .int32(Int32(classes)), .int32(Int32(features))])
        #expect(KernelChecks.close(try device.floats(ys), cpuY.values))
        #expect(KernelChecks.close(try device.floats(dphi), cpuDphi.values))
        #expect(KernelChecks.close(try device.floats(dtable), head.embedding.weight.grad.values))

        // Embedding alone.
        let embedding = Embedding("embed", count: classes, dimension: features)
        for i in table.indices { embedding.weight.value[i] = table[i] }
        let rows = embedding.forward(labels)
        let dRows = KernelChecks.values(batch * features, seed: 23)
        embedding.backward(Tensor(shape: [batch, features], values: dRows))
        let out = device.allocate(bytes: batch * features * 4), dRowBuffer = device.upload(dRows)
        let dEmbedding = device.allocate(bytes: table.count * 4)
        device.launch("embedding_forward", grid: 2, block: 8, [.buffer(tables), .buffer(labelBuffer), .buffer(out),
                                                               .int32(Int32(batch)), .int32(Int32(features))])
        device.launch("embedding_backward", grid: 2, block: 8, [.buffer(dRowBuffer), .buffer(labelBuffer), .buffer(dEmbedding),
                                                                .int32(Int32(batch)), .int32(Int32(classes)), .int32(Int32(features))])
        #expect(try device.floats(out) == rows.values)
        #expect(KernelChecks.close(try device.floats(dEmbedding), embedding.weight.grad.values))

        // Class-conditional affine.
        let affine = ClassConditionalAffine("affine", classes: classes, channels: channels)
        let scale = KernelChecks.values(classes * channels, seed: 24), shift = KernelChecks.values(classes * channels, seed: 25)
        for i in scale.indices { affine.scale.value[i] = scale[i]; affine.shift.value[i] = shift[i] }
        let x = KernelChecks.values(batch * channels * area, seed: 26), dz = KernelChecks.values(batch * channels * area, seed: 27)
        let cpuZ = affine.forward(Tensor(shape: [batch, channels, 2, 5], values: x), labels: labels)
        let cpuDx = affine.backward(Tensor(shape: [batch, channels, 2, 5], values: dz))
        let xs = device.upload(x), scales = device.upload(scale), shifts = device.upload(shift), z = device.allocate(bytes: x.count * 4)
        let dzs = device.upload(dz), dx = device.allocate(bytes: x.count * 4)
        let dscale = device.allocate(bytes: scale.count * 4), dshift = device.allocate(bytes: shift.count * 4)
        let shape: [KernelEmulator.Argument] = [.int32(Int32(batch)), .int32(Int32(channels)), .int64(area)]
        device.launch("class_affine_forward", grid: 3, block: 16, [.buffer(xs), .buffer(scales), .buffer(shifts), .buffer(labelBuffer), .buffer(z)] + shape)
        device.launch("class_affine_backward_input", grid: 3, block: 16, [.buffer(dzs), .buffer(scales), .buffer(labelBuffer), .buffer(dx)] + shape)
        device.launch("class_affine_backward_parameters", grid: classes * channels, block: ConditioningKernels.reductionBlock,
                      [.buffer(dzs), .buffer(xs), .buffer(labelBuffer), .buffer(dscale), .buffer(dshift)] + shape)
        #expect(KernelChecks.close(try device.floats(z), cpuZ.values))
        #expect(KernelChecks.close(try device.floats(dx), cpuDx.values))
        #expect(KernelChecks.close(try device.floats(dscale), affine.scale.grad.values, tolerance: 1e-4))
        #expect(KernelChecks.close(try device.floats(dshift), affine.shift.grad.values, tolerance: 1e-4))
    }

    /// Batches gathered on the device are dataset images scaled to [-1, 1] with their labels,
    /// new ones at every step; latent vectors are standard normal times the temperature and
    /// labels cover the classes.
    @Test func batchesAndLatentsAreDrawnOnTheDevice() throws {
        let (count, imageBytes, batch) = (7, 12, 16)
        let pixels = (0..<(count * imageBytes)).map { UInt8(($0 * 37) % 256) }
        let labels: [Int32] = (0..<count).map { Int32($0 % 3) }
        let device = KernelEmulator(DataKernels.source)
        let images = device.upload(pixels), labelBuffer = device.upload(labels), step = device.allocate(bytes: 8)
        let first = device.allocate(bytes: batch * imageBytes * 4), firstLabels = device.allocate(bytes: batch * 4)
        let second = device.allocate(bytes: batch * imageBytes * 4), secondLabels = device.allocate(bytes: batch * 4)
        let gather: (KernelEmulator.Buffer, KernelEmulator.Buffer) -> [KernelEmulator.Argument] = { out, outLabels in
            [.buffer(images), .buffer(labelBuffer), .int64(count), .int32(Int32(imageBytes)), .buffer(out), .buffer(outLabels),
             .int32(Int32(batch)), .uint64(9), .buffer(step)]
        }
        device.launch("gather_batch", grid: batch, block: 8, gather(first, firstLabels))
        device.launch("advance_step", grid: 1, block: 1, [.buffer(step)])
        device.launch("gather_batch", grid: batch, block: 8, gather(second, secondLabels))
        let (n, classes, temperature): (Int, Int32, Float) = (4001, 5, 1.5)
        let z = device.allocate(bytes: n * 4), zLabels = device.allocate(bytes: batch * 4)
        device.launch("draw_latents", grid: 4, block: 64, [.buffer(z), .int64(n), .buffer(zLabels), .int32(Int32(batch)),
                                                          .int32(classes), .float(temperature), .uint64(3), .buffer(step)])
        for (rows, rowLabels) in [(try device.floats(first), try device.int32s(firstLabels)), (try device.floats(second), try device.int32s(secondLabels))] {
            for row in 0..<batch {
                let image = Array(rows[(row * imageBytes)..<((row + 1) * imageBytes)])
                let source = (0..<count).first { index in
                    (0..<imageBytes).allSatisfy { abs(image[$0] - (Float(pixels[index * imageBytes + $0]) * 2 / 255 - 1)) < 1e-6 }
                }
                let index = try #require(source, "row \(row) is a dataset image scaled to [-1, 1]")
                #expect(rowLabels[row] == labels[index])
            }
        }
        #expect(try device.floats(first) != device.floats(second), "a new batch at every step")
        let latents = try device.floats(z)
        let mean = latents.reduce(0, +) / Float(n)
        let deviation = (latents.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n)).squareRoot()
        #expect(abs(mean) < 0.1 && abs(deviation - temperature) < 0.1, "mean \(mean), deviation \(deviation)")
        let drawn = Set(try device.int32s(zLabels))
        #expect(drawn.isSubset(of: Set(0..<classes)) && drawn.count >= 3, "\(drawn)")
    }
}
