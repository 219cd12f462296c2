import CUDA
import Engine
import GPUEngine
import Imaging

/// `Sampler` on a device: each batch generated, turned into the bytes that are written
/// (`quantize_images`) and, with a `Judge`, judged there (`DeviceJudge`), so that what comes
/// back to the host is bytes and a few logits per image. The generator is built once and its
/// weights uploaded once per call (the CPU model may have trained since); the inputs and
/// outputs live in buffers kept between batches (freeing device memory waits for the GPU).
final class DeviceSampling: @unchecked Sendable {
    let device: any KernelDevice
    private var built: (generator: ObjectIdentifier, device: DeviceGenerator)?
    private var judged: (judge: ObjectIdentifier, device: DeviceJudge)?
    private var latents: DeviceBuffer?, labels: DeviceBuffer?, bytes: DeviceBuffer?, logits: DeviceBuffer?, distances: DeviceBuffer?

    init(device: any KernelDevice) { self.device = device }

    /// The images of `batches` (latents, and the slots of `labels` they fill), in slot order,
    /// with `judge`'s verdicts when one is given: on the device when it is a `Judge`, else on
    /// the host. `judgedSize`: the dataset's size when the judge sees generation's images
    /// cropped to it (`finish`), nil when it sees the squares.
    ///
    /// The batches' latents and labels go up in one copy each, every batch is made and judged
    /// into its rows of the call's outputs (bytes, logits, near-copy distances), and those come
    /// back in one copy each at the end: each copy waits for the device to finish what was
    /// issued before it, so copies per batch (six, once) left the GPU idle while the host
    /// issued the next batch's launches.
    func squares(_ batches: [(slots: [Int], z: Tensor)], labels: [Int32], generator: Generator,
                 statistics: [ChannelStatistics]?, judge: (any SampleJudge)?, judgedSize: (width: Int, height: Int)?,
                 finish: (Image) -> Image) throws(CUDAError) -> (images: [Image], verdicts: [Bool]?) {
        let gpu = try prepared(generator)
        var given: [DeviceStatistics]?
        if let statistics {
            var uploaded: [DeviceStatistics] = []
            for (layer, norm) in zip(statistics, generator.norms) { uploaded.append(try DeviceStatistics(layer, eps: norm.eps, on: device)) }
            given = uploaded
        }
        let onDevice = try (judge as? Judge).map { judge throws(CUDAError) in try judging(judge) }
        let configuration = generator.configuration
        let (channels, side, latentSize) = (configuration.imageChannels, configuration.resolution, configuration.latentSize)
        let imageBytes = channels * side * side, classes = configuration.classes
        let total = batches.reduce(0) { $0 + $1.slots.count }
        guard total > 0 else { return ([], judge == nil ? nil : []) }

        // Row r of every buffer below is the r-th image in batch order.
        let batchLabels = batches.flatMap { $0.slots.map { labels[$0] } }
        let z = try device.buffer(&latents, bytes: total * latentSize * 4)
        try device.write(batches.flatMap(\.z.values), to: z.address)
        let labelStorage = try device.buffer(&self.labels, bytes: total * 4)
        try device.write(batchLabels, to: labelStorage.address)
        let bytes = try device.buffer(&self.bytes, bytes: total * imageBytes)
        let logits = try onDevice.map { _ throws(CUDAError) in try device.buffer(&self.logits, bytes: total * classes * 4) }
        let distances = try onDevice.map { _ throws(CUDAError) in try device.buffer(&self.distances, bytes: total * 4) }
        var searched = false
        var first = 0
        for batch in batches {
            let count = batch.slots.count
            let rows = DeviceLabels(storage: labelStorage, offset: first, count: count)
            let made = try gpu.sample(DeviceTensor(storage: z, offset: first * latentSize, shape: [count, latentSize]),
                                      labels: rows, statistics: given)
            let batchBytes = bytes.address + UInt64(first * imageBytes)
            try device.launchElementwise("quantize_images", count: made.count,
                                         [made.argument, .address(batchBytes), .int64(count), .int32(Int32(channels)), .int32(Int32(side * side))])
            if let onDevice, let logits, let distances {
                _ = try onDevice.logits(bytes: batchBytes, count: count, width: judgedSize?.width ?? side, height: judgedSize?.height ?? side,
                                        into: DeviceTensor(storage: logits, offset: first * classes, shape: [count, classes]))
                searched = try onDevice.findNearestReal(labels: rows, into: distances.address + UInt64(first * 4))
            }
            first += count
        }

        let pixels = try device.bytes(at: bytes.address, count: total * imageBytes)
        let allLogits = try logits.map { buffer throws(CUDAError) in try device.floats(at: buffer.address, count: total * classes) }
        let nearest = searched ? try distances.map { buffer throws(CUDAError) in try device.floats(at: buffer.address, count: total) } : nil
        var images = [Image?](repeating: nil, count: labels.count)
        var verdicts = [Bool](repeating: false, count: judge == nil ? 0 : labels.count)
        first = 0
        for batch in batches {
            let count = batch.slots.count
            let squares = (first..<(first + count)).map { row in
                Image(width: side, height: side, mode: channels == 3 ? .rgb : .grey,
                      pixels: Array(pixels[(row * imageBytes)..<((row + 1) * imageBytes)]))
            }
            for (row, slot) in batch.slots.enumerated() { images[slot] = squares[row] }
            if let judge {
                let rows = batchLabels[first..<(first + count)]
                let accepted: [Bool]
                if let onDevice, let allLogits {
                    let batchLogits = Tensor(shape: [count, classes], values: Array(allLogits[(first * classes)..<((first + count) * classes)]))
                    accepted = onDevice.judge.verdicts(batchLogits, labels: rows,
                                                       nearest: nearest.map { .distances(Array($0[first..<(first + count)])) })
                } else {
                    accepted = judge.accepts(judgedSize == nil ? squares : squares.map(finish), labels: Array(rows))
                }
                for (row, slot) in batch.slots.enumerated() { verdicts[slot] = accepted[row] }
            }
            first += count
        }
        return (images.map { $0! }, judge == nil ? nil : verdicts)
    }

