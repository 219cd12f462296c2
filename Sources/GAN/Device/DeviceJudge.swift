import CUDA
import Engine
import GPUEngine

/// The class check's judge (`Judge`'s classifier, in inference) on a device: generation's
/// images are judged where they are made, from the bytes that will be written, seen as the
/// CPU judge sees them (`judge_input`: the dataset's centre of each square, padded back with
/// its border's colour). Its BatchNorms use the running statistics and run fused with their
/// LeakyReLU; only the (B, K) logits come back, and the verdicts are the CPU judge's rule
/// (`Judge.verdicts`). Float products: where the CPU judge multiplies in bfloat16 a verdict
/// can differ for a sample on a class boundary.
final class DeviceJudge {
    let judge: Judge
    private let arena: ParameterArena
    private let convolutions: [DeviceConv2d]
    private let firstActivation: DeviceActivation
    private let norms: [DeviceBatchNorm]
    private let statistics: [DeviceStatistics]
    private let hidden: DeviceLinear
    private let hiddenActivation = DeviceActivation(.relu)
    private let output: DeviceLinear
    private var input: DeviceTensor?
    /// For the near-copy test on the device (nil until the first): the real images' features,
    /// one column each, classes in turn (`nearest_real`), and where each class's columns start.
    private var realFeatures: (columns: DeviceBuffer, offsets: DeviceBuffer, total: Int)?
    private var labels: DeviceBuffer?, nearest: DeviceBuffer?

    init(_ judge: Judge, on device: any KernelDevice) throws(CUDAError) {
        self.judge = judge
        let classifier = judge.classifier
        let arena = try ParameterArena(classifier.parameters, on: device)
        self.arena = arena
        convolutions = classifier.convolutions.map { DeviceConv2d($0, arena: arena) }
        firstActivation = DeviceActivation(classifier.activations[0].kind)
        var norms: [DeviceBatchNorm] = [], statistics: [DeviceStatistics] = []
        for (index, norm) in classifier.norms.enumerated() {
            guard case .leakyReLU(let slope) = classifier.activations[index + 1].kind else {
                preconditionFailure("the classifier's BatchNorms are followed by LeakyReLU")
            }
            norms.append(try DeviceBatchNorm(norm, activation: .leakyReLU, slope: slope, arena: arena))
            let running = ChannelStatistics(mean: norm.runningMean.values.map(Double.init), variance: norm.runningVar.values.map(Double.init))
            statistics.append(try DeviceStatistics(running, eps: norm.eps, on: device))
        }
        self.norms = norms
        self.statistics = statistics
        hidden = DeviceLinear(classifier.hidden, arena: arena)
        output = DeviceLinear(classifier.output, arena: arena)
    }

    /// Logits (B, K) of `count` generated squares, bytes (B, R, R, C) at `bytes`, each judged
    /// as its centre `width` x `height` (the dataset's size) padded back to R x R; into
    /// `destination` when one is given (a batch's rows of a chunk's logits).
    func logits(bytes: UInt64, count: Int, width: Int, height: Int, into destination: DeviceTensor? = nil) throws(CUDAError) -> DeviceTensor {
        let (channels, side) = (judge.channels, judge.resolution)
        let x = try DeviceTensor.reuse(input, shape: [count, channels, side, side], on: arena.device)
        input = x
        try arena.device.launch("judge_input", grid: count, block: 256,
                                [.address(bytes), x.argument, .int32(Int32(channels)), .int32(Int32(side)),
                                 .int32(Int32(min(width, side))), .int32(Int32(min(height, side)))])
        var h = try firstActivation.forward(try convolutions[0].forward(x))
        for index in 1..<convolutions.count {
            h = try norms[index - 1].sample(try convolutions[index].forward(h), given: statistics[index - 1])
        }
        let features = try hiddenActivation.forward(try hidden.forward(h.reshaped([count, h.count / count])))
        return try output.forward(parts: [features], into: destination)
    }

    /// For each image of the last `logits` (labels: their classes), the squared distance of its
    /// features to the nearest real image of its class, found on the device (`nearest_real`):
    /// read back instead of the features, and on the CPU's sampling thread a batch's classes
    /// against 6,000 real images each took as long as the GPU took to make the batch. nil when
    /// the judge does not drop near-copies.
    func nearestReal(labels batchLabels: [Int32]) throws(CUDAError) -> [Float]? {
        guard judge.dropsNearCopies, judge.nearCopies != nil else { return nil }
        let device = arena.device
        let labels = try device.buffer(&self.labels, bytes: batchLabels.count * 4)
        try device.write(batchLabels, to: labels.address)
        let nearest = try device.buffer(&self.nearest, bytes: batchLabels.count * 4)
        guard try findNearestReal(labels: DeviceLabels(storage: labels, count: batchLabels.count), into: nearest.address) else { return nil }
        return try device.floats(at: nearest.address, count: batchLabels.count)
    }

    /// Issues the search of `nearestReal` for the last `logits`' images, the distances into
    /// `distances` (one float an image), without waiting for them: generation reads a whole
    /// chunk's at once. false (and nothing issued) when the judge does not drop near-copies.
    func findNearestReal(labels: DeviceLabels, into distances: UInt64) throws(CUDAError) -> Bool {
        guard judge.dropsNearCopies, let nearCopies = judge.nearCopies, let features = hiddenActivation.lastOutput else { return false }
        if self.realFeatures == nil { self.realFeatures = try uploaded(nearCopies) }
        let realFeatures = self.realFeatures!
        precondition(features.count == labels.count * NearCopies.dimension && NearCopies.dimension <= 128,
                     "nearest_real takes up to 128 features an image")
        try arena.device.launch("nearest_real", grid: labels.count, block: 256,
                                [features.argument, labels.argument, .buffer(realFeatures.columns), .buffer(realFeatures.offsets),
                                 .address(distances), .int32(Int32(NearCopies.dimension)), .int32(Int32(realFeatures.total))])
        return true
    }

    /// The real images' features as `nearest_real` reads them (uploaded at the first test:
    /// 30 MB for Fashion-MNIST's 60,000).
    private func uploaded(_ nearCopies: NearCopies) throws(CUDAError) -> (columns: DeviceBuffer, offsets: DeviceBuffer, total: Int) {
        let d = NearCopies.dimension
        let rows = nearCopies.real.flatMap { $0 }, total = rows.count / d
        var columns = [Float](repeating: 0, count: max(1, rows.count))
        for r in 0..<total { for j in 0..<d { columns[j * total + r] = rows[r * d + j] } }
        var offsets: [Int32] = [0]
        for count in nearCopies.realCounts { offsets.append(offsets.last! + Int32(count)) }
        return (try arena.device.upload(columns), try arena.device.upload(offsets), total)
    }
}
