import CUDA
import Engine
import GPUEngine
import Imaging

/// Draws images from a generator: z ~ N(0, 1) from a seeded stream, in batches, converted to
/// bytes at the dataset's own size (see `Resampling.unfit`).
///
/// BatchNorm uses the statistics of each generated batch (training mode), the usual practice
/// for DCGAN-style generators, unless `statistics` is set. Batch statistics must look like
/// training's, where every batch mixes classes: the labels are therefore drawn in a seeded
/// random order, so a request for 6,000 images of one class and then another is not sampled
/// in single-class batches (which normalised each class on its own and cut a synthetic-only
/// classifier's real-test accuracy). Standing statistics (`standingStatistics`), pooled once
/// from batches that mix all classes, make every image independent of its batch mates: what
/// `SyntheticWriter` uses, since a request of one class (`--balance`) or the class check's
/// redraws cannot give mixed batches.
/// Samples are reproducible from the seed, the labels, the batch size and the temperature.
public struct Sampler {
    public let generator: Generator
    public let record: ModelRecord
    public var batchSize = 128
    /// Rows of a batch on a device when `statistics` are given (an image then depends on its z
    /// and label only, and z is drawn in the same order whatever the batches): a batch there
    /// costs its launches and copies whatever its size, so a group of `SyntheticWriter`'s
    /// (2,048) is one batch at 32 x 32, not eight of 256; a quarter of that at 64 x 64, where
    /// each image's maps take four times the memory (G's column matrices for 2,048 images of
    /// 64 x 64 would be about 4 GB). With each batch's own statistics, `batchSize`.
    public var deviceBatchSize: Int
    /// The standard deviation of z. Above 1 trades some class fidelity for diversity
    /// (the opposite of BigGAN's truncation); docs/training.md has the measurements.
    public var temperature: Float = Sampler.defaultTemperature

    /// The size `finish` brings images to: the dataset's unless set (`SyntheticWriter`
    /// writes large datasets' images smaller: `ModelRecord.writtenSize`).
    public var writtenSize: (width: Int, height: Int)

    /// BatchNorm statistics for every batch instead of each batch's own, one per BatchNorm.
    public var statistics: [ChannelStatistics]?

    /// How G's upsamplers compute (see `Generator.sample`): bfloat16 products where the CPU
    /// has them; `.winograd` (Float) and `.columns` are for comparisons.
    public var upsampling = ConvTranspose2d.ForwardAlgorithm.winogradBFloat16

    /// What `synthd generate` and the daemon use unless told otherwise: 1, except with the
    /// class check for a model trained on `largeDataset` images or more: 1.5 (the judge drops
    /// the samples that more variety spoils; on all of Fashion-MNIST the two together made a
    /// better synthetic-only classifier than either, docs/training.md). From 50 images per
    /// class, 1.5 made the mixed classifier worse than 1 on both models measured (-0.6 against
    /// -0.2 points at 0.5x the real count, -0.2 against -0.1), and 0.7 no better than 1
    /// (docs/quality.md).
    public static let defaultTemperature: Float = 1
    public static let classCheckTemperature: Float = 1.5
    /// Where a dataset counts as large: the same line as DiffAugment's `auto`.
    public static let largeDataset = 10_000
    public static func defaultTemperature(classCheck: Bool, trainingImages: Int) -> Float {
        classCheck && trainingImages >= largeDataset ? classCheckTemperature : defaultTemperature
    }

    /// Copies of the generator for the second and later workers, kept between calls.
    private let workers = GeneratorCopies()

    /// Where the generator runs: the CPU's cores (nil), or a device (a GPU), where each batch
    /// is made with Float products (as `upsampling = .columns`), turned into bytes and, with a
    /// `Judge`, judged (`DeviceSampling`). Errors of the device are the only ones the sampling
    /// methods throw.
    public var device: (any KernelDevice)? {
        didSet { onDevice = device.map { DeviceSampling(device: $0) } }
    }
    private var onDevice: DeviceSampling?

    public init(generator: Generator, record: ModelRecord) {
        self.generator = generator
        self.record = record
        writtenSize = (record.imageWidth, record.imageHeight)
        let side = generator.configuration.resolution
        deviceBatchSize = 2048 * 32 * 32 / (side * side)
    }

