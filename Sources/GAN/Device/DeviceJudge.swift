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
    /// as its centre `width` x `height` (the dataset's size) padded back to R x R.
    func logits(bytes: UInt64, count: Int, width: Int, height: Int) throws(CUDAError) -> DeviceTensor {
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
        return try output.forward(features)
    }

    /// The features (B, 128) of the last `logits`, read back (for `NearCopies`); nil when the
    /// judge would not use them.
    func lastFeatures() throws(CUDAError) -> [Float]? {
        guard judge.dropsNearCopies, judge.nearCopies != nil else { return nil }
        return try hiddenActivation.lastOutput?.values()
    }
}
