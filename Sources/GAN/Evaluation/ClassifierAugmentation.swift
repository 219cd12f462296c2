import Engine

/// The standard augmentation of a small-image classifier: every training image shifted by up
/// to `maxShift` pixels each way, its edge rows and columns repeated into the gap, with a
/// fresh draw each time the image is used, so that a few hundred images cannot be memorised
/// pixel for pixel. No mirroring: Fashion-MNIST's shoes all point one way, and mirrored
/// training images cost accuracy there (measured: docs/training.md).
public struct ClassifierAugmentation: Sendable, Equatable {
    public var maxShift: Int

    public init(maxShift: Int = 2) {
        precondition(maxShift >= 0, "a shift cannot be negative")
        self.maxShift = maxShift
    }

    /// Shifts every image of `batch` (B, C, H, W) in place by its own random offset.
    public func apply(to batch: Tensor, rng: inout RandomGenerator) {
        let span = UInt64(2 * maxShift + 1)
        var scratch: [Float] = []   // one plane, reused for every image
        for image in 0..<batch.shape[0] {
            let dy = Int(rng.nextUInt64() % span) - maxShift, dx = Int(rng.nextUInt64() % span) - maxShift
            Self.shift(batch, image: image, down: dy, right: dx, scratch: &scratch)
        }
    }

    /// Moves image `image` of `batch` `down` rows and `right` columns (negative: up, left);
    /// what moves in from outside repeats the nearest edge pixel.
    /// `scratch` holds a copy of one plane (grown as needed).
    static func shift(_ batch: Tensor, image: Int, down dy: Int, right dx: Int, scratch plane: inout [Float]) {
        let (channels, h, w) = (batch.shape[1], batch.shape[2], batch.shape[3])
        guard dy != 0 || dx != 0 else { return }
        if plane.count < h * w { plane = [Float](repeating: 0, count: h * w) }
        for c in 0..<channels {
            let p = batch.data + (image * channels + c) * h * w
            for i in 0..<(h * w) { plane[i] = p[i] }
            for y in 0..<h {
                let from = min(max(y - dy, 0), h - 1) * w
                for x in 0..<w { p[y * w + x] = plane[from + min(max(x - dx, 0), w - 1)] }
            }
        }
    }
}