    /// Batches are sampled concurrently, one per core, each by its own copy of the generator
    /// (layers keep their activations, so one generator runs one batch at a time). A worker
    /// takes the next batch when it finishes one: whole batches on independent threads
    /// replace a split of every layer over the cores, which waited at each layer for the
    /// slower half. z is drawn for all batches first, so the images do not depend on which
    /// worker made them.
    public func sample(labels: [Int32], seed: UInt64) throws -> [Image] {
        try sample([(labels, seed)])
    }

    /// `sample(labels:seed:)` for each group, the images in the order of the groups: the same
    /// images, with the batches of all groups shared out among the workers at once.
    public func sample(_ groups: [(labels: [Int32], seed: UInt64)]) throws -> [Image] {
        try sample(groups, judges: nil).images
    }

    /// `sample(_:)`, and each image's verdict from `judges` (one per worker, see
    /// `SampleJudge.copy`): a worker judges each batch as soon as it has made it, so judging
    /// is spread over the cores with sampling and reads images still in the core's cache.
    public func sample(_ groups: [(labels: [Int32], seed: UInt64)],
                       judges: [any SampleJudge]?) throws -> (images: [Image], verdicts: [Bool]?) {
        let (squares, verdicts) = try sampleSquares(groups, judges: judges)
        return (squares.map(finish), verdicts)
    }

    /// `sample(_:judges:)` with the images as the generator makes them (R x R), before
    /// `finish` brings them to the dataset's size. Memory is then bounded by the model's
    /// resolution, not the dataset's: one 4000 x 3000 photo is 36 MB, a chunk of 8,192 of them
    /// 295 GB. Writers call `finish` on each image just before they encode it.
    ///
    /// The judge sees what is written where that is small (the crop of a 28 x 28 dataset), and
    /// the generator's own R x R image where writing upscales (its fitted copy would be the
    /// same image resampled twice, at the cost of a full-size image per sample).
    public func sampleSquares(_ groups: [(labels: [Int32], seed: UInt64)],
                              judges: [any SampleJudge]?) throws -> (images: [Image], verdicts: [Bool]?) {
        var labels: [Int32] = []
        var batches: [(slots: [Int], z: Tensor)] = []
        let rows = onDevice != nil && statistics != nil ? max(batchSize, deviceBatchSize) : batchSize
        for group in groups {
            let first = labels.count
            labels += group.labels
            var rng = RandomGenerator(seed: group.seed)
            var order = Array(group.labels.indices)
            rng.shuffle(&order)
            for start in stride(from: 0, to: order.count, by: rows) {
                let slots = order[start..<min(order.count, start + rows)].map { first + $0 }
                batches.append((slots, latents(slots.count, &rng)))
            }
        }
        if let onDevice {  // one judge: the batches are made (and judged) one after another
            return try onDevice.squares(batches, labels: labels, generator: generator, statistics: statistics,
                                        judge: judges?.first, judgedSize: finishIsSmall ? writtenSize : nil,
                                        finish: finish)
        }
        let workerCount = min(Parallel.maxThreads, batches.count)
        precondition((judges?.count ?? workerCount) >= workerCount, "one judge per worker: \(workerCount) workers")
        let generators = workers.generators(copying: generator, count: workerCount)
        var images = [Image?](repeating: nil, count: labels.count)
        var verdicts = [Bool](repeating: false, count: judges == nil ? 0 : labels.count)
        images.withUnsafeMutableBufferPointer { imageBuffer in
            verdicts.withUnsafeMutableBufferPointer { verdictBuffer in
                // Each batch writes its own slots.
                let (imageSlots, verdictSlots) = (UncheckedSendable(imageBuffer), UncheckedSendable(verdictBuffer))
                Parallel.forEachTask(batches.count) { worker, task in
                    let (batch, z) = batches[task]
                    let batchLabels = batch.map { labels[$0] }
                    let output = generators[worker].sample(z, labels: batchLabels, upsampling: upsampling, statistics: statistics)
                    let made = batch.indices.map { square(output, index: $0) }
                    for (row, slot) in batch.enumerated() { imageSlots.value[slot] = made[row] }
                    guard let judge = judges?[worker] else { return }
                    let judged = finishIsSmall ? made.map(finish) : made
                    for (row, verdict) in judge.accepts(judged, labels: batchLabels).enumerated() {
                        verdictSlots.value[batch[row]] = verdict
                    }
                }
            }
        }
        return (images.map { $0! }, judges == nil ? nil : verdicts)
    }

