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
}
