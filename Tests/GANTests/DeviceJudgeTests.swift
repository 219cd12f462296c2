import CUDA
import Engine
@testable import GAN
import GPUEngine
import Imaging
import KernelEmulation
import Testing

/// Generation's class check on the device: `Sampler` with a device and a `Judge` judges each
/// batch where it was made. Its verdicts and the device judge's logits against the CPU judge
/// (Float products) on the same written bytes, seen at the dataset's size (a crop padded back
/// with the border's colour) and as whole squares.
struct DeviceJudgeChecks {
    let device: any KernelDevice

    func judgeMatchesTheCPU(channels: Int, width: Int, height: Int) throws {
        let configuration = ModelConfiguration(imageChannels: channels, classes: 3, latentSize: 16, embeddingSize: 8, baseChannels: 8)
        let generator = Generator(configuration)
        // Weights far larger than DCGAN's start: images with detail up to their edges (a fresh
        // generator's are a flat grey, the same whatever is cropped and padded).
        var rng = RandomGenerator(seed: 5)
        for parameter in generator.parameters where parameter.value.shape.count > 1 {
            rng.fillNormal(parameter.value, std: 3 / Float(parameter.value.count / parameter.value.shape[0]).squareRoot())
        }
        let mode: Image.Mode = channels == 3 ? .rgb : .grey
        let record = ModelRecord(configuration: configuration, classes: ["a", "b", "c"], mode: mode, imageWidth: width,
                                 imageHeight: height, steps: 0, imagesAtLastRun: 0, options: TrainingOptions(), checkpointID: "test")
        // A judge with weights of a trained network's scale (logits far enough apart that
        // rounding does not decide an argmax) and running statistics that are not (0, 1).
        let classifier = Classifier(channels: channels, classes: 3, resolution: 32, width: Judge.width)
        for parameter in classifier.parameters where parameter.value.shape.count > 1 {
            rng.fillNormal(parameter.value, std: 1 / Float(parameter.value.count / parameter.value.shape[0]).squareRoot())
        }
        for norm in classifier.norms {
            rng.fillNormal(norm.gamma.value, mean: 1, std: 0.2)
            rng.fillNormal(norm.beta.value, std: 0.2)
            for c in 0..<norm.channels {
                norm.runningMean[c] = Float(rng.int(below: 100)) / 100 - 0.5
                norm.runningVar[c] = Float(rng.int(below: 100)) / 50 + 0.2
            }
        }
        classifier.setTraining(false)
        let judge = Judge(classifier: classifier, classes: record.classes, imagesPerClass: [1, 1, 1], channels: channels, resolution: 32)

        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 16
        sampler.device = device
        let labels: [Int32] = (0..<40).map { Int32($0 % 3) }
        let (images, verdicts) = try sampler.sampleSquares([(labels, 9)], judges: [judge])
        let judged = try #require(verdicts)

        // The CPU judge's input for the same bytes, as `Judge.accepts` builds it, in Float.
        let seen = sampler.finishIsSmall ? images.map(sampler.finish) : images
        let x = Tensor(zeros: [labels.count, channels, 32, 32])
        for (row, image) in seen.enumerated() {
            let fitted = Resampling.fit(image, resolution: 32)
            for p in 0..<(32 * 32) {
                for c in 0..<channels { x.data[(row * channels + c) * 1024 + p] = scaledPixel(fitted.pixels[p * channels + c]) }
            }
        }
        let logits = classifier.forward(x)
        #expect(judged == judge.verdicts(logits, labels: labels[...], nearest: nil), "the device's verdicts are the CPU judge's")
        #expect(judged.contains(true) && judged.contains(false), "a mix of verdicts: \(judged)")

        // A confidence threshold half-way between two of the CPU's probabilities near their
        // median: half the verdicts then hang on the exact input the judge saw.
        let probabilities = labels.indices.map { Judge.probability(logits, row: $0, of: Int(labels[$0])) }.sorted()
        let middle = (probabilities.count / 2 - 5)...(probabilities.count / 2 + 5)
        let gap = middle.max { probabilities[$0 + 1] - probabilities[$0] < probabilities[$1 + 1] - probabilities[$1] }!
        judge.minimumConfidence = (probabilities[gap] + probabilities[gap + 1]) / 2
        let strict = try #require(try sampler.sampleSquares([(labels, 9)], judges: [judge]).verdicts)
        #expect(strict == judge.verdicts(logits, labels: labels[...], nearest: nil), "the verdicts at a threshold among the probabilities")

        // The logits themselves, from the same bytes uploaded.
        let bytes = try device.upload(images.flatMap(\.pixels))
        let deviceLogits = try DeviceJudge(judge, on: device).logits(bytes: bytes.address, count: labels.count,
                                                                     width: sampler.finishIsSmall ? width : 32,
                                                                     height: sampler.finishIsSmall ? height : 32)
        #expect(DeviceStepComparison.maxDifference(try deviceLogits.values(), logits.values) < 1e-3)
    }

