import Engine
import Testing

/// The SIMD reductions against Double sums at every length up to 100, so that each of their
/// paths (two vectors a step, one more vector, the scalar tail) and every way of combining
/// them is covered: BatchNorm's 4x4 planes are 16 floats, its 8x8 ones 64.
@Suite struct ReductionTests {
    @Test func sumsDotsAndSquaredDeviationsMatchDoubleSumsAtEveryLength() {
        var rng = RandomGenerator(seed: 11)
        for count in 0...100 {
            let x = (0..<count).map { _ in rng.uniform(-1, 1) }
            let y = (0..<count).map { _ in rng.uniform(-1, 1) }
            let center: Float = 0.25
            let expectedSum = x.reduce(0.0) { $0 + Double($1) }
            let expectedDot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let expectedSquares = x.reduce(0.0) { $0 + (Double($1) - Double(center)) * (Double($1) - Double(center)) }
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeBufferPointer { yp in
                    let base = xp.baseAddress ?? UnsafePointer(bitPattern: 16)!
                    let other = yp.baseAddress ?? UnsafePointer(bitPattern: 16)!
                    #expect(abs(Double(sum(base, count)) - expectedSum) < 1e-5, "sum of \(count)")
                    #expect(abs(Double(dot(base, other, count)) - expectedDot) < 1e-5, "dot of \(count)")
                    #expect(abs(Double(sumOfSquaredDeviations(base, count, center: center)) - expectedSquares) < 1e-5,
                            "squared deviations of \(count)")
                }
            }
        }
    }

    /// Runs spaced through a larger buffer (a channel's planes over a batch): whole vectors
    /// (16, 32, 48, 64: one set of accumulators over every run, odd and even run counts) and
    /// lengths that are not (each run summed alone), against Double sums of exactly those
    /// elements; the gaps hold values that would show if read.
    @Test func sumsOverStridedRunsMatchDoubleSums() {
        var rng = RandomGenerator(seed: 12)
        for count in [1, 7, 16, 20, 32, 48, 64, 80] {
            for runs in [1, 2, 3, 8, 17] {
                let stride = count * 3 + 5
                var x = [Float](repeating: 1e6, count: runs * stride)
                var expectedSum = 0.0, values: [Float] = []
                for run in 0..<runs {
                    for i in 0..<count {
                        let v = rng.uniform(-1, 1)
                        x[run * stride + i] = v
                        values.append(v)
                        expectedSum += Double(v)
                    }
                }
                let center = Float(expectedSum / Double(values.count))
                let expectedSquares = values.reduce(0.0) { $0 + (Double($1) - Double(center)) * (Double($1) - Double(center)) }
                x.withUnsafeBufferPointer { xp in
                    let got = sum(runs: runs, of: count, stride: stride, from: xp.baseAddress!)
                    #expect(abs(Double(got) - expectedSum) < 1e-4, "\(runs) runs of \(count)")
                    let squares = sumOfSquaredDeviations(runs: runs, of: count, stride: stride, from: xp.baseAddress!, center: center)
                    #expect(abs(Double(squares) - expectedSquares) < 1e-4 * max(1, expectedSquares), "\(runs) runs of \(count)")
                }
            }
        }
    }
}
