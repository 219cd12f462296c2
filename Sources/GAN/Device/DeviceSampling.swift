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
    private var latents: DeviceBuffer?, labels: DeviceBuffer?, bytes: DeviceBuffer?

    init(device: any KernelDevice) { self.device = device }

    /// The images of `batches` (latents, and the slots of `labels` they fill), in slot order,
    /// with `judge`'s verdicts when one is given: on the device when it is a `Judge`, else on
    /// the host. `judgedSize`: the dataset's size when the judge sees generation's images
    /// cropped to it (`finish`), nil when it sees the squares.
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
        let (channels, side) = (configuration.imageChannels, configuration.resolution)
        let imageBytes = channels * side * side
        var images = [Image?](repeating: nil, count: labels.count)
        var verdicts = [Bool](repeating: false, count: judge == nil ? 0 : labels.count)
        for batch in batches {
            let batchLabels = batch.slots.map { labels[$0] }
            let count = batchLabels.count
            let made = try gpu.sample(try upload(batch.z), labels: try upload(batchLabels), statistics: given)
            let bytes = try device.buffer(&self.bytes, bytes: count * imageBytes)
            try device.launchElementwise("quantize_images", count: made.count,
                                         [made.argument, .buffer(bytes), .int64(count), .int32(Int32(channels)), .int32(Int32(side * side))])
            let pixels = try device.bytes(at: bytes.address, count: count * imageBytes)
            let squares = (0..<count).map { row in
                Image(width: side, height: side, mode: channels == 3 ? .rgb : .grey,
                      pixels: Array(pixels[(row * imageBytes)..<((row + 1) * imageBytes)]))
            }
            for (row, slot) in batch.slots.enumerated() { images[slot] = squares[row] }
            guard let judge else { continue }
            let accepted: [Bool]
            if let onDevice {
                let logits = try onDevice.logits(bytes: bytes.address, count: count, width: judgedSize?.width ?? side,
                                                 height: judgedSize?.height ?? side)
                accepted = onDevice.judge.verdicts(try logits.tensor(), labels: batchLabels[...],
                                                   nearest: try onDevice.nearestReal(labels: batchLabels).map { .distances($0) })
            } else {
                accepted = judge.accepts(judgedSize == nil ? squares : squares.map(finish), labels: batchLabels)
            }
            for (row, slot) in batch.slots.enumerated() { verdicts[slot] = accepted[row] }
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
