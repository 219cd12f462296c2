import CUDA
import Engine
import Foundation
import Imaging
import NumericTestSupport
import Testing

/// Every kernel against the CPU engine (or a plain transcription of its formula), on odd
/// sizes, written once against `KernelDevice`: `EmulatedKernelTests` runs them on the CPU
/// emulation in CI, `GPUKernelTests` on a GPU where there is one.
struct DeviceKernelChecks {
    let device: any KernelDevice

    func values(_ count: Int, seed: UInt64) -> [Float] { KernelChecks.values(count, seed: seed) }

    /// For the outputs that kernels add to (parameter gradients, as the CPU layers' `+=`).
    func zeros(_ count: Int) throws -> DeviceBuffer { try device.upload([Float](repeating: 0, count: count)) }

    func activations(count: Int) throws {
        let x = values(count, seed: 1), dy = values(count, seed: 2)
        let xs = try device.upload(x), dys = try device.upload(dy)
        let y = try device.allocate(bytes: count * 4), dx = try device.allocate(bytes: count * 4)
        try device.launch("leaky_relu_forward", grid: 7, block: 128, [.buffer(xs), .buffer(y), .int64(count), .float(0.2)])
        try device.launch("leaky_relu_backward", grid: 7, block: 128, [.buffer(xs), .buffer(dys), .buffer(dx), .int64(count), .float(0.2)])
        #expect(try y.floats() == x.map { $0 > 0 ? $0 : 0.2 * $0 })
        #expect(try dx.floats() == zip(x, dy).map { $0 > 0 ? $1 : 0.2 * $1 })
        // With a convolution's bias per channel first (channels of runs of 5 values), and the
        // backward pass reading the output's sign: the same gradient as from x + bias.
        let channels = 3, bias = values(channels, seed: 3)
        let biased = x.indices.map { x[$0] + bias[($0 / 5) % channels] }
        try device.launch("leaky_relu_bias_forward", grid: 7, block: 128,
                          [.buffer(xs), .buffer(try device.upload(bias)), .buffer(y), .int32(Int32(channels)), .int32(5),
                           .int64(count), .float(0.2)])
        #expect(try y.floats() == biased.map { $0 > 0 ? $0 : 0.2 * $0 })
        try device.launch("leaky_relu_backward", grid: 7, block: 128, [.buffer(y), .buffer(dys), .buffer(dx), .int64(count), .float(0.2)])
        #expect(try dx.floats() == zip(biased, dy).map { $0 > 0 ? $1 : 0.2 * $1 })
        try device.launch("tanh_forward", grid: 3, block: 256, [.buffer(xs), .buffer(y), .int64(count)])
        let tanh = try y.floats()
        #expect(zip(tanh, x).allSatisfy { abs($0 - Float(Foundation.tanh(Double($1)))) <= 2e-6 })
        try device.launch("tanh_backward", grid: 3, block: 256, [.buffer(y), .buffer(dys), .buffer(dx), .int64(count)])
        // Not bit for bit: a GPU compiler contracts 1 - y * y into one fused multiply-add.
        #expect(zip(try dx.floats(), zip(tanh, dy).map { $1 * (1 - $0 * $0) }).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
    }

    /// A capture records the capturing thread's work only, without running it; another
    /// thread's launches meanwhile run at once (the daemon's jobs share a GPU); the replay runs
    /// what was recorded.
    func captureRecordsOnlyItsThread() throws {
        let x = try zeros(10), y = try zeros(10)
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome(), done = DispatchSemaphore(value: 0)
        let device = self.device
        let graph = try device.capture { () throws(CUDAError) in
            try device.launch("fill", grid: 1, block: 32, [.buffer(x), .int64(10), .float(1)])
            let other = Thread {
                do {
                    try device.launch("fill", grid: 1, block: 32, [.buffer(y), .int64(10), .float(2)])
                    try device.synchronize()
                } catch { outcome.error = error }
                done.signal()
            }
            other.start()
            done.wait()
        }
        #expect(outcome.error == nil, "\(String(describing: outcome.error))")
        #expect(try y.floats() == [Float](repeating: 2, count: 10), "the other thread's launch ran")
        #expect(try x.floats() == [Float](repeating: 0, count: 10), "the captured launch did not run")
        try device.replay(graph)
        #expect(try x.floats() == [Float](repeating: 1, count: 10), "the replay ran it")
        #expect(graph.operationCount == 1)
    }

