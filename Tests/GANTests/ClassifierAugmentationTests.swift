import Engine
@testable import GAN
import Testing

@Suite struct ClassifierAugmentationTests {
    /// A 4x4 image of distinct values, shifted one down and two left: each pixel comes from
    /// (y - 1, x + 2), clamped to the image (the edges repeat into the gap).
    @Test func shiftMovesPixelsAndRepeatsEdges() {
        let values = (0..<32).map(Float.init)  // two images
        let batch = Tensor(shape: [2, 1, 4, 4], values: values)
        var scratch: [Float] = []
        ClassifierAugmentation.shift(batch, image: 1, down: 1, right: -2, scratch: &scratch)
        #expect(Array(batch.values[0..<16]) == Array(values[0..<16]), "the other image is untouched")
        var expected: [Float] = []
        for y in 0..<4 { for x in 0..<4 { expected.append(16 + Float(max(y - 1, 0) * 4 + min(x + 2, 3))) } }
        #expect(Array(batch.values[16..<32]) == expected)
    }

    /// Random shifts: every channel of an image moves together, no image moves further than
    /// allowed, images get different offsets, the same seed gives the same batch, and no shift
    /// at all leaves the batch as it was.
    @Test func appliesBoundedPerImageShifts() {
        // One bright pixel at (8, 8) in each image, both channels.
        let batch = Tensor(zeros: [64, 2, 16, 16])
        for i in 0..<(64 * 2) { batch[i * 256 + 8 * 16 + 8] = 1 }
        var rng = RandomGenerator(seed: 4)
        let augmented = Tensor(shape: batch.shape, values: batch.values)
        ClassifierAugmentation(maxShift: 2).apply(to: augmented, rng: &rng)
        var offsets: Set<[Int]> = []
        for image in 0..<64 {
            let positions = (0..<2).map { c in (0..<256).filter { augmented[(image * 2 + c) * 256 + $0] == 1 } }
            #expect(positions[0].count == 1 && positions[0] == positions[1], "image \(image): \(positions)")
            let (y, x) = (positions[0][0] / 16, positions[0][0] % 16)
            #expect(abs(y - 8) <= 2 && abs(x - 8) <= 2, "image \(image) moved to (\(y), \(x))")
            offsets.insert([y - 8, x - 8])
        }
        #expect(offsets.count > 15, "of 25 possible offsets, \(offsets.count) seen")

        var again = RandomGenerator(seed: 4)
        let repeated = Tensor(shape: batch.shape, values: batch.values)
        ClassifierAugmentation(maxShift: 2).apply(to: repeated, rng: &again)
        #expect(repeated.values == augmented.values)
        let unshifted = Tensor(shape: batch.shape, values: batch.values)
        ClassifierAugmentation(maxShift: 0).apply(to: unshifted, rng: &again)
        #expect(unshifted.values == batch.values)
    }
}
