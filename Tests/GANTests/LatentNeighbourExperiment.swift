import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

/// An experiment of issue 17 (docs/quality.md, "Neighbours of the real images"), not a check:
/// the generator's samples near each real image instead of anywhere in its latent space. Each
/// real image's z is found by descending on the pixels' squared error through G (its label
/// given, a small pull towards the prior), then PER_CLASS images a class are drawn as
/// G(z + sigma * noise) around the real images' codes and written as an output tree.
///
///     SYNTHD_EXPERIMENT_NEIGHBOURS="STATE REAL OUT SIGMA PER_CLASS" \
///         .build/release/synthdPackageTests.xctest --testing-library swift-testing --filter neighboursOfTheRealImages
@Suite struct LatentNeighbourExperiment {
    static let arguments = ProcessInfo.processInfo.environment["SYNTHD_EXPERIMENT_NEIGHBOURS"]?
        .split(separator: " ").map(String.init)

    @Test(.enabled(if: arguments?.count == 5, "an experiment: SYNTHD_EXPERIMENT_NEIGHBOURS=\"STATE REAL OUT SIGMA PER_CLASS\" runs it"))
    func neighboursOfTheRealImages() throws {
        let arguments = try #require(Self.arguments)
        let (state, real, out) = (arguments[0], arguments[1], arguments[2])
        let sigma = try #require(Float(arguments[3])), perClass = try #require(Int(arguments[4]))
        let folder = try StateFolder(state)
        let (generator, record) = try SavedGenerator.load(folder)
        let set = try Trainer.loadDataset(real, state: folder, resolution: record.configuration.resolution)
        let (n, latent, r, c) = (set.count, record.configuration.latentSize, set.resolution, set.channels)
        let target = Tensor(zeros: [n, c, r, r])
        var labels: [Int32] = []
        set.fill(target, labels: &labels, indices: 0..<n)

        // Adam on z alone; G in training mode over the whole set (its BatchNorms' statistics are
        // this batch's, as when the variations are drawn below).
        generator.setTraining(true)
        var rng = RandomGenerator(seed: 5)
        let z = Tensor(zeros: [n, latent])
        rng.fillNormal(z)
        var m = [Float](repeating: 0, count: n * latent), v = m
        let (rate, prior, steps) = (Float(0.05), Float(1e-3), 400)
        let pixels = Float(c * r * r)
        let dImages = Tensor(zeros: [n, c, r, r])
        for step in 1...steps {
            let images = generator.forward(z, labels: labels)
            var loss: Double = 0
            for i in 0..<(n * c * r * r) {
                let d = images.data[i] - target.data[i]
                loss += Double(d * d)
                dImages.data[i] = 2 * d / pixels
            }
            let dz = generator.backward(dImages)
            let (b1, b2) = (1 - powf(0.9, Float(step)), 1 - powf(0.999, Float(step)))
            for i in 0..<(n * latent) {
                let g = dz.data[i] + 2 * prior * z.data[i]
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                z.data[i] -= rate * (m[i] / b1) / ((v[i] / b2).squareRoot() + 1e-8)
            }
            if step == 1 || step % 50 == 0 { print("step \(step): pixel MSE \(loss / Double(n) / Double(pixels))") }
        }

        // Variations: each draw moves every code at once, so the batch's statistics stay those of
        // codes of the real images.
        let draws = (perClass * record.classes.count + n - 1) / n
        let unfit = { (image: Image) in Resampling.unfit(image, width: record.imageWidth, height: record.imageHeight,
                                                          fitting: record.imageFitting) }
        var written = [Int](repeating: 0, count: record.classes.count)
        for name in record.classes { try FileManager.default.createDirectory(atPath: out + "/" + name, withIntermediateDirectories: true) }
        let moved = Tensor(zeros: [n, latent]), noise = Tensor(zeros: [n, latent])
        let sampler = Sampler(generator: generator, record: record)
        for draw in 0..<draws {
            rng.fillNormal(noise)
            for i in 0..<(n * latent) { moved.data[i] = z.data[i] + sigma * noise.data[i] }
            let images = generator.forward(moved, labels: labels)
            for i in 0..<n {
                let k = Int(labels[i])
                guard written[k] < perClass else { continue }
                let path = out + "/" + record.classes[k] + "/near-\(draw)-\(i).png"
                try PNG.write(unfit(sampler.square(images, index: i)), to: path, durable: false)
                written[k] += 1
            }
        }
        print("wrote \(written) images per class under \(out)")
    }
}
