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
    /// alone. With `statistics` given (standing statistics, see Sampler), those are used
    /// instead of the batch's. Returns the statistics used.
    @discardableResult
    public func normalizeScaleRectifyForSampling(_ x: Tensor, classAffine: ClassConditionalAffine?, labels: [Int32],
                                                 statistics given: ChannelStatistics? = nil) -> ChannelStatistics {
        precondition(x.rank == 4 && x.shape[1] == channels && labels.count == x.shape[0],
                     "BatchNorm2d expects (B, \(channels), H, W) and B labels, got \(x.shape), \(labels.count)")
        if let classAffine {
            precondition(classAffine.channels == channels, "class affine of \(classAffine.channels) channels after BatchNorm2d of \(channels)")
            for label in labels {
                precondition(label >= 0 && Int(label) < classAffine.classes, "class \(label) outside 0..<\(classAffine.classes)")
            }
        }
        if let given { precondition(given.mean.count >= channels, "statistics of \(given.mean.count) channels for \(channels)") }
        let batch = x.shape[0], area = x.shape[2] * x.shape[3]
        let perChannel = batch * area, stride = channels * area
        var moments = [Double](repeating: 0, count: 2 * channels)   // each channel's mean and variance
        moments.withUnsafeMutableBufferPointer { buffer in
            let used = UncheckedSendable(buffer)   // each channel writes its own two slots
            Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(perChannel, 1))) { range in
                for c in range {
                    let base = x.data + c * area
                    let mean: Float, variance: Float
                    if let given {
                        (mean, variance) = (Float(given.mean[c]), Float(given.variance[c]))
                    } else {
                        mean = sum(runs: batch, of: area, stride: stride, from: base) / Float(perChannel)
                        let squares = sumOfSquaredDeviations(runs: batch, of: area, stride: stride, from: base, center: mean)
                        variance = squares / Float(perChannel)
                    }
                    (used.value[2 * c], used.value[2 * c + 1]) = (Double(mean), Double(variance))
                    let invStd = 1 / (variance + eps).squareRoot()
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
        return given ?? ChannelStatistics(mean: (0..<channels).map { moments[2 * $0] },
                                          variance: (0..<channels).map { moments[2 * $0 + 1] })
    }

    /// The same map for channels-last activations, as tables for the next layer to apply
    /// while it reads them (`ConvTranspose2d.sample`): from this batch's `statistics` per
    /// channel, a row of a = invStd * gamma * s and b = (beta - mean * invStd * gamma) * s + t
    /// per class (one row, s = 1 and t = 0, without `classAffine`).
    public func samplingAffine(statistics: ChannelStatistics, classAffine: ClassConditionalAffine?,
                               labels: [Int32]) -> RectifiedChannelAffine {
        precondition(statistics.mean.count >= channels, "statistics of \(statistics.mean.count) channels for BatchNorm2d of \(channels)")
        let stride = ChannelsLast.padded(channels)
        let rows = classAffine?.classes ?? 1
        let scale = Tensor(zeros: [rows, stride]), shift = Tensor(zeros: [rows, stride])
        for c in 0..<channels {
            let normScale = gamma.value[c] / (Float(statistics.variance[c]) + eps).squareRoot()
            let normShift = beta.value[c] - Float(statistics.mean[c]) * normScale
            for row in 0..<rows {
                let s = classAffine.map { $0.scale.value[row * channels + c] } ?? 1
                let t = classAffine.map { $0.shift.value[row * channels + c] } ?? 0
                scale[row * stride + c] = normScale * s
                shift[row * stride + c] = normShift * s + t
            }
        }
        return RectifiedChannelAffine(scale: scale, shift: shift, rows: classAffine == nil ? labels.map { _ in 0 } : labels)
    }
}

/// Per-channel mean and (biased) variance of a batch of activations, what BatchNorm
/// normalises with.
public struct ChannelStatistics: Sendable {
    public let mean: [Double]
    public let variance: [Double]

    public init(mean: [Double], variance: [Double]) {
        precondition(mean.count == variance.count, "\(mean.count) means, \(variance.count) variances")
        self.mean = mean
        self.variance = variance
    }

    /// The statistics of equally large batches taken together: the mean of the means, and the
    /// mean of (variance + mean^2) less the pooled mean squared.
    public static func pooled(_ batches: [ChannelStatistics]) -> ChannelStatistics {
        precondition(!batches.isEmpty, "no statistics to pool")
        let channels = batches[0].mean.count, n = Double(batches.count)
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for statistics in batches {
            precondition(statistics.mean.count == channels, "statistics of \(statistics.mean.count) and \(channels) channels")
            for c in 0..<channels {
                mean[c] += statistics.mean[c] / n
                variance[c] += (statistics.variance[c] + statistics.mean[c] * statistics.mean[c]) / n
            }
        }
        for c in 0..<channels { variance[c] = Swift.max(0, variance[c] - mean[c] * mean[c]) }
        return ChannelStatistics(mean: mean, variance: variance)
    }

    /// From sums of x - center and of its squares over `count` values per channel (as the
    /// Winograd output transform takes them, centred on the bias to keep the subtraction
    /// E[d^2] - E[d]^2 well conditioned).
    public init(sums: UnsafePointer<Double>, squares: UnsafePointer<Double>, center: UnsafePointer<Float>,
                channels: Int, count: Int) {
        let n = Double(count)
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for c in 0..<channels {
            let m = sums[c] / n
            mean[c] = Double(center[c]) + m
            variance[c] = Swift.max(0, squares[c] / n - m * m)
        }
        self.init(mean: mean, variance: variance)
    }

    /// Two passes over channels-last activations (vector lanes over channels, each image's sums
    /// in Float and the batch's in Double): what the fused statistics are checked against.
    public init(of x: ChannelsLast) {
        let stride = x.stride, pixels = x.height * x.width, count = Double(x.batch * pixels)
        var mean = [Double](repeating: 0, count: stride), variance = [Double](repeating: 0, count: stride)
        for lane in Swift.stride(from: 0, to: stride, by: 16) {
            var total = SIMD16<Double>()
            for image in 0..<x.batch {
                var sum = SIMD16<Float>()
                let p = x.values.data + image * pixels * stride + lane
                for pixel in 0..<pixels { sum += loadVector(p + pixel * stride) }
                total += SIMD16<Double>(sum)
            }
            let center = SIMD16<Float>(total / count)
            var squares = SIMD16<Double>()
            for image in 0..<x.batch {
                var sum = SIMD16<Float>()
                let p = x.values.data + image * pixels * stride + lane
                for pixel in 0..<pixels {
                    let d = loadVector(p + pixel * stride) - center
                    sum += d * d
                }
                squares += SIMD16<Double>(sum)
            }
            for k in 0..<16 {
                mean[lane + k] = Double(center[k])
                variance[lane + k] = squares[k] / count
            }
        }
        self.init(mean: Array(mean.prefix(x.channels)), variance: Array(variance.prefix(x.channels)))
    }
}

@inline(__always) private func loadVector(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
}
