import CUDA
import Engine
import GPUEngine

/// A dataset in device memory (its pixels as bytes, uploaded once) and each step's batch,
/// latent vectors and fake labels drawn there from the step counter (`gather_batch`,
/// `draw_latents`): no host work or copy per step, so that a captured step replays with new
/// data. Batches are drawn uniformly with replacement (the CPU trainer walks epochs instead).
public final class DeviceBatchSource {
    public let images: DeviceBuffer, labels: DeviceBuffer
    public let count: Int, imageBytes: Int
    public let batch: DeviceTensor, batchLabels: DeviceLabels
    public let noise: DeviceTensor, noiseLabels: DeviceLabels
    let classes: Int, seed: UInt64
    /// Whether the fake labels' second half repeats the first's (for the mode-seeking term).
    let pairedLabels: Bool

    public init(_ set: TrainingSet, batch size: Int, latentSize: Int, classes: Int, seed: UInt64, pairedLabels: Bool = false,
                on device: any KernelDevice) throws(CUDAError) {
        images = try device.upload(set.pixels)
        labels = try device.upload(set.labels)
        count = set.count
        imageBytes = set.imageBytes
        batch = try DeviceTensor(on: device, shape: [size, set.channels, set.resolution, set.resolution])
        batchLabels = DeviceLabels(storage: try device.allocate(bytes: size * 4), count: size)
        noise = try DeviceTensor(on: device, shape: [size, latentSize])
        noiseLabels = DeviceLabels(storage: try device.allocate(bytes: size * 4), count: size)
        self.classes = classes
        self.seed = seed
        self.pairedLabels = pairedLabels
    }

    /// This step's real batch and the generator's inputs, drawn from `counter`.
    public func draw(counter: DeviceBuffer) throws(CUDAError) {
        let device = batch.device, size = batch.shape[0]
        try device.launch("gather_batch", grid: size, block: 128,
                          [.buffer(images), .buffer(labels), .int64(count), .int32(Int32(imageBytes)), batch.argument,
                           batchLabels.argument, .int32(Int32(size)), .uint64(seed), .buffer(counter)])
        try device.launchElementwise("draw_latents", count: max(noise.count / 2, size),
                                     [noise.argument, .int64(noise.count), noiseLabels.argument, .int32(Int32(size)),
                                      .int32(Int32(classes)), .float(1), .uint64(seed &+ 1), .buffer(counter),
                                      .int32(pairedLabels ? 1 : 0)])
    }
}