    /// The near-copy test on the device (`nearest_real`): each sample's squared distance to the
    /// nearest real image of its class against a Double sum over the CPU judge's features, and
    /// the verdicts with near-copies dropped the CPU judge's on the same images. The "real
    /// images" are the features of every other sample (near-copies, distance ~0) and of
    /// random points; each class's threshold half the nearest the other samples come.
    func nearCopiesMatchTheCPU() throws {
        let configuration = ModelConfiguration(imageChannels: 1, classes: 3, latentSize: 16, embeddingSize: 8, baseChannels: 8)
        let generator = Generator(configuration)
        var rng = RandomGenerator(seed: 7)
        for parameter in generator.parameters where parameter.value.shape.count > 1 {
            rng.fillNormal(parameter.value, std: 3 / Float(parameter.value.count / parameter.value.shape[0]).squareRoot())
        }
        let record = ModelRecord(configuration: configuration, classes: ["a", "b", "c"], mode: .grey, imageWidth: 32,
                                 imageHeight: 32, steps: 0, imagesAtLastRun: 0, options: TrainingOptions(), checkpointID: "test")
        let classifier = Classifier(channels: 1, classes: 3, resolution: 32, width: Judge.width)
        for parameter in classifier.parameters where parameter.value.shape.count > 1 {
            rng.fillNormal(parameter.value, std: 1 / Float(parameter.value.count / parameter.value.shape[0]).squareRoot())
        }
        classifier.setTraining(false)
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 16
        sampler.device = device
        let labels: [Int32] = (0..<40).map { Int32($0 % 3) }
        let plain = Judge(classifier: classifier, classes: record.classes, imagesPerClass: [1, 1, 1], channels: 1, resolution: 32)
        let (images, _) = try sampler.sampleSquares([(labels, 9)], judges: [plain])

        // The CPU judge's features of the same images, in Float.
        let x = Tensor(zeros: [labels.count, 1, 32, 32])
        for (row, image) in images.enumerated() {
            for p in 0..<1024 { x.data[row * 1024 + p] = scaledPixel(image.pixels[p]) }
        }
        let logits = classifier.forward(x)
        let features = try #require(classifier.features).values
        let d = NearCopies.dimension
        func distance(_ i: Int, _ row: ArraySlice<Float>) -> Double {
            zip(features[(i * d)..<((i + 1) * d)], row).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        }
        var real = [[Float]](repeating: [], count: 3)
        for (i, label) in labels.enumerated() where i % 2 == 0 { real[Int(label)] += features[(i * d)..<((i + 1) * d)] }
        for k in 0..<3 { for _ in 0..<(5 * d) { real[k].append(rng.normal()) } }
        func nearest(_ i: Int) -> Double {
            let rows = real[Int(labels[i])]
            return stride(from: 0, to: rows.count, by: d).map { distance(i, rows[$0..<($0 + d)]) }.min()!
        }
        let thresholds: [Float?] = (0..<3).map { k in
            Float(0.5 * labels.indices.filter { $0 % 2 == 1 && labels[$0] == Int32(k) }.map(nearest).min()!)
        }
        let judge = Judge(classifier: classifier, classes: record.classes, imagesPerClass: [1, 1, 1], channels: 1, resolution: 32,
                          nearCopies: NearCopies(real: real, thresholds: thresholds))

        let onDevice = try DeviceJudge(judge, on: device)
        let bytes = try device.upload(images.flatMap(\.pixels))
        _ = try onDevice.logits(bytes: bytes.address, count: labels.count, width: 32, height: 32)
        let distances = try #require(try onDevice.nearestReal(labels: labels))
        for i in labels.indices {
            let expected = nearest(i)
            #expect(abs(Double(distances[i]) - expected) <= 1e-3 * max(1, expected), "sample \(i): \(distances[i]) vs \(expected)")
        }

        let (_, verdicts) = try sampler.sampleSquares([(labels, 9)], judges: [judge])
        let judged = try #require(verdicts)
        let expected = judge.verdicts(logits, labels: labels[...], nearest: .features(features))
        #expect(judged == expected, "the device's verdicts are the CPU judge's")
        let accepted = plain.verdicts(logits, labels: labels[...], nearest: nil)
        #expect(labels.indices.contains { $0 % 2 == 0 && accepted[$0] && !judged[$0] }, "an accepted near-copy dropped")
        #expect(labels.indices.allSatisfy { $0 % 2 == 0 || judged[$0] == accepted[$0] }, "the others as the class check had them")
    }
}

@Suite(.enabled(if: EmulatedDevice.compilerPath != nil, "g++ is not installed: the device judge is not emulated"))
struct EmulatedJudgeTests {
    @Test(arguments: [(1, 28, 28), (3, 20, 26), (1, 40, 48)])
    func judgeMatchesTheCPU(channels: Int, width: Int, height: Int) throws {
        try DeviceJudgeChecks(device: EmulatedDevice()).judgeMatchesTheCPU(channels: channels, width: width, height: height)
    }

    @Test func nearCopiesMatchTheCPU() throws {
        try DeviceJudgeChecks(device: EmulatedDevice()).nearCopiesMatchTheCPU()
    }
}

@Suite(.enabled(if: gpu != nil, "no NVIDIA GPU here (GPU tests run on the device machine)"))
struct GPUJudgeTests {
    @Test(arguments: [(1, 28, 28), (3, 20, 26), (1, 40, 48)])
    func judgeMatchesTheCPU(channels: Int, width: Int, height: Int) throws {
        try DeviceJudgeChecks(device: gpu!).judgeMatchesTheCPU(channels: channels, width: width, height: height)
    }

    @Test func nearCopiesMatchTheCPU() throws {
        try DeviceJudgeChecks(device: gpu!).nearCopiesMatchTheCPU()
    }
}
