import Engine

/// G(z, y): concat(z, embed(y)) -> Linear -> (C0, 4, 4) -> BN, ReLU ->
/// [ConvTranspose 4/2/1 -> BN -> ReLU] x (stages - 1) -> ConvTranspose 4/2/1 -> Tanh.
/// At resolution 32 this is the reference generator: 256x4x4 -> 128x8x8 -> 64x16x16 -> Cx32x32.
/// With `classConditionalNorm` each BN is followed by a per-class scale and shift.
public final class Generator: Module {
    public let configuration: ModelConfiguration
    public let embedding: Embedding
    private let concat = ConcatFeatures()
    public let projection: Linear
    public let norms: [BatchNorm2d]            // stages of them: after the Linear and each hidden ConvTranspose
    public let upsamplers: [ConvTranspose2d]   // stages of them: the last makes the image
    public let classNorms: [ClassConditionalAffine]   // one per BN with classConditionalNorm, else none
    /// Each stage's BatchNorm, class scale and shift (with `classConditionalNorm`) and ReLU as
    /// one layer for training (`BatchNormActivation`: the same parameters).
    private let stagesNormalized: [BatchNormActivation]
    private let tanh = Activation(.tanh)
    private var projectionGrad: Tensor?
    private var sampledProjection: Tensor?
    private var sampledPlanes: Tensor?

    public init(_ configuration: ModelConfiguration) {
        self.configuration = configuration
        let c = configuration
        embedding = Embedding("G.embed", count: c.classes, dimension: c.embeddingSize)
        let first = c.channels(atStage: 0)
        projection = Linear("G.fc", inFeatures: c.latentSize + c.embeddingSize, outFeatures: first * 16)
        var norms: [BatchNorm2d] = [BatchNorm2d("G.bn0", channels: first)]
        var upsamplers: [ConvTranspose2d] = []
        for stage in 0..<c.stages {
            let input = c.channels(atStage: stage)
            let last = stage == c.stages - 1
            let output = last ? c.imageChannels : c.channels(atStage: stage + 1)
            upsamplers.append(ConvTranspose2d("G.up\(stage + 1)", inChannels: input, outChannels: output,
                                              kernelSize: 4, stride: 2, padding: 1))
            if !last { norms.append(BatchNorm2d("G.bn\(stage + 1)", channels: output)) }
        }
        self.norms = norms
        self.upsamplers = upsamplers
        classNorms = c.classConditionalNorm
            ? norms.indices.map { ClassConditionalAffine("G.cbn\($0)", classes: c.classes, channels: norms[$0].channels) }
            : []
        let classNorms = self.classNorms
        stagesNormalized = norms.indices.map { stage in
            BatchNormActivation(norms[stage], classAffine: classNorms.isEmpty ? nil : classNorms[stage], activation: .relu)
        }
    }

    public var parameters: [Parameter] {
        var result = embedding.parameters + projection.parameters
        for stage in 0..<configuration.stages {
            result += norms[stage].parameters
            if !classNorms.isEmpty { result += classNorms[stage].parameters }
            result += upsamplers[stage].parameters
        }
        return result
    }

    public var buffers: [NamedTensor] { norms.flatMap(\.buffers) }

    public func setTraining(_ training: Bool) { norms.forEach { $0.setTraining(training) } }

    /// z (B, latent), labels (B) -> images (B, C, R, R) in [-1, 1].
    public func forward(_ z: Tensor, labels: [Int32]) -> Tensor {
        let batch = z.shape[0]
        let h = concat.forward(z, embedding.forward(labels))
        var x = projection.forward(h).reshaped([batch, configuration.channels(atStage: 0), 4, 4])
        for stage in 0..<configuration.stages {
            x = stagesNormalized[stage].forward(x, labels: labels)
            x = upsamplers[stage].forward(x)
        }
        return tanh.forward(x)
    }

