import Engine
import NumericTestSupport
import Testing

@Suite struct RandomGeneratorTests {
    @Test func matchesPublishedSplitMix64Outputs() {
        // The first outputs of SplitMix64 seeded with 0 (Vigna's reference splitmix64.c).
        var rng = RandomGenerator(seed: 0)
        #expect(rng.nextUInt64() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.nextUInt64() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func matchesTheNumPyReplicaUsedForFixtures() {
        // scripts/reference_model.py's RandomGenerator(42): normal(3), uniform(2), int_below(3, 10).
        var rng = RandomGenerator(seed: 42)
        expectClose([rng.normal(), rng.normal(), rng.normal()], [0.41471976, 0.65268123, -0.89188623], atol: 1e-6)
        expectClose([rng.uniform(), rng.uniform()], [0.038030148, 0.86822802], atol: 1e-7)
        #expect([rng.int(below: 10), rng.int(below: 10), rng.int(below: 10)] == [2, 8, 3])
    }

    @Test func streamsAreReproducibleAndResumable() {
        var a = RandomGenerator(seed: 9)
        _ = (0..<5).map { _ in a.normal() }
        let saved = RandomGenerator(seed: a.seed, counter: a.counter, spareNormal: a.spareNormal)
        var b = saved
        #expect((0..<7).map { _ in a.normal() } == (0..<7).map { _ in b.normal() })
    }

    @Test func distributionsHaveTheirMoments() {
        var rng = RandomGenerator(seed: 3)
        let n = 200_000
        var sum = 0.0, squares = 0.0, uniformSum = 0.0
        for _ in 0..<n {
            let x = Double(rng.normal())
            sum += x; squares += x * x
            uniformSum += Double(rng.uniform())
        }
        #expect(abs(sum / Double(n)) < 0.01)
        #expect(abs(squares / Double(n) - 1) < 0.02)
        #expect(abs(uniformSum / Double(n) - 0.5) < 0.005)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<n { counts[rng.int(below: 10)] += 1 }
        #expect(counts.allSatisfy { abs($0 - n / 10) < n / 100 })
    }
}
