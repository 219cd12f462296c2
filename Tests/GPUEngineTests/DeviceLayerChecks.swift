import CUDA
import Engine
import GPUEngine
import NumericTestSupport
import Testing

/// Each device layer against its CPU layer (`Engine/Layers`) on odd shapes: the same weights
/// and input, then output, input gradient and parameter gradients compared. Written once
/// against `KernelDevice`; `EmulatedLayerTests` runs them on the CPU emulation in CI and
/// `GPULayerTests` on a GPU.
struct DeviceLayerChecks {
    let device: any KernelDevice

    /// Deterministic values in [-scale, scale].
    static func values(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(Int(state >> 40) % 2001) / 1000 - 1) * scale
        }
    }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// Fills every parameter of `parameters` with distinct values.
    static func randomize(_ parameters: [Parameter], seed: UInt64, scale: Float = 0.5) {
        for (index, parameter) in parameters.enumerated() {
            let v = values(parameter.value.count, seed: seed + UInt64(index) * 101, scale: scale)
            for i in v.indices { parameter.value[i] = v[i] }
        }
    }

    func tensor(_ shape: [Int], seed: UInt64) throws -> (cpu: Tensor, device: DeviceTensor) {
        let cpu = Tensor(shape: shape, values: Self.values(shape.reduce(1, *), seed: seed))
        return (cpu, try DeviceTensor(cpu, on: device))
    }

    /// The CPU gradients (taken before the arena's overwrite them) against the device's.
    func expectGradients(_ arena: ParameterArena, tolerance: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let cpu = arena.parameters.map { $0.grad.values }
        try arena.downloadGradients()
        for (parameter, expected) in zip(arena.parameters, cpu) {
            #expect(Self.close(parameter.grad.values, expected, tolerance: tolerance), "\(parameter.name)", sourceLocation: sourceLocation)
        }
    }

    func linear() throws {
        let layer = Linear("fc", inFeatures: 7, outFeatures: 5)
        Self.randomize(layer.parameters, seed: 1)
        let arena = try ParameterArena(layer.parameters, on: device)
        let gpu = DeviceLinear(layer, arena: arena)
        let (x, dx) = (try tensor([3, 7], seed: 2), try tensor([3, 5], seed: 3))
        let y = layer.forward(x.cpu)
        let inputGradient = try #require(layer.backward(dx.cpu))
        // The input in two parts (as the generator's latent vector and class embedding).
        let a = try DeviceTensor(Tensor(shape: [3, 4], values: (0..<3).flatMap { Array(x.cpu.values[($0 * 7)..<($0 * 7 + 4)]) }), on: device)
        let b = try DeviceTensor(Tensor(shape: [3, 3], values: (0..<3).flatMap { Array(x.cpu.values[($0 * 7 + 4)..<($0 * 7 + 7)]) }), on: device)
        #expect(Self.close(try gpu.forward(parts: [a, b]).values(), y.values, tolerance: 1e-5))
        let parts = try gpu.backward(dx.device, inputGradient: [true, true])
        let first = try #require(parts[0]).values(), second = try #require(parts[1]).values()
        var joined: [Float] = []
        for row in 0..<3 { joined += first[(row * 4)..<(row * 4 + 4)]; joined += second[(row * 3)..<(row * 3 + 3)] }
        #expect(Self.close(joined, inputGradient.values, tolerance: 1e-5))
        try expectGradients(arena)
    }

    /// A layer's forward and backward on both sides from the same input and output gradient:
    /// output, input gradient and parameter gradients compared.
    func compare(input shape: [Int], seed: UInt64, arena: ParameterArena,
                 cpu: (forward: (Tensor) -> Tensor, backward: (Tensor) -> Tensor?),
                 device: (forward: (DeviceTensor) throws -> DeviceTensor, backward: (DeviceTensor) throws -> DeviceTensor?),
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        let x = try tensor(shape, seed: seed)
        let y = cpu.forward(x.cpu)
        let dy = try tensor(y.shape, seed: seed + 1)
        let dx = try #require(cpu.backward(dy.cpu))
        let deviceY = try device.forward(x.device)
        #expect(deviceY.shape == y.shape, sourceLocation: sourceLocation)
        #expect(Self.close(try deviceY.values(), y.values, tolerance: 1e-5), "output", sourceLocation: sourceLocation)
        let deviceDx = try #require(try device.backward(dy.device))
        #expect(Self.close(try deviceDx.values(), dx.values, tolerance: 1e-5), "input gradient", sourceLocation: sourceLocation)
        try expectGradients(arena, sourceLocation: sourceLocation)
    }

    /// Conv2d: the reference model's 4/2/1 on an odd-sized input, and 3/1/1.
    func conv2d(kernel: Int, stride: Int, padding: Int) throws {
        let layer = Conv2d("conv", inChannels: 3, outChannels: 5, kernelSize: kernel, stride: stride, padding: padding)
        Self.randomize(layer.parameters, seed: 4, scale: 0.2)
        let arena = try ParameterArena(layer.parameters, on: device)
        let gpu = DeviceConv2d(layer, arena: arena)
        try compare(input: [2, 3, 9, 7], seed: 5, arena: arena, cpu: ({ layer.forward($0) }, { layer.backward($0) }),
                    device: ({ try gpu.forward($0) }, { try gpu.backward($0) }))
    }

    func convTranspose2d() throws {
        let layer = ConvTranspose2d("up", inChannels: 3, outChannels: 5, kernelSize: 4, stride: 2, padding: 1)
        Self.randomize(layer.parameters, seed: 7, scale: 0.2)
        let arena = try ParameterArena(layer.parameters, on: device)
        let gpu = DeviceConvTranspose2d(layer, arena: arena)
        try compare(input: [2, 3, 3, 4], seed: 8, arena: arena, cpu: ({ layer.forward($0) }, { layer.backward($0) }),
                    device: ({ try gpu.forward($0) }, { try gpu.backward($0) }))
    }

    /// BatchNorm with the activation the generator (ReLU) and discriminator (LeakyReLU) fuse.
    /// Small channels (one block each) and large ones (9,600 values: four blocks each, the
    /// split reduction's three kernels each way).
    func batchNorm(_ activation: DeviceBatchNorm.FusedActivation) throws {
        try batchNorm(activation, shape: [3, 4, 5, 3], slices: 1)
        try batchNorm(activation, shape: [4, 2, 60, 40], slices: 4)
    }

    /// `slices`: the blocks per channel expected (`ChannelReduction`: one below 8,192 values a
    /// channel, else one per 2,048 values).
    func batchNorm(_ activation: DeviceBatchNorm.FusedActivation, shape: [Int], slices: Int) throws {
        let channels = shape[1]
        let norm = BatchNorm2d("bn", channels: channels)
        Self.randomize(norm.parameters, seed: 10)
        for c in 0..<channels { norm.gamma.value[c] += 1 }
        let arena = try ParameterArena(norm.parameters, on: device)
        let gpu = try DeviceBatchNorm(norm, activation: activation, arena: arena)
        let after: Activation? = switch activation {
        case .none: nil
        case .relu: Activation(.relu)
        case .leakyReLU: Activation(.leakyReLU(slope: 0.2))
        }
        #expect(gpu.slices(n: shape[0], hw: shape[2] * shape[3]) == slices)
        let x = try tensor(shape, seed: 11), dy = try tensor(shape, seed: 12)
        var y = norm.forward(x.cpu)
        if let after { y = after.forward(y) }
        let dx = norm.backward(after?.backward(dy.cpu) ?? dy.cpu)
        #expect(Self.close(try gpu.forward(x.device).values(), y.values, tolerance: 1e-4))
        #expect(Self.close(try gpu.backward(dy.device).values(), dx.values, tolerance: 1e-3))
        try expectGradients(arena)
        let (means, variances) = (norm.runningMean.values, norm.runningVar.values)
        try gpu.downloadBuffers()
        #expect(Self.close(norm.runningMean.values, means, tolerance: 1e-5))
        #expect(Self.close(norm.runningVar.values, variances, tolerance: 1e-5))
    }

    /// The class-conditional generator's BatchNorm -> class scale and shift -> ReLU in the
    /// BatchNorm's kernels against the CPU's `BatchNormActivation`: output, input gradient,
    /// gamma's, beta's and the class table's gradients, running statistics; image by image or
    /// channel-major, one block a channel or split (`shape`). Then sampling, with the batch's
    /// statistics and with given ones, against `normalizeScaleRectifyForSampling`. Labels
    /// repeat, and one class is absent (its table rows get no gradient). `slices` as `batchNorm`'s.
    func classConditionalBatchNorm(shape: [Int], slices: Int, channelMajor: Bool) throws {
        let (batch, channels, area) = (shape[0], shape[1], shape[2] * shape[3]), classes = 4
        let labels = (0..<batch).map { Int32(($0 * 7 + 2) % (classes - 1)) }
        let norm = BatchNorm2d("bn", channels: channels), affine = ClassConditionalAffine("cbn", classes: classes, channels: channels)
        Self.randomize(norm.parameters + affine.parameters, seed: 19)
        for c in 0..<channels { norm.gamma.value[c] += 1 }
        for i in 0..<affine.scale.value.count { affine.scale.value[i] += 1 }
        let arena = try ParameterArena(norm.parameters + affine.parameters, on: device)
        let gpu = try DeviceBatchNorm(norm, classAffine: affine, activation: .relu, arena: arena)
        let cpu = BatchNormActivation(norm, classAffine: affine, activation: .relu)
        let deviceLabels = try DeviceLabels(labels, on: device)
        #expect(gpu.slices(n: batch, hw: area) == slices)
        // Channel-major maps are the same values stored (C, B, area).
        func stored(_ v: [Float]) -> [Float] { channelMajor ? swapLeadingAxes(v, a: batch, b: channels, inner: area) : v }
        func read(_ v: [Float]) -> [Float] { channelMajor ? swapLeadingAxes(v, a: channels, b: batch, inner: area) : v }
        func upload(_ v: [Float]) throws -> DeviceTensor {
            try DeviceTensor(Tensor(shape: shape, values: stored(v)), on: device).laidOut(channelMajor: channelMajor)
        }
        let x = Self.values(batch * channels * area, seed: 20), dy = Self.values(x.count, seed: 21)
        let y = cpu.forward(Tensor(shape: shape, values: x), labels: labels)
        let dx = cpu.backward(Tensor(shape: shape, values: dy))
        let deviceY = try gpu.forward(try upload(x), labels: deviceLabels)
        #expect(deviceY.channelMajor == channelMajor)
        #expect(Self.close(read(try deviceY.values()), y.values, tolerance: 1e-4), "output")
        #expect(Self.close(read(try gpu.backward(try upload(dy)).values()), dx.values, tolerance: 1e-3), "input gradient")
        #expect(affine.scale.grad.values.contains { $0 != 0 } && affine.shift.grad.values.contains { $0 != 0 })
        try expectGradients(arena)
        let (means, variances) = (norm.runningMean.values, norm.runningVar.values)
        try gpu.downloadBuffers()
        #expect(Self.close(norm.runningMean.values, means, tolerance: 1e-5), "running mean")
        #expect(Self.close(norm.runningVar.values, variances, tolerance: 1e-5), "running variance")

        let standing = ChannelStatistics(mean: (0..<channels).map { 0.1 * Double($0) - 0.05 },
                                         variance: (0..<channels).map { 0.5 + 0.25 * Double($0) })
        for given in [nil, standing] {
            let sampled = Tensor(shape: shape, values: x)
            norm.normalizeScaleRectifyForSampling(sampled, classAffine: affine, labels: labels, statistics: given)
            let statistics = try given.map { s throws(CUDAError) in try DeviceStatistics(s, eps: norm.eps, on: device) }
            let deviceSampled = try gpu.sample(try upload(x), labels: deviceLabels, given: statistics)
            #expect(Self.close(read(try deviceSampled.values()), sampled.values, tolerance: 1e-4), "sampled, given statistics: \(given != nil)")
        }
    }

    func activation(_ kind: Activation.Kind) throws {
        let cpu = Activation(kind), gpu = DeviceActivation(kind)
        let x = try tensor([2, 3, 17], seed: 13), dy = try tensor([2, 3, 17], seed: 14)
        let y = cpu.forward(x.cpu), dx = cpu.backward(dy.cpu)
        #expect(Self.close(try gpu.forward(x.device).values(), y.values, tolerance: 2e-6))
        #expect(Self.close(try gpu.backward(dy.device).values(), dx.values, tolerance: 2e-6))
    }

    /// The projection head (its Linear part included) and the embedding, with repeated labels
    /// and an absent class. The head over flat features (B, F) and over the discriminator's
    /// maps (B, C, H, W) image by image and channel-major, which the CPU head sees flattened.
    func classConditioning() throws {
        let labels: [Int32] = [2, 0, 2, 3, 0]
        let (batch, channels, side) = (5, 3, 2), features = 3 * 2 * 2
        let deviceLabels = try DeviceLabels(labels, on: device)
        for layout in ["flat", "maps", "channel-major maps"] {
            let head = ProjectionHead("head", features: features, classes: 4)
            Self.randomize(head.parameters, seed: 15)
            let arena = try ParameterArena(head.parameters, on: device)
            let gpuHead = DeviceProjectionHead(head, arena: arena)
            let phi = Self.values(batch * features, seed: 16), dlogits = try tensor([batch], seed: 17)
            let logits = head.forward(Tensor(shape: [batch, features], values: phi), labels: labels)
            let dphi = try #require(head.backward(dlogits.cpu))
            let channelMajor = layout == "channel-major maps"
            func stored(_ v: [Float]) -> [Float] { channelMajor ? swapLeadingAxes(v, a: batch, b: channels, inner: side * side) : v }
            func read(_ v: [Float]) -> [Float] { channelMajor ? swapLeadingAxes(v, a: channels, b: batch, inner: side * side) : v }
            let shape = layout == "flat" ? [batch, features] : [batch, channels, side, side]
            let devicePhi = try DeviceTensor(Tensor(shape: shape, values: stored(phi)), on: device).laidOut(channelMajor: channelMajor)
            #expect(Self.close(try gpuHead.forward(devicePhi, labels: deviceLabels).values(), logits.values, tolerance: 1e-5), "\(layout)")
            let gradient = try #require(try gpuHead.backward(dlogits.device))
            #expect(gradient.shape == shape && gradient.channelMajor == channelMajor, "\(layout)")
            #expect(Self.close(read(try gradient.values()), dphi.values, tolerance: 1e-5), "\(layout)")
            try expectGradients(arena)
        }

        let embedding = Embedding("embed", count: 4, dimension: 3)
        Self.randomize(embedding.parameters, seed: 15)
        let arena = try ParameterArena(embedding.parameters, on: device)
        let gpuEmbedding = DeviceEmbedding(embedding, arena: arena)
        let drows = try tensor([batch, 3], seed: 18)
        let rows = embedding.forward(labels)
        embedding.backward(drows.cpu)
        #expect(try gpuEmbedding.forward(deviceLabels).values() == rows.values)
        try gpuEmbedding.backward(drows.device)
        try expectGradients(arena)
    }

    /// Spectral normalisation against the CPU's: two power-iteration steps and one without
    /// (u, W / sigma), then the gradient hand-over (dL/dW, the layer's gradient cleared), for a
    /// weight read as it is and one read transposed (an embedding table).
    func spectralNormalization(transposed: Bool) throws {
        let shape = transposed ? [5, 9] : [6, 3, 2, 2]
        let cpu = SpectralNormalization(Parameter("layer.weight", shape: shape), transposed: transposed)
        let twin = SpectralNormalization(Parameter("layer.weight", shape: shape), transposed: transposed)
        let w = Self.values(cpu.weight.value.count, seed: 40)
        for i in w.indices { cpu.weight.value[i] = w[i]; twin.weight.value[i] = w[i] }
        let weights = try ParameterArena([twin.weight], on: device), targets = try ParameterArena([twin.target], on: device)
        let gpu = try DeviceSpectralNormalization(twin, weights: weights, targets: targets)
        for iterate in [true, true, false] {
            cpu.normalize(iterate: iterate)
            try gpu.normalize(iterate: iterate)
            #expect(Self.close(try targets.value(twin.target).values(), cpu.target.value.values, tolerance: 1e-5), "W / sigma, iterate \(iterate)")
        }
        try gpu.download()
        #expect(Self.close(twin.u.values, cpu.u.values, tolerance: 1e-5), "u")
        #expect(cpu.sigma > 0.1, "a weight of this size has sigma of order 1: \(cpu.sigma)")

        let g = Self.values(w.count, seed: 41)
        for i in g.indices { cpu.target.grad[i] = g[i]; cpu.weight.grad[i] = 0.25 }
        try targets.gradient(twin.target).upload(g)
        try weights.gradient(twin.weight).upload([Float](repeating: 0.25, count: w.count))
        cpu.accumulateGradient()
        try gpu.accumulateGradient()
        #expect(Self.close(try weights.gradient(twin.weight).values(), cpu.weight.grad.values, tolerance: 1e-5), "dL/dW")
        #expect(try targets.gradient(twin.target).values().allSatisfy { $0 == 0 }, "the layer's gradient was handed over")
        // Not a plain 1 / sigma scaling: the rank-1 term is there.
        let plain = zip(g, cpu.weight.grad.values).map { ($1 - 0.25) * cpu.sigma - $0 }.map(abs).max() ?? 0
        #expect(plain > 1e-3, "dL/dW differs from G / sigma by the rank-1 term")
    }
}