    /// Row-major products with each transpose, a leading dimension wider than the matrix, and
    /// a batch with a shared (stride 0) A, against a plain triple loop.
    func matrixProducts() throws {
        let (m, n, k, count) = (5, 7, 3, 3)
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            let lda = (transA ? m : k) + 2, ldb = (transB ? k : n) + 1, ldc = n + 3
            let a = values((transA ? k : m) * lda, seed: 30), b = values(count * (transB ? n : k) * ldb, seed: 31)
            let c0 = values(count * m * ldc, seed: 32)
            let (alpha, beta): (Float, Float) = (0.5, 2)
            let as_ = try device.upload(a), bs = try device.upload(b), cs = try device.upload(c0)
            try device.multiply(MatrixProduct(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                              a: as_.address, lda: lda, b: bs.address, ldb: ldb, beta: beta,
                                              c: cs.address, ldc: ldc, count: count, strideA: 0,
                                              strideB: (transB ? n : k) * ldb, strideC: m * ldc))
            var expected = c0
            for index in 0..<count {
                for i in 0..<m {
                    for j in 0..<n {
                        var sum: Double = 0
                        for p in 0..<k {
                            let av = transA ? a[p * lda + i] : a[i * lda + p]
                            let bv = transB ? b[index * n * ldb + j * ldb + p] : b[index * k * ldb + p * ldb + j]
                            sum += Double(av) * Double(bv)
                        }
                        let at = index * m * ldc + i * ldc + j
                        expected[at] = Float(Double(alpha) * sum + Double(beta) * Double(c0[at]))
                    }
                }
            }
            #expect(KernelChecks.close(try cs.floats(), expected, tolerance: 1e-5), "transA \(transA), transB \(transB)")
        }
    }

    /// One Adam step (bias corrections from the host) over a flat parameter buffer equals
    /// `Engine/Optim/Adam.swift`'s formula.
    func adamWithHostCorrections() throws {
        let n = 1001
        let w = values(n, seed: 3), g = values(n, seed: 4)
        let m0 = values(n, seed: 5).map { $0 * 0.1 }, v0 = values(n, seed: 6).map { $0 * $0 * 0.01 }
        let (lr, b1, b2, eps, t): (Float, Float, Float, Float, Float) = (2e-4, 0.5, 0.999, 1e-8, 3)
        let c1 = 1 - pow(b1, t), c2 = 1 - pow(b2, t)
        let ws = try device.upload(w), gs = try device.upload(g), ms = try device.upload(m0), vs = try device.upload(v0)
        try device.launch("adam_step", grid: 4, block: 128, [.buffer(ws), .buffer(gs), .buffer(ms), .buffer(vs), .int64(n),
                                                             .float(lr), .float(b1), .float(b2), .float(eps), .float(c1), .float(c2),
                                                             .float(0), .int32(0)])
        let out = try ws.floats()
        for i in 0..<n {
            let m = b1 * m0[i] + (1 - b1) * g[i], v = b2 * v0[i] + (1 - b2) * g[i] * g[i]
            let expected = w[i] - lr * (m / c1) / ((v / c2).squareRoot() + eps)
            #expect(abs(out[i] - expected) <= 1e-6 * max(1, abs(expected)), "parameter \(i)")
        }
    }

    /// Three Adam steps with the step count in device memory (as a captured graph runs them)
    /// against the engine's Adam.
    func adamWithADeviceStepCount() throws {
        let count = 1001
        let parameter = Parameter("w", shape: [count])
        let w0 = values(count, seed: 16)
        for i in 0..<count { parameter.value[i] = w0[i] }
        let adam = Adam([parameter], learningRate: 2e-4, beta1: 0.5, beta2: 0.999)
        let w = try device.upload(w0), m = try device.upload([Float](repeating: 0, count: count))
        let v = try device.upload([Float](repeating: 0, count: count)), step = try device.upload([Int32](repeating: 0, count: 2))
        for round in 0..<3 {
            let g = values(count, seed: 17 + UInt64(round))
            for i in 0..<count { parameter.grad[i] = g[i] }
            adam.update()
            let gs = try device.upload(g)
            try device.launch("adam_step_device", grid: 2, block: 64, [.buffer(w), .buffer(gs), .buffer(m), .buffer(v), .int64(count),
                                                                      .float(2e-4), .float(0.5), .float(0.999), .float(1e-8), .buffer(step),
                                                                      .float(0), .int32(0)])
            try device.launch("adam_advance", grid: 1, block: 1, [.buffer(step)])
        }
        #expect(KernelChecks.close(try w.floats(), parameter.value.values, tolerance: 1e-6))
        #expect(KernelChecks.close(try m.floats(), adam.firstMoments[0].values, tolerance: 1e-6))
    }

    /// im2col and col2im against the engine's: im2col only copies, so it matches exactly;
    /// col2im adds in another order than the CPU's, so within float rounding.
    func im2colAndCol2im(_ g: ConvGeometry) throws {
        let image = values(g.batch * g.channels * g.height * g.width, seed: 7), cols = values(g.patchSize * g.columnCount, seed: 8)
        let cpu = KernelChecks.cpuConvolution(g, image: image, cols: cols)
        let plane = g.height * g.width
        // The image by image and channel-major ((C, B, H, W) in memory): the same columns.
        for major in [false, true] {
            let geometry = KernelArgument.int32s(KernelChecks.fields(g, channelMajor: major))
            let laidOut = major ? swapLeadingAxes(image, a: g.batch, b: g.channels, inner: plane) : image
            func imageMajor(_ v: [Float]) -> [Float] {
                major ? swapLeadingAxes(v, a: g.channels, b: g.batch, inner: plane) : v
            }
            let images = try device.upload(laidOut), columns = try device.allocate(bytes: cols.count * 4)
            try device.launch("im2col", grid: 3, block: 32, [.buffer(images), .buffer(columns), geometry])
            #expect(try columns.floats() == cpu.cols, "channel-major: \(major)")
            let given = try device.upload(cols), back = try device.allocate(bytes: image.count * 4)
            try device.launch("col2im", grid: 3, block: 32, [.buffer(given), .buffer(back), geometry, .address(0)])
            let gathered = imageMajor(try back.floats())
            #expect(KernelChecks.close(gathered, cpu.image), "channel-major: \(major)")
            // With a bias per image channel: each gathered sum plus its channel's bias.
            let bias = values(g.channels, seed: 11)
            try device.launch("col2im", grid: 3, block: 32, [.buffer(given), .buffer(back), geometry, .buffer(try device.upload(bias))])
            #expect(imageMajor(try back.floats()) == gathered.indices.map { gathered[$0] + bias[($0 / plane) % g.channels] },
                    "channel-major: \(major)")
        }
    }

    /// from_channel_major: (C, B, S) to (B, C, S), with a bias per channel and without.
    func fromChannelMajor() throws {
        let (batch, channels, inner) = (3, 5, 7)
        let source = values(batch * channels * inner, seed: 12), bias = values(channels, seed: 13)
        let sources = try device.upload(source), y = try device.allocate(bytes: source.count * 4)
        func expected(_ withBias: Bool) -> [Float] {
            source.indices.map { i in
                let s = i % inner, c = (i / inner) % channels, b = i / (inner * channels)
                let value = source[(c * batch + b) * inner + s]
                return withBias ? value + bias[c] : value
            }
        }
        let arguments: [KernelArgument] = [.int32(Int32(batch)), .int32(Int32(channels)), .int32(Int32(inner))]
        try device.launch("from_channel_major", grid: 2, block: 32, [.buffer(sources), .buffer(y), .address(0)] + arguments)
        #expect(try y.floats() == expected(false))
        try device.launch("from_channel_major", grid: 2, block: 32, [.buffer(sources), .buffer(y), .buffer(try device.upload(bias))] + arguments)
        #expect(try y.floats() == expected(true))
    }

    func biasAndItsGradient() throws {
        let (batch, channels, spatial) = (3, 5, 49)
        let y = values(batch * channels * spatial, seed: 9), bias = values(channels, seed: 10)
        let ys = try device.upload(y), biases = try device.upload(bias), db = try zeros(channels)
        try device.launch("add_channel_bias", grid: 2, block: 64, [.buffer(ys), .buffer(biases), .int64(batch), .int32(Int32(channels)), .int64(spatial)])
        let added = try ys.floats()
        #expect(added == y.indices.map { y[$0] + bias[($0 / spatial) % channels] })
        try device.launch("channel_bias_gradient", grid: channels, block: ConvolutionKernels.reductionBlock,
                          [.buffer(biases), .buffer(db), .address(0), .int64(1), .int32(Int32(channels)), .int64(1), .int32(1)])
        #expect(try db.floats() == bias, "one element per channel sums to itself")
        var expected = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            var sum: Double = 0
            for b in 0..<batch { for s in 0..<spatial { sum += Double(added[(b * channels + c) * spatial + s]) } }
            expected[c] = Float(sum)
        }
        // One block per channel, then each channel split into 1..4 slices (the last one short:
        // 147 values in 4 slices of 37) whose partials `sum_slices` adds; the gradient adds to db.
        for slices in 1...4 {
            let start = values(channels, seed: 14)
            try device.write(start, to: db.address)
            let partials = try zeros(channels * slices)
            try device.launch("channel_bias_gradient", grid: channels * slices, block: ConvolutionKernels.reductionBlock,
                              [.buffer(ys), .buffer(db), slices == 1 ? .address(0) : .buffer(partials), .int64(batch),
                               .int32(Int32(channels)), .int64(spatial), .int32(Int32(slices))])
            if slices > 1 {
                try device.launch("sum_slices", grid: 1, block: 32, [.buffer(partials), .buffer(db), .int32(Int32(channels)), .int32(Int32(slices))])
            }
            #expect(KernelChecks.close(try db.floats(), zip(start, expected).map { $0 + $1 }, tolerance: 1e-4), "\(slices) slices")
        }
        #expect(ChannelReduction.slices(channels: 1, count: 262_144) == 128)
        #expect(ChannelReduction.slices(channels: 64, count: 65_536) == 8)
        #expect(ChannelReduction.slices(channels: 4096, count: 64) == 1)
        #expect(ChannelReduction.slices(channels: 128, count: 4096) == 2)
        #expect(ChannelReduction.slices(channels: 128, count: 4096, splitFrom: ChannelReduction.batchNormSplitFrom) == 1)
        #expect(ChannelReduction.slices(channels: 64, count: 16_384, splitFrom: ChannelReduction.batchNormSplitFrom) == 8)
    }

    /// The hinge losses and their gradients equal `HingeLoss`'s, the kink included; the
    /// logits' mean comes with them.
    func hingeLosses(count: Int) throws {
        var logits = values(count, seed: 11)
        if count > 2 { logits[0] = 1; logits[1] = -1 }  // on the kink for real and for generated images
        let tensor = Tensor(shape: [count], values: logits)
        let mean = Float(logits.map(Double.init).reduce(0, +) / Double(count))
        let input = try device.upload(logits), gradient = try device.allocate(bytes: count * 4), out = try device.allocate(bytes: 8)
        for real in [true, false] {
            let cpuGradient = Tensor(zeros: [count])
            let cpuLoss = HingeLoss.discriminator(tensor, real: real, gradient: cpuGradient)
            try device.launch("hinge_discriminator", grid: 1, block: LossKernels.block,
                              [.buffer(input), .buffer(gradient), .buffer(out), .int64(count), .float(real ? 1 : -1)])
            #expect(KernelChecks.close(try out.floats(), [cpuLoss, mean]))
            #expect(try gradient.floats() == cpuGradient.values)
        }
        let cpuGradient = Tensor(zeros: [count])
        let cpuLoss = HingeLoss.generator(tensor, gradient: cpuGradient)
        try device.launch("hinge_generator", grid: 1, block: LossKernels.block, [.buffer(input), .buffer(gradient), .buffer(out), .int64(count)])
        #expect(KernelChecks.close(try out.floats(), [cpuLoss, mean]))
        #expect(try gradient.floats() == cpuGradient.values)
    }

    /// Binary cross-entropy on logits against both targets: loss, gradient and the logits'
    /// mean against `BinaryCrossEntropyWithLogits`, large logits included.
    func binaryCrossEntropy(count: Int) throws {
        var logits = values(count, seed: 33)
        if count > 2 { logits[0] = 40; logits[1] = -40 }
        let tensor = Tensor(shape: [count], values: logits)
        let mean = Float(logits.map(Double.init).reduce(0, +) / Double(count))
        let input = try device.upload(logits), gradient = try device.allocate(bytes: count * 4), out = try device.allocate(bytes: 8)
        for target: Float in [1, 0] {
            let cpuGradient = Tensor(zeros: [count])
            let cpuLoss = BinaryCrossEntropyWithLogits()(tensor, target: target, gradient: cpuGradient)
            try device.launch("bce_logits", grid: 1, block: LossKernels.block,
                              [.buffer(input), .buffer(gradient), .buffer(out), .int64(count), .float(target)])
            #expect(KernelChecks.close(try out.floats(), [cpuLoss, mean], tolerance: 1e-5))
            #expect(KernelChecks.close(try gradient.floats(), cpuGradient.values, tolerance: 1e-6))
        }
    }

    /// DiffAugment's forward map against a plain transcription of the documented maps with
    /// the parameters the device drew; the backward pass as the adjoint of the forward map's
    /// linear part: <F(x) - F(0), g> = <x, B(g)>.
    func augmentation(channels: Int) throws {
        let (batch, height, width) = (5, 12, 12)
        let size = channels * height * width
        let x = values(batch * size, seed: 12), g = values(batch * size, seed: 13)
        let params = try device.allocate(bytes: batch * 8 * 4), step = try device.upload([Int32](repeating: 0, count: 2))
        try device.launch("augment_draw", grid: 1, block: 32, [.buffer(params), .int32(Int32(batch)), .int32(Int32(height)),
                                                               .int32(Int32(width)), .int32(7), .uint64(42), .buffer(step),
                                                               .buffer(try device.upload([Float(1)]))])
        let p = try params.floats()
        #expect(KernelChecks.plausible(p), "\(p)")
        #expect(Set(stride(from: 0, to: p.count, by: 8).map { p[$0] }).count == batch, "each image draws its own")
        let geometry: [KernelArgument] = [.int32(Int32(channels)), .int32(Int32(height)), .int32(Int32(width))]
        func forward(_ input: [Float]) throws -> [Float] {
            let from = try device.upload(input), to = try device.allocate(bytes: input.count * 4)
            try device.launch("augment_forward", grid: batch, block: AugmentKernels.block, [.buffer(from), .buffer(to), .buffer(params)] + geometry)
            return try to.floats()
        }
        let y = try forward(x)
        #expect(KernelChecks.close(y, KernelChecks.augment(x, parameters: p, channels: channels, height: height, width: width)))
        let offset = try forward([Float](repeating: 0, count: x.count))
        let gs = try device.upload(g), dx = try device.allocate(bytes: g.count * 4)
        try device.launch("augment_backward", grid: batch, block: AugmentKernels.block, [.buffer(gs), .buffer(dx), .buffer(params)] + geometry)
        let (left, right) = KernelChecks.adjointSides(x: x, fx: y, f0: offset, g: g, bg: try dx.floats())
        #expect(abs(left - right) <= 1e-4 * max(1, abs(left)), "<F(x) - F(0), g> = \(left), <x, B(g)> = \(right)")
    }

    /// Adaptive augmentation's draws: at probability 0 every image keeps identity parameters,
    /// at 1 every transform is drawn for every image, at 0.5 each transform for some images and
    /// not others, each image deciding on its own (colour, translation and cutout apart).
    func augmentationProbability() throws {
        let (batch, side) = (256, 16)
        let step = try device.upload([Int32](repeating: 0, count: 2))
        func draw(_ probability: Float) throws -> [[Float]] {
            let params = try device.allocate(bytes: batch * 8 * 4)
            try device.launch("augment_draw", grid: batch / 32, block: 32,
                              [.buffer(params), .int32(Int32(batch)), .int32(Int32(side)), .int32(Int32(side)), .int32(7),
                               .uint64(7), .buffer(step), .buffer(try device.upload([probability]))])
            let p = try params.floats()
            return (0..<batch).map { Array(p[8 * $0..<8 * $0 + 8]) }
        }
        // Which transforms an image's parameters apply (a drawn shift of 0 in both directions
        // looks like none: counted apart by the colour and cut tests).
        func colour(_ p: [Float]) -> Bool { p[0] != 0 || p[1] != 1 || p[2] != 1 }
        func cut(_ p: [Float]) -> Bool { p[7] != 0 }
        let never = try draw(0)
        #expect(never.allSatisfy { $0 == [0, 1, 1, 0, 0, 0, 0, 0] }, "p = 0 applies nothing")
        let always = try draw(1)
        #expect(always.allSatisfy { colour($0) && cut($0) }, "p = 1 applies colour and cutout to every image")
        let half = try draw(0.5)
        let colours = half.filter(colour).count, cuts = half.filter(cut).count
        let both = half.filter { colour($0) && cut($0) }.count
        #expect((88...168).contains(colours) && (88...168).contains(cuts), "p = 0.5: \(colours) and \(cuts) of \(batch)")
        // Independent decisions: about a quarter of the images get both, not half or none.
        #expect((32...96).contains(both), "p = 0.5: \(both) of \(batch) got colour and cutout")
    }

    /// BatchNorm in training mode fused with its activation (0: none, 2: LeakyReLU 0.2) against
    /// the engine's BatchNorm2d (and Activation): output, running statistics, and the
    /// gradients of the input, gamma and beta. With `offset` the inputs sit far from zero
    /// (mean 300, spread 0.6), where a variance taken as E[x^2] - mean^2 in Float loses most
    /// of its digits: the engine takes two passes, the kernels shift by one of the channel's
    /// values first. With `inputBias` the kernels get x less a bias per channel and the bias
    /// (`input_bias`: a convolution's bias left to the BatchNorm that cancels it): the same
    /// outputs, the running mean the model's.
    func batchNorm(activation: Int32, offset: Float = 0, inputBias: Bool = false) throws {
        let (n, c, h, w) = (3, 4, 5, 7)
        let x = values(n * c * h * w, seed: 14).map { $0 + offset }, dy = values(n * c * h * w, seed: 15)
        let bias = inputBias ? values(c, seed: 16) : [Float](repeating: 0, count: c)
        let unbiased = x.indices.map { x[$0] - bias[($0 / (h * w)) % c] }
        let biasArgument: KernelArgument = inputBias ? .buffer(try device.upload(bias)) : .address(0)
        // No class table (scale, shift, labels: null; the maps' area); the generator's is `DeviceLayerChecks`'.
        let noClasses: [KernelArgument] = [.address(0), .address(0), .address(0), .int32(Int32(h * w))]
        let noClassScale: [KernelArgument] = [.address(0), .address(0), .int32(Int32(h * w))]
        let norm = BatchNorm2d("bn", channels: c)
        let gammas = (0..<c).map { 0.5 + Float($0) * 0.25 }, betas = (0..<c).map { Float($0) * 0.1 - 0.15 }
        for i in 0..<c { norm.gamma.value[i] = gammas[i]; norm.beta.value[i] = betas[i] }
        let leaky = Activation(.leakyReLU(slope: 0.2))
        var y = norm.forward(Tensor(shape: [n, c, h, w], values: x))
        if activation == 2 { y = leaky.forward(y) }
        let gradient = Tensor(shape: [n, c, h, w], values: dy)
        let dx = norm.backward(activation == 2 ? leaky.backward(gradient) : gradient)

        let xs = try device.upload(unbiased), ys = try device.allocate(bytes: x.count * 4), xhat = try device.allocate(bytes: x.count * 4)
        let gamma = try device.upload(gammas), beta = try device.upload(betas)
        let mean = try device.allocate(bytes: c * 4), invStd = try device.allocate(bytes: c * 4)
        let runningMean = try device.upload([Float](repeating: 0, count: c)), runningVar = try device.upload([Float](repeating: 1, count: c))
        try device.launch("batchnorm_forward_training", grid: c, block: 256,
                          [.buffer(xs), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(beta), .buffer(mean), .buffer(invStd),
                           .buffer(runningMean), .buffer(runningVar), .int32(Int32(n)), .int32(Int32(c)), .int32(Int32(h * w)),
                           .float(norm.eps), .float(norm.momentum), .int32(activation), .float(0.2), biasArgument] + noClasses)
        let dys = try device.upload(dy), dxs = try device.allocate(bytes: x.count * 4)
        let dgamma = try zeros(c), dbeta = try zeros(c)
        try device.launch("batchnorm_backward_training", grid: c, block: 256,
                          [.buffer(dys), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(invStd), .buffer(dxs), .buffer(dgamma),
                           .buffer(dbeta), .int32(Int32(n)), .int32(Int32(c)), .int32(Int32(h * w)), .int32(activation), .float(0.2)]
                          + noClassScale)
        #expect(KernelChecks.close(try ys.floats(), y.values, tolerance: 1e-4))
        #expect(KernelChecks.close(try runningMean.floats(), norm.runningMean.values, tolerance: 1e-5))
        #expect(KernelChecks.close(try runningVar.floats(), norm.runningVar.values, tolerance: 1e-5))
        #expect(KernelChecks.close(try dxs.floats(), dx.values, tolerance: 1e-3))
        #expect(KernelChecks.close(try dgamma.floats(), norm.gamma.grad.values, tolerance: 1e-4))
        #expect(KernelChecks.close(try dbeta.floats(), norm.beta.grad.values, tolerance: 1e-4))

        // Split over 3 blocks per channel (105 values: slices of 35), three kernels each way.
        let slices = 3
        let shape: [KernelArgument] = [.int32(Int32(n)), .int32(Int32(c)), .int32(Int32(h * w))]
        let partials = try device.allocate(bytes: 2 * c * slices * 4), means = try device.allocate(bytes: 2 * c * 4)
        try device.write([Float](repeating: 0, count: c), to: runningMean.address)
        try device.write([Float](repeating: 1, count: c), to: runningVar.address)
        try device.launch("batchnorm_partial_stats", grid: c * slices, block: 256, [.buffer(xs), .buffer(partials)] + shape + [.int32(Int32(slices))])
        try device.launch("batchnorm_finish_stats", grid: 1, block: 32,
                          [.buffer(xs), .buffer(partials), .buffer(mean), .buffer(invStd), .buffer(runningMean), .buffer(runningVar), .int32(Int32(c)),
                           .int32(Int32(slices)), .int32(Int32(n)), .int32(Int32(h * w)), .float(norm.eps), .float(norm.momentum),
                           biasArgument])
        try device.launch("batchnorm_normalize", grid: 5, block: 64,
                          [.buffer(xs), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(beta), .buffer(mean), .buffer(invStd)] + shape
                          + [.int32(activation), .float(0.2)] + noClasses)
        let splitGamma = try zeros(c), splitBeta = try zeros(c)
        try device.launch("batchnorm_partial_grad", grid: c * slices, block: 256,
                          [.buffer(dys), .buffer(ys), .buffer(xhat), .buffer(partials)] + shape + [.int32(activation), .float(0.2), .int32(Int32(slices))] + noClassScale)
        try device.launch("batchnorm_finish_grad", grid: 1, block: 32,
                          [.buffer(partials), .buffer(gamma), .buffer(splitGamma), .buffer(splitBeta), .buffer(means), .int32(Int32(c)),
                           .int32(Int32(slices)), .int32(Int32(n)), .int32(Int32(h * w))])
        try device.launch("batchnorm_input_grad", grid: 5, block: 64,
                          [.buffer(dys), .buffer(ys), .buffer(xhat), .buffer(gamma), .buffer(invStd), .buffer(means), .buffer(dxs)] + shape
                          + [.int32(activation), .float(0.2)] + noClassScale)
        #expect(KernelChecks.close(try ys.floats(), y.values, tolerance: 1e-4), "split: y")
        #expect(KernelChecks.close(try runningMean.floats(), norm.runningMean.values, tolerance: 1e-5), "split: running mean")
        #expect(KernelChecks.close(try runningVar.floats(), norm.runningVar.values, tolerance: 1e-5), "split: running variance")
        #expect(KernelChecks.close(try dxs.floats(), dx.values, tolerance: 1e-3), "split: dx")
        #expect(KernelChecks.close(try splitGamma.floats(), norm.gamma.grad.values, tolerance: 1e-4), "split: dgamma")
        #expect(KernelChecks.close(try splitBeta.floats(), norm.beta.grad.values, tolerance: 1e-4), "split: dbeta")
    }

    /// Embedding and projection head, forward and backward, against the engine's layers (the
    /// generator's class scale and shift: `DeviceLayerChecks.classConditionalBatchNorm`);
    /// labels repeat and one class is absent, as in a real batch.
    func classConditioning() throws {
        let (batch, classes, features) = (6, 4, 5)
        let labels: [Int32] = [2, 0, 2, 3, 0, 2]
        let labelBuffer = try device.upload(labels)

        // Projection head, its Linear part and class term together, over flat features (one
        // map of `features` channels, area 1). Fewer blocks and threads than images and
        // features: each loops.
        let head = ProjectionHead("head", features: features, classes: classes)
        let table = values(classes * features, seed: 20), weights = values(features, seed: 24)
        for i in table.indices { head.embedding.weight.value[i] = table[i] }
        for i in weights.indices { head.linear.weight.value[i] = weights[i] }
        head.linear.bias!.value[0] = 0.375
        let phi = values(batch * features, seed: 21), dy = values(batch, seed: 22)
        let cpuY = head.forward(Tensor(shape: [batch, features], values: phi), labels: labels)
        let cpuDphi = try #require(head.backward(Tensor(shape: [batch], values: dy)))
        let phis = try device.upload(phi), tables = try device.upload(table), ys = try zeros(batch)
        let weight = try device.upload(weights), bias = try device.upload([Float(0.375)])
        let dys = try device.upload(dy), dphi = try zeros(phi.count), dtable = try zeros(table.count)
        let dweight = try zeros(features), dbias = try zeros(1)
        let geometry: [KernelArgument] = [.int32(Int32(features)), .int32(1), .int32(0)]
        try device.launch("projection_head_forward", grid: 2, block: 4,
                          [.buffer(phis), .buffer(weight), .buffer(bias), .buffer(tables), .buffer(labelBuffer), .buffer(ys),
                           .int32(Int32(batch))] + geometry)
        try device.launch("projection_head_input_grad", grid: 2, block: 8,
                          [.buffer(dys), .buffer(weight), .buffer(tables), .buffer(labelBuffer), .buffer(dphi), .int32(Int32(batch))] + geometry)
        try device.launch("projection_head_parameter_grad", grid: 2, block: 8,
                          [.buffer(phis), .buffer(dys), .buffer(labelBuffer), .buffer(dweight), .buffer(dbias), .buffer(dtable),
                           .int32(Int32(batch)), .int32(Int32(classes))] + geometry)
        #expect(KernelChecks.close(try ys.floats(), cpuY.values))
        #expect(KernelChecks.close(try dphi.floats(), cpuDphi.values))
        #expect(KernelChecks.close(try dtable.floats(), head.embedding.weight.grad.values))
        #expect(KernelChecks.close(try dweight.floats(), head.linear.weight.grad.values))
        #expect(KernelChecks.close(try dbias.floats(), head.linear.bias!.grad.values))

        // Embedding alone.
        let embedding = Embedding("embed", count: classes, dimension: features)
        for i in table.indices { embedding.weight.value[i] = table[i] }
        let rows = embedding.forward(labels)
        let dRows = values(batch * features, seed: 23)
        embedding.backward(Tensor(shape: [batch, features], values: dRows))
        let out = try device.allocate(bytes: batch * features * 4), dRowBuffer = try device.upload(dRows)
        let dEmbedding = try zeros(table.count)
        try device.launch("embedding_forward", grid: 2, block: 8, [.buffer(tables), .buffer(labelBuffer), .buffer(out),
                                                                   .int32(Int32(batch)), .int32(Int32(features))])
        try device.launch("embedding_backward", grid: 2, block: 8, [.buffer(dRowBuffer), .buffer(labelBuffer), .buffer(dEmbedding),
                                                                    .int32(Int32(batch)), .int32(Int32(classes)), .int32(Int32(features))])
        #expect(try out.floats() == rows.values)
        #expect(KernelChecks.close(try dEmbedding.floats(), embedding.weight.grad.values))
    }

    /// Batches gathered on the device are dataset images scaled to [-1, 1] with their labels,
    /// new ones at every step; latent vectors are standard normal times the temperature and
    /// labels cover the classes.
    func batchesAndLatents() throws {
        let (count, imageBytes, batch) = (7, 12, 16)
        let pixels = (0..<(count * imageBytes)).map { UInt8(($0 * 37) % 256) }
        let labels: [Int32] = (0..<count).map { Int32($0 % 3) }
        let images = try device.upload(pixels), labelBuffer = try device.upload(labels)
        let step = try device.upload([Int32](repeating: 0, count: 2))
        let first = try device.allocate(bytes: batch * imageBytes * 4), firstLabels = try device.allocate(bytes: batch * 4)
        let second = try device.allocate(bytes: batch * imageBytes * 4), secondLabels = try device.allocate(bytes: batch * 4)
        func gather(_ out: DeviceBuffer, _ outLabels: DeviceBuffer) throws {
            try device.launch("gather_batch", grid: batch, block: 8,
                              [.buffer(images), .buffer(labelBuffer), .int64(count), .int32(Int32(imageBytes)), .buffer(out),
                               .buffer(outLabels), .int32(Int32(batch)), .uint64(9), .buffer(step)])
        }
        try gather(first, firstLabels)
        try device.launch("advance_step", grid: 1, block: 1, [.buffer(step)])
        try gather(second, secondLabels)
        let (n, classes, temperature): (Int, Int32, Float) = (4001, 5, 1.5)
        let z = try device.allocate(bytes: n * 4), zLabels = try device.allocate(bytes: batch * 4)
        try device.launch("draw_latents", grid: 4, block: 64, [.buffer(z), .int64(n), .buffer(zLabels), .int32(Int32(batch)),
                                                              .int32(classes), .float(temperature), .uint64(3), .buffer(step),
                                                              .int32(0)])
        for (rows, rowLabels) in [(try first.floats(), try firstLabels.int32s()), (try second.floats(), try secondLabels.int32s())] {
            for row in 0..<batch {
                let image = Array(rows[(row * imageBytes)..<((row + 1) * imageBytes)])
                let source = (0..<count).first { index in
                    (0..<imageBytes).allSatisfy { abs(image[$0] - (Float(pixels[index * imageBytes + $0]) * 2 / 255 - 1)) < 1e-6 }
                }
                let index = try #require(source, "row \(row) is a dataset image scaled to [-1, 1]")
                #expect(rowLabels[row] == labels[index])
            }
        }
        #expect(try first.floats() != second.floats(), "a new batch at every step")
        let latents = try z.floats()
        let mean = latents.reduce(0, +) / Float(n)
        let deviation = (latents.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n)).squareRoot()
        #expect(abs(mean) < 0.1 && abs(deviation - temperature) < 0.1, "mean \(mean), deviation \(deviation)")
        let drawn = Set(try zLabels.int32s())
        #expect(drawn.isSubset(of: Set(0..<classes)) && drawn.count >= 3, "\(drawn)")
        // Paired (the mode-seeking term): the same vectors, the first half's labels, repeated.
        let pairedZ = try device.allocate(bytes: n * 4), pairedLabels = try device.allocate(bytes: batch * 4)
        try device.launch("draw_latents", grid: 4, block: 64, [.buffer(pairedZ), .int64(n), .buffer(pairedLabels), .int32(Int32(batch)),
                                                              .int32(classes), .float(temperature), .uint64(3), .buffer(step),
                                                              .int32(1)])
        let unpaired = try zLabels.int32s(), paired = try pairedLabels.int32s()
        #expect(try pairedZ.floats() == latents)
        #expect(Array(paired[..<(batch / 2)]) == Array(unpaired[..<(batch / 2)]) && Array(paired[(batch / 2)...]) == Array(unpaired[..<(batch / 2)]),
                "\(paired) from \(unpaired)")
    }

    /// Generated images as bytes (`Sampler.square`'s rounding) and as the judge sees them: the
    /// dataset's w x h centre, padded back with its border's most common colour
    /// (`Resampling.unfit`, then `Resampling.pad`), on palettes small enough for ties.
    func imagesForTheJudge(channels: Int) throws {
        let (batch, side) = (6, 12)
        var rng = RandomGenerator(seed: UInt64(channels))
        var floats: [Float] = []
        for image in 0..<batch {
            // A few levels per image (ties in the border's counts); one level exactly half-way
            // between two bytes ((k + 0.5) / 127.5 - 1 rounds away from zero), some outside [-1, 1].
            let palette = (0...(image % 4 + 1)).map { _ in Float(rng.int(below: 2300)) / 1000 - 1.15 } + [Float(100.5 / 127.5) - 1]
            floats += (0..<(channels * side * side)).map { _ in palette[rng.int(below: palette.count)] }
        }
        let images = try device.upload(floats), bytes = try device.allocate(bytes: floats.count)
        try device.launch("quantize_images", grid: 3, block: 64,
                          [.buffer(images), .buffer(bytes), .int64(batch), .int32(Int32(channels)), .int32(Int32(side * side))])
        let quantized = try device.bytes(at: bytes.address, count: floats.count)
        let plane = side * side
        var expected = [UInt8](repeating: 0, count: floats.count)
        for b in 0..<batch {
            for p in 0..<plane {
                for c in 0..<channels {
                    let v = (floats[(b * channels + c) * plane + p] + 1) * 127.5
                    expected[(b * plane + p) * channels + c] = UInt8(max(0, min(255, v.rounded())))
                }
            }
        }
        #expect(quantized == expected)

        let mode: Image.Mode = channels == 3 ? .rgb : .grey
        let input = try device.allocate(bytes: floats.count * 4)
        for (width, height) in [(9, 12), (12, 12), (7, 5), (12, 1)] {
            try device.launch("judge_input", grid: batch, block: 256, [.buffer(bytes), .buffer(input), .int32(Int32(channels)),
                                                                      .int32(Int32(side)), .int32(Int32(width)), .int32(Int32(height))])
            let got = try input.floats()
            for b in 0..<batch {
                let square = Image(width: side, height: side, mode: mode,
                                   pixels: Array(quantized[(b * plane * channels)..<((b + 1) * plane * channels)]))
                let seen = Resampling.pad(Resampling.unfit(square, width: width, height: height), to: side)
                let want = (0..<(channels * plane)).map { i in Float(seen.pixels[(i % plane) * channels + i / plane]) * (2 / 255) - 1 }
                let row = Array(got[(b * channels * plane)..<((b + 1) * channels * plane)])
                #expect(KernelChecks.close(row, want, tolerance: 1e-6), "image \(b), \(width) x \(height)")
            }
        }
    }
}
