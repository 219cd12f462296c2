import Engine

/// Differentiable augmentation (Zhao et al. 2020, "DiffAugment"): the same random colour,
/// translation and cutout are applied to every image D sees, real or fake, and the generator's
/// gradient flows back through them. It keeps D from memorising a small dataset.
///
/// Per image: brightness + U(-0.5, 0.5); saturation: (x - channel mean) * U(0, 2) + mean
/// (a no-op for grey); contrast: (x - image mean) * U(0.5, 1.5) + mean; translation by up to
/// 1/8 of the side with zero fill; cutout of a zero square half the side. All are affine in
/// x, so `backward` applies the transposed maps in reverse order.
///
/// With `adaptive` set (ADA, `AdaptiveAugmentation`) each transform is applied to each image
/// with the controller's probability only; without it, always (DiffAugment as published).
public final class DiffAugment: @unchecked Sendable {
    public struct Policy: OptionSet, Sendable, Codable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let colour = Policy(rawValue: 1)
        public static let translation = Policy(rawValue: 2)
        public static let cutout = Policy(rawValue: 4)
        public static let all: Policy = [.colour, .translation, .cutout]
    }

    struct ImageParameters {
        /// The transforms drawn for this image (all of the policy's unless adaptive).
        var applied: Policy = []
        var brightness: Float = 0, saturation: Float = 1, contrast: Float = 1
        var shiftX = 0, shiftY = 0
        var cutX = 0, cutY = 0, cutSize = 0
    }

    public let policy: Policy
    /// The seed it was made with (the device engine's draws start from it).
    public let seed: UInt64
    public var rng: RandomGenerator
    /// The probability controller of adaptive augmentation; nil: every transform every time.
    public var adaptive: AdaptiveAugmentation?
    private var parameters: [ImageParameters] = []
    /// Tests only: parameters for the next forward pass instead of a draw, 8 floats per image
    /// in the device kernels' layout (`DeviceDiffAugment.drawnParameters`), so that a CPU step
    /// can be compared with a device step that drew its own. Used once, then cleared.
    var replay: [Float]?
    private var output: Tensor?
    private var inputGrad: Tensor?
    private var scratch: Tensor?

    public init(policy: Policy = .all, seed: UInt64) {
        self.policy = policy
        self.seed = seed
        rng = RandomGenerator(seed: seed)
    }

    /// x (B, C, H, W) -> augmented copy, with fresh random parameters per image.
    public func forward(_ x: Tensor) -> Tensor {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let y = Tensor.reuse(output, shape: x.shape); output = y
        y.copy(from: x)
        if let rows = replay {
            precondition(rows.count == 8 * batch, "replayed parameters for \(rows.count / 8) images, not \(batch)")
            parameters = (0..<batch).map { Self.parameters(deviceRow: Array(rows[(8 * $0)..<(8 * $0 + 8)])) }
            replay = nil
        } else {
            parameters = (0..<batch).map { _ in drawParameters(height: height, width: width) }
        }
        let plane = height * width, image = channels * plane
        let tmp = Tensor.reuse(scratch, shape: [image]); scratch = tmp
        for b in 0..<batch {
            let p = parameters[b], data = y.data + b * image
            if p.applied.contains(.colour) {
                for i in 0..<image { data[i] += p.brightness }
                if channels > 1 { mixWithChannelMean(data, channels: channels, plane: plane, scale: p.saturation) }
                let mean = sum(data, image) / Float(image)
                for i in 0..<image { data[i] = (data[i] - mean) * p.contrast + mean }
            }
            if p.applied.contains(.translation) {
                shift(data, tmp.data, channels: channels, height: height, width: width, dx: p.shiftX, dy: p.shiftY)
            }
            if p.applied.contains(.cutout) {
                cut(data, channels: channels, height: height, width: width, p)
            }
        }
        return y
    }

    /// One image's parameters from this instance's stream.
    private func drawParameters(height: Int, width: Int) -> ImageParameters {
        // Without a controller no probability is drawn: the stream is DiffAugment's as before.
        let probability = adaptive?.probability
        func draw(_ transform: Policy) -> Bool {
            guard policy.contains(transform) else { return false }
            guard let probability else { return true }
            return rng.uniform(0, 1) < probability
        }
        var p = ImageParameters()
        if draw(.colour) { p.applied.insert(.colour) }
        if draw(.translation) { p.applied.insert(.translation) }
        if draw(.cutout) { p.applied.insert(.cutout) }
        if p.applied.contains(.colour) {
            p.brightness = rng.uniform(-0.5, 0.5)
            p.saturation = rng.uniform(0, 2)
            p.contrast = rng.uniform(0.5, 1.5)
        }
        if p.applied.contains(.translation) {
            let maxShift = max(1, width / 8)
            p.shiftX = rng.int(below: 2 * maxShift + 1) - maxShift
            p.shiftY = rng.int(below: 2 * maxShift + 1) - maxShift
        }
        if p.applied.contains(.cutout) {
            p.cutSize = max(1, width / 2)
            p.cutX = rng.int(below: width + 1 - p.cutSize / 2) - p.cutSize / 2
            p.cutY = rng.int(below: height + 1 - p.cutSize / 2) - p.cutSize / 2
        }
        return p
    }

    /// An image's parameters from the device kernels' row (brightness, saturation, contrast,
    /// shift x, shift y, cut x, cut y, cut size); a transform at its identity is not applied.
    static func parameters(deviceRow r: [Float]) -> ImageParameters {
        var p = ImageParameters()
        if r[0] != 0 || r[1] != 1 || r[2] != 1 {
            p.applied.insert(.colour)
            (p.brightness, p.saturation, p.contrast) = (r[0], r[1], r[2])
        }
        if r[3] != 0 || r[4] != 0 {
            p.applied.insert(.translation)
            (p.shiftX, p.shiftY) = (Int(r[3]), Int(r[4]))
        }
        if r[7] > 0 {
            p.applied.insert(.cutout)
            (p.cutX, p.cutY, p.cutSize) = (Int(r[5]), Int(r[6]), Int(r[7]))
        }
        return p
    }

    /// Counts D's logits on a real batch (augmented by this instance) for the controller.
    public func observe(realLogits: Tensor) { adaptive?.observe(realLogits: realLogits) }

    /// dL/dy -> dL/dx for the parameters of the last forward.
    public func backward(_ dy: Tensor) -> Tensor {
        let (batch, channels, height, width) = (dy.shape[0], dy.shape[1], dy.shape[2], dy.shape[3])
        let dx = Tensor.reuse(inputGrad, shape: dy.shape); inputGrad = dx
        dx.copy(from: dy)
        let plane = height * width, image = channels * plane
        let tmp = Tensor.reuse(scratch, shape: [image]); scratch = tmp
        for b in 0..<batch {
            let p = parameters[b], data = dx.data + b * image
            if p.applied.contains(.cutout) { cut(data, channels: channels, height: height, width: width, p) }
            if p.applied.contains(.translation) {
                // The adjoint of a zero-filled shift is the opposite shift.
                shift(data, tmp.data, channels: channels, height: height, width: width, dx: -p.shiftX, dy: -p.shiftY)
            }
            if p.applied.contains(.colour) {
                // y = c (x - mean(x)) + mean(x): dx = c dy + (1 - c) mean(dy); likewise saturation
                // per pixel over channels; brightness adds a constant (dx = dy).
                let mean = sum(data, image) / Float(image)
                for i in 0..<image { data[i] = p.contrast * data[i] + (1 - p.contrast) * mean }
                if channels > 1 { mixWithChannelMean(data, channels: channels, plane: plane, scale: p.saturation) }
            }
        }
        return dx
    }

    /// x <- scale * x + (1 - scale) * mean over channels, per pixel (self-adjoint).
    private func mixWithChannelMean(_ data: UnsafeMutablePointer<Float>, channels: Int, plane: Int, scale: Float) {
        for i in 0..<plane {
            var mean: Float = 0
            for c in 0..<channels { mean += data[c * plane + i] }
            mean /= Float(channels)
            for c in 0..<channels { data[c * plane + i] = (data[c * plane + i] - mean) * scale + mean }
        }
    }

    /// Moves content by (dx, dy) pixels, filling with zeros.
    private func shift(_ data: UnsafeMutablePointer<Float>, _ tmp: UnsafeMutablePointer<Float>,
                       channels: Int, height: Int, width: Int, dx: Int, dy: Int) {
        if dx == 0 && dy == 0 { return }
        let plane = height * width
        tmp.update(from: data, count: channels * plane)
        for c in 0..<channels {
            for y in 0..<height {
                let sy = y - dy
                for x in 0..<width {
                    let sx = x - dx
                    data[c * plane + y * width + x] = (sy >= 0 && sy < height && sx >= 0 && sx < width)
                        ? tmp[c * plane + sy * width + sx] : 0
                }
            }
        }
    }

    private func cut(_ data: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, _ p: ImageParameters) {
        let plane = height * width
        for y in max(0, p.cutY)..<min(height, p.cutY + p.cutSize) {
            for x in max(0, p.cutX)..<min(width, p.cutX + p.cutSize) {
                for c in 0..<channels { data[c * plane + y * width + x] = 0 }
            }
        }
    }
}
