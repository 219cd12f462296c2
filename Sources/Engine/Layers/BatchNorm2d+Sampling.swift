extension BatchNorm2d {
    /// G's "BatchNorm -> per-class scale and shift -> ReLU" in one pass over `x`, in place, for
    /// sampling: the statistics of this batch as in training (two passes per channel, as
    /// `forward`), then each plane becomes max(0, x * a + b) with
    ///
    ///     a = invStd * gamma * s,   b = (beta - mean * invStd * gamma) * s + t
    ///
    /// where s, t are `classAffine`'s row for the image's label (1, 0 without it). The three
    /// layers' own passes read and wrote every activation three times and kept copies for a
    /// backward pass that sampling never runs; here each channel is read for its statistics and
    /// rewritten while still in cache. Nothing is kept, and the running estimates are left
    /// alone (sampling uses batch statistics; see Sampler).
    public func normalizeScaleRectifyForSampling(_ x: Tensor, classAffine: ClassConditionalAffine?, labels: [Int32]) {
        precondition(x.rank == 4 && x.shape[1] == channels && labels.count == x.shape[0],
                     "BatchNorm2d expects (B, \(channels), H, W) and B labels, got \(x.shape), \(labels.count)")
        if let classAffine {
            precondition(classAffine.channels == channels, "class affine of \(classAffine.channels) channels after BatchNorm2d of \(channels)")
            for label in labels {
                precondition(label >= 0 && Int(label) < classAffine.classes, "class \(label) outside 0..<\(classAffine.classes)")
            }
        }
        let batch = x.shape[0], area = x.shape[2] * x.shape[3]
        let perChannel = batch * area, stride = channels * area
        Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(perChannel, 1))) { range in
            for c in range {
                let base = x.data + c * area
                var total: Float = 0
                for b in 0..<batch { total += sum(base + b * stride, area) }
                let mean = total / Float(perChannel)
                var squares: Float = 0
                for b in 0..<batch { squares += sumOfSquaredDeviations(base + b * stride, area, center: mean) }
                let invStd = 1 / (squares / Float(perChannel) + eps).squareRoot()
                let normScale = invStd * gamma.value[c], normShift = beta.value[c] - mean * normScale
                for b in 0..<batch {
                    var a = normScale, shift = normShift
                    if let classAffine {
                        let k = Int(labels[b]) * channels + c
                        let s = classAffine.scale.value[k]
                        (a, shift) = (a * s, shift * s + classAffine.shift.value[k])
                    }
                    let plane = base + b * stride
                    for i in 0..<area { plane[i] = Swift.max(0, plane[i] * a + shift) }
                }
            }
        }
    }
}