    /// Standing BatchNorm statistics: those of `batches` batches (of `batchSize`, at this
    /// temperature, labels uniform over the classes as in training) pooled. 8 batches of 256
    /// are 2,048 samples, about a quarter of a second here (16 took 5% of writing 60,000
    /// images); even the 4x4 layer's statistics then average 32,768 values per channel.
    public func standingStatistics(seed: UInt64, batches: Int = 8) throws -> [ChannelStatistics] {
        var rng = RandomGenerator(seed: seed)
        let inputs = (0..<batches).map { _ in
            let labels = (0..<batchSize).map { _ in Int32(rng.int(below: generator.configuration.classes)) }
            return (labels, latents(batchSize, &rng))
        }
        if let onDevice {
            let perBatch = try onDevice.batchStatistics(inputs.map { ($0.1, $0.0) }, generator: generator)
            return perBatch[0].indices.map { layer in ChannelStatistics.pooled(perBatch.map { $0[layer] }) }
        }
        let generators = workers.generators(copying: generator, count: min(Parallel.maxThreads, batches))
        var perBatch = [[ChannelStatistics]](repeating: [], count: batches)
        perBatch.withUnsafeMutableBufferPointer { buffer in
            let slots = UncheckedSendable(buffer)   // each batch writes its own slot
            Parallel.forEachTask(batches) { worker, task in
                _ = generators[worker].sample(inputs[task].1, labels: inputs[task].0, upsampling: upsampling)
                slots.value[task] = generators[worker].lastSamplingStatistics
            }
        }
        return perBatch[0].indices.map { layer in ChannelStatistics.pooled(perBatch.map { $0[layer] }) }
    }

    /// `count` latent vectors: N(0, 1) from `rng`, times the temperature.
    private func latents(_ count: Int, _ rng: inout RandomGenerator) -> Tensor {
        let z = Tensor(zeros: [count, generator.configuration.latentSize])
        rng.fillNormal(z)
        if temperature != 1 { for i in 0..<z.count { z.data[i] *= temperature } }
        return z
    }

    /// A generated R x R image brought to `writtenSize` (see `Resampling.unfit`).
    public func finish(_ square: Image) -> Image { finisher(square) }

    /// `finish` as a function other threads may call (writers encode on threads of their own).
    public var finisher: @Sendable (Image) -> Image {
        let (width, height, fitting) = (writtenSize.width, writtenSize.height, record.imageFitting)
        return { Resampling.unfit($0, width: width, height: height, fitting: fitting) }
    }

    /// Whether `finish` makes an image no larger than the generator's (a crop): then the
    /// judge sees exactly what is written.
    var finishIsSmall: Bool {
        writtenSize.width <= record.configuration.resolution && writtenSize.height <= record.configuration.resolution
    }

    /// Image `index` of a (B, C, R, R) tensor in [-1, 1], as bytes, R x R.
    func square(_ batch: Tensor, index: Int) -> Image {
        let channels = batch.shape[1], r = batch.shape[2], plane = r * r
        let base = batch.data + index * channels * plane
        var pixels = [UInt8](repeating: 0, count: channels * plane)
        for p in 0..<plane {
            for c in 0..<channels {
                let v = (base[c * plane + p] + 1) * 127.5
                pixels[p * channels + c] = UInt8(max(0, min(255, v.rounded())))
            }
        }
        return Image(width: r, height: r, mode: channels == 3 ? .rgb : .grey, pixels: pixels)
    }
}

/// The generator itself for the first worker and copies of it for the others. Copies are made
/// once and get the generator's weights and statistics again at every call (a memcpy: the
/// generator may have trained since); their transformed Winograd weights are kept while the
/// weights are unchanged.
final class GeneratorCopies {
    private var copies: [Generator] = []

    func generators(copying generator: Generator, count: Int) -> [Generator] {
        while copies.count < count - 1 { copies.append(Generator(generator.configuration)) }
        let used = Array(copies.prefix(max(0, count - 1)))
        for copy in used {
            for (target, source) in zip(copy.stateTensors, generator.stateTensors) { target.tensor.copy(from: source.tensor) }
        }
        return [generator] + used
    }
}