    /// The BatchNorm statistics of each batch (latents, labels), sampled with its own.
    func batchStatistics(_ inputs: [(z: Tensor, labels: [Int32])], generator: Generator) throws(CUDAError) -> [[ChannelStatistics]] {
        let gpu = try prepared(generator)
        var result: [[ChannelStatistics]] = []
        for input in inputs {
            _ = try gpu.sample(try upload(input.z), labels: try upload(input.labels), statistics: nil)
            result.append(try gpu.lastSamplingStatistics())
        }
        return result
    }

    private func prepared(_ generator: Generator) throws(CUDAError) -> DeviceGenerator {
        if let built, built.generator == ObjectIdentifier(generator) {
            try built.device.upload()
            return built.device
        }
        let gpu = try DeviceGenerator(generator, on: device)
        built = (ObjectIdentifier(generator), gpu)
        return gpu
    }

    private func judging(_ judge: Judge) throws(CUDAError) -> DeviceJudge {
        if let judged, judged.judge == ObjectIdentifier(judge) { return judged.device }
        let made = try DeviceJudge(judge, on: device)
        judged = (ObjectIdentifier(judge), made)
        return made
    }

    private func upload(_ z: Tensor) throws(CUDAError) -> DeviceTensor {
        let storage = try device.buffer(&latents, bytes: z.count * 4)
        let tensor = DeviceTensor(storage: storage, shape: z.shape)
        try tensor.upload(z.values)
        return tensor
    }

    private func upload(_ values: [Int32]) throws(CUDAError) -> DeviceLabels {
        let storage = try device.buffer(&labels, bytes: values.count * 4)
        try device.write(values, to: storage.address)
        return DeviceLabels(storage: storage, count: values.count)
    }
}