    /// `forward` in training mode, for sampling: each BatchNorm (with this batch's statistics),
    /// class scale and ReLU in one fused pass, nothing kept for a backward pass, BatchNorm's
    /// running estimates untouched, and the upsamplers by Winograd (`upsampling`; 2.5x fewer
    /// multiplications, see ConvTranspose2d). With `.winograd`, the same images up to float
    /// rounding; with `.winogradBFloat16` (the default: bfloat16 products where the CPU has
    /// them, docs/engine.md), within a few grey levels, 0.2 on average. In a context whose
    /// products go to AMX tiles, the default takes the columns path on the tiles instead
    /// (`ForwardAlgorithm.resolved`: faster there).
    ///
    /// With Winograd, activations stay channels-last from one upsampler to the next, and each
    /// BatchNorm (statistics, class scale, ReLU) is applied as the next upsampler reads its
    /// input (`ConvTranspose2d.sample`), the image layer's too (`ConvTranspose2d.sampleImage`);
    /// a layer without a Winograd shape gets planes back.
    ///
    /// `statistics` (one per BatchNorm, e.g. `Sampler`'s standing statistics) replaces each
    /// batch's own: an image then depends on its z and label only, not on its batch mates.
    /// `lastSamplingStatistics` holds the statistics the last call used.
    public func sample(_ z: Tensor, labels: [Int32], upsampling: ConvTranspose2d.ForwardAlgorithm = .winogradBFloat16,
                       statistics fixed: [ChannelStatistics]? = nil) -> Tensor {
        precondition(fixed.map { $0.count == norms.count } ?? true, "statistics for \(fixed?.count ?? 0) of \(norms.count) BatchNorms")
        let upsampling = upsampling.resolved
        let batch = z.shape[0]
        var x = projectForSampling(z, labels: labels).reshaped([batch, configuration.channels(atStage: 0), 4, 4])
        func classAffine(_ stage: Int) -> ClassConditionalAffine? { classNorms.isEmpty ? nil : classNorms[stage] }
        var used = [norms[0].normalizeScaleRectifyForSampling(x, classAffine: classAffine(0), labels: labels,
                                                              statistics: fixed?[0])]
        var pending: (ChannelsLast, RectifiedChannelAffine)?   // channels-last, its BatchNorm not yet applied
        for stage in 0..<configuration.stages {
            let upsampler = upsamplers[stage]
            let size = pending.map { $0.0.height } ?? x.shape[2]
            let last = stage + 1 == configuration.stages
            if upsampling.isWinograd && !last && upsampler.hasWinogradShape(height: size, width: size) {
                let (y, batchStatistics) = upsampler.sample(pending.map { .channelsLast($0.0, $0.1) } ?? .planes(x),
                                                            bfloat16: upsampling.usesBFloat16)
                // Every upsampler but the image layer is followed by a BatchNorm.
                let statistics = fixed?[stage + 1] ?? batchStatistics
                used.append(statistics)
                pending = (y, norms[stage + 1].samplingAffine(statistics: statistics, classAffine: classAffine(stage + 1),
                                                              labels: labels))
            } else if upsampling.isWinograd && last && upsampler.hasImageSamplingShape, let (activations, affine) = pending {
                x = upsampler.sampleImage(activations, affine)
                pending = nil
            } else {
                if let (activations, affine) = pending {
                    x = activations.planes(applying: affine, reusing: sampledPlanes)
                    sampledPlanes = x
                    pending = nil
                }
                x = upsampler.forward(x, algorithm: upsampling)
                if !last {
                    used.append(norms[stage + 1].normalizeScaleRectifyForSampling(
                        x, classAffine: classAffine(stage + 1), labels: labels, statistics: fixed?[stage + 1]))
                }
            }
        }
        lastSamplingStatistics = used
        return tanh.forward(x)
    }

    /// The BatchNorm statistics the last `sample` used, one per BatchNorm.
    public private(set) var lastSamplingStatistics: [ChannelStatistics] = []

    /// The projection of [z, embed(y)] for sampling, split as z W_z^T + (embed(y) W_e^T + b):
    /// the class part is one row per class in the batch, computed once, which halves the
    /// projection's multiplications at the reference sizes (latent and embedding both 128).
    private func projectForSampling(_ z: Tensor, labels: [Int32]) -> Tensor {
        let batch = z.shape[0], latent = configuration.latentSize, width = embedding.weight.shape[1]
        let inputs = projection.inFeatures, outputs = projection.outFeatures
        let present = Array(Set(labels)).sorted()
        let slot = Dictionary(uniqueKeysWithValues: present.enumerated().map { ($1, $0) })
        let embedded = embedding.forward(present)   // (classes present, width)
        let classRows = Tensor(zeros: [present.count, outputs])
        if let bias = projection.bias {
            for row in 0..<present.count { (classRows.data + row * outputs).update(from: bias.value.data, count: outputs) }
        }
        BLAS.gemm(transB: true, m: present.count, n: outputs, k: width, a: embedded.data, lda: width,
                  b: projection.weight.value.data + latent, ldb: inputs, beta: 1, c: classRows.data, ldc: outputs)
        let y = Tensor.reuse(sampledProjection, shape: [batch, outputs])
        sampledProjection = y
        for (row, label) in labels.enumerated() {
            (y.data + row * outputs).update(from: classRows.data + slot[label]! * outputs, count: outputs)
        }
        BLAS.gemm(transB: true, m: batch, n: outputs, k: latent, a: z.data, lda: latent,
                  b: projection.weight.value.data, ldb: inputs, beta: 1, c: y.data, ldc: outputs)
        return y
    }

    /// The images of the last `forward` (owned by the output layer).
    public var forwardOutputForTesting: Tensor { tanh.lastOutput! }

    /// d loss / d images -> parameter gradients (accumulated); returns d loss / d z, what a
    /// search for the z of a given image descends on.
    @discardableResult
    public func backward(_ dImages: Tensor) -> Tensor {
        var dx = tanh.backward(dImages)
        for stage in (0..<configuration.stages).reversed() {
            dx = upsamplers[stage].backward(dx)!
            dx = stagesNormalized[stage].backward(dx)
        }
        let batch = dx.shape[0]
        let dh = projection.backward(dx.reshaped([batch, projection.outFeatures]))!
        let (dz, dEmbedded) = concat.backward(dh, leftFeatures: configuration.latentSize)
        embedding.backward(dEmbedded)
        return dz
    }
}
