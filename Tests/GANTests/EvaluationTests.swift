import Engine
import GAN
import Testing

@Suite struct EvaluationTests {
    func gaussian(_ count: Int, dimension: Int, mean: Float, scale: Float, seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<(count * dimension)).map { _ in mean + scale * rng.normal() }
    }

    @Test func frechetDistanceOfKnownGaussians() {
        // Same distribution: ~0. Means shifted by 1 in each of 4 dimensions: ~4. Scale 2 vs 1
        // (covariances I and 4I): tr(I + 4I - 2 * 2I) = 4 * 1 = 4.
        let a = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 1, seed: 1), dimension: 4)
        let b = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 1, seed: 2), dimension: 4)
        let shifted = FeatureStatistics(gaussian(20000, dimension: 4, mean: 1, scale: 1, seed: 3), dimension: 4)
        let wide = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 2, seed: 4), dimension: 4)
        #expect(frechetDistance(a, b) < 0.01)
        #expect(abs(frechetDistance(a, shifted) - 4) < 0.15)
        #expect(abs(frechetDistance(a, wide) - 4) < 0.3)
    }

    @Test func classifierLearnsASeparableProblem() {
        // Class 0: dark images, class 1: bright images, with noise.
        var rng = RandomGenerator(seed: 5)
        var pixels: [UInt8] = [], labels: [Int32] = []
        for i in 0..<256 {
            let label = Int32(i % 2)
            labels.append(label)
            for _ in 0..<(32 * 32) { pixels.append(UInt8(max(0, min(255, (label == 0 ? 60 : 190) + rng.normal() * 30)))) }
        }
        let data = LabeledImages(pixels: pixels, labels: labels, channels: 1, resolution: 32)
        let model = Classifier.train(on: data, classes: 2, epochs: 3, seed: 1, minimumSteps: 0)
        let (predictions, features) = model.evaluate(data)
        let accuracy = Double(zip(predictions, labels).filter { $0 == Int($1) }.count) / Double(labels.count)
        #expect(accuracy > 0.95, "accuracy \(accuracy)")
        #expect(features.count == 256 * Classifier.featureSize)
    }
}
