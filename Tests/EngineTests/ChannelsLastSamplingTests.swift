@testable import Engine
import NumericTestSupport
import Testing

/// The channels-last sampling path (ChannelsLast.swift, `ConvTranspose2d.sample`,
/// `BatchNorm2d.samplingAffine`) against the planes path it replaces.
@Suite struct ChannelsLastSamplingTests {
    /// (B, C, H, W) planes -> channels-last with padded, zero lanes.
    func channelsLast(_ x: Tensor) -> ChannelsLast {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let stride = ChannelsLast.padded(c)
        let y = Tensor(zeros: [b, h, w, stride])
        for image in 0..<b {
            for channel in 0..<c {
                for pixel in 0..<(h * w) { y[(image * h * w + pixel) * stride + channel] = x[(image * c + channel) * h * w + pixel] }
            }
        }
        return ChannelsLast(values: y, channels: c)
    }

    /// The statistics `sample` takes as it makes the values (sums of y - bias in the output
    /// transform, per part of the batch) are the two-pass ones of its output.
    func expectStatistics(_ statistics: ChannelStatistics, of y: ChannelsLast,
                          sourceLocation: SourceLocation = #_sourceLocation) {
        let reference = ChannelStatistics(of: y)
        #expect(statistics.mean.count == y.channels, sourceLocation: sourceLocation)
        expectClose(statistics.mean.map(Float.init), reference.mean.map(Float.init), atol: 1e-5, rtol: 1e-5, "means",
                    sourceLocation: sourceLocation)
        expectClose(statistics.variance.map(Float.init), reference.variance.map(Float.init), atol: 1e-5, rtol: 1e-4,
                    "variances", sourceLocation: sourceLocation)
    }

    func layer(_ cin: Int, _ cout: Int, seed: UInt64) -> ConvTranspose2d {
        let up = ConvTranspose2d("up", inChannels: cin, outChannels: cout, kernelSize: 4, stride: 2, padding: 1)
        up.weight.value.copy(from: randomTensor(up.weight.shape, seed: seed))
        up.bias!.value.copy(from: randomTensor(up.bias!.shape, seed: seed + 1))
        return up
    }

    /// From planes, `sample` gives `forward(.winograd)`'s values, channels-last, zero past Cout.
    @Test(arguments: [(3, 16), (20, 17)])
    func sampleFromPlanesIsTheForwardChannelsLast(cin: Int, cout: Int) {
        let up = layer(cin, cout, seed: 5)
        let x = randomTensor([3, cin, 4, 8], seed: 6)
        let expected = channelsLast(up.forward(x, algorithm: .winograd))
        let (y, statistics) = up.sample(.planes(x))
        expectStatistics(statistics, of: y)
        #expect(y.values.shape == expected.values.shape && y.channels == cout)
        // The two sum the same products in different orders (OpenBLAS's kernels differ by CPU):
        // on an Emerald Rapids they differ by up to 4.8e-6 here, as much as the columns forward
        // and the Winograd forward differ from each other (3.8e-6), on a Zen 2 (AVX2) by 1.5e-5;
        // a wrong tap or channel, by ~0.1.
        expectClose(y.values.values, expected.values.values, atol: 3e-5, rtol: 3e-5, "sample vs forward")
    }

    /// BatchNorm (batch statistics), class scale and shift and ReLU as tables applied on the way
    /// into the next layer give what the in-place planes pass and a planes forward give; the
    /// tables turned back into planes give that pass's values too.
    @Test(arguments: [false, true])
    func normalisedChannelsLastInputMatchesThePlanesPath(classConditional: Bool) {
        let channels = 20, labels: [Int32] = [2, 0, 1, 2, 1]
        let norm = BatchNorm2d("bn", channels: channels)
        norm.gamma.value.copy(from: randomTensor([channels], seed: 7, range: 0.5...1.5))
        norm.beta.value.copy(from: randomTensor([channels], seed: 8))
        let classAffine = classConditional ? ClassConditionalAffine("cbn", classes: 3, channels: channels) : nil
        if let classAffine {
            classAffine.scale.value.copy(from: randomTensor(classAffine.scale.shape, seed: 9, range: 0.5...1.5))
            classAffine.shift.value.copy(from: randomTensor(classAffine.shift.shape, seed: 10))
        }
        let raw = randomTensor([5, channels, 4, 4], seed: 11, range: -2...3)
        let input = channelsLast(raw)

        let planes = Tensor(zeros: raw.shape)
        planes.copy(from: raw)
        norm.normalizeScaleRectifyForSampling(planes, classAffine: classAffine, labels: labels)
        let affine = norm.samplingAffine(statistics: ChannelStatistics(of: input), classAffine: classAffine, labels: labels)
        expectClose(input.planes(applying: affine, reusing: nil).values, planes.values, atol: 1e-5, rtol: 1e-5,
                    "tables back to planes")

        let up = layer(channels, 16, seed: 12)
        let expected = channelsLast(up.forward(planes, algorithm: .winograd)).values.values
        let (y, statistics) = up.sample(.channelsLast(input, affine))
        expectClose(y.values.values, expected, atol: 1e-4, rtol: 1e-4, "channels-last input through the tables")
        expectStatistics(statistics, of: y)
    }

    /// The image layer from channels-last activations through their tables gives the planes
    /// path's values: the tables back to planes, then the columns forward.
    @Test(arguments: [1, 3])
    func imageLayerFromChannelsLastIsTheColumnsForward(outChannels: Int) {
        let channels = 20, labels: [Int32] = [1, 0, 1]
        let input = channelsLast(randomTensor([3, channels, 8, 4], seed: 13, range: -2...2))
        let scale = randomTensor([2, input.stride], seed: 14, range: 0.5...1.5), shift = randomTensor([2, input.stride], seed: 15)
        let affine = RectifiedChannelAffine(scale: scale, shift: shift, rows: labels)
        let up = layer(channels, outChannels, seed: 16)
        let expected = up.forward(input.planes(applying: affine, reusing: nil), algorithm: .columns)
        let y = up.sampleImage(input, affine)
        #expect(y.shape == [3, outChannels, 16, 8])
        expectClose(y.values, expected.values, atol: 1e-5, rtol: 1e-5, "image layer channels-last vs planes")
    }
}

/// Standing statistics pool batches' statistics: equal-sized batches pooled must give the
/// mean and biased variance of all their values together (computed here directly).
@Test func pooledStatisticsAreThoseOfTheBatchesTogether() {
    let batches: [[[Double]]] = [[[1, 2, 3, 4, 5], [0, 0, 1, 1, 2]],
                                 [[2, 4, 6, 8, 10], [3, 3, 3, 3, 3]],
                                 [[-1, 0, 1, 0, -1], [7, 1, 2, 2, 3]]]
    func statistics(_ channels: [[Double]]) -> ChannelStatistics {
        let means = channels.map { $0.reduce(0, +) / Double($0.count) }
        let variances = zip(channels, means).map { values, mean in
            values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
        }
        return ChannelStatistics(mean: means, variance: variances)
    }
    let pooled = ChannelStatistics.pooled(batches.map(statistics))
    let together = statistics((0..<2).map { c in batches.flatMap { $0[c] } })
    for c in 0..<2 {
        #expect(abs(pooled.mean[c] - together.mean[c]) < 1e-12 && abs(pooled.variance[c] - together.variance[c]) < 1e-12,
                "channel \(c): \(pooled.mean[c]), \(pooled.variance[c]) against \(together.mean[c]), \(together.variance[c])")
    }
}

