import Engine
import GAN
import Testing

/// Near-copies of real images among samples, against a plain transcription of the rule: the
/// threshold is the 5th percentile of the real images' leave-one-out nearest-neighbour
/// distances within their class.
@Suite struct NearCopiesTests {
    let d = 128

    func rows(_ count: Int, seed: UInt64, offset: Float = 0) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        let t = Tensor(zeros: [count, d])
        rng.fillNormal(t, mean: offset)
        return t.values
    }

    /// Squared Euclidean distance of row i of a to row j of b, in Double.
    func distance(_ a: [Float], _ i: Int, _ b: [Float], _ j: Int) -> Double {
        (0..<d).reduce(0.0) { let x = Double(a[i * d + $1]) - Double(b[j * d + $1]); return $0 + x * x }
    }

    @Test func thresholdsAndCopiesFollowTheRule() throws {
        // Class 0: 60 images; class 1: 30 around another centre; class 2: one image.
        let first = rows(60, seed: 1), second = rows(30, seed: 2, offset: 3), third = rows(1, seed: 3)
        let features = first + second + third
        let labels = [Int32](repeating: 0, count: 60) + [Int32](repeating: 1, count: 30) + [2]
        let copies = NearCopies(features: features, labels: labels, classes: 3)

        for (k, real) in [(0, first), (1, second)] {
            let n = real.count / d
            let nearest = (0..<n).map { i in (0..<n).filter { $0 != i }.map { distance(real, i, real, $0) }.min()! }.sorted()
            let expected = nearest[Int(Double(n) * NearCopies.percentile)]
            let got = try #require(copies.thresholds[k])
            #expect(abs(Double(got) - expected) <= 1e-3 * expected, "class \(k): \(got) vs \(expected)")
        }
        #expect(copies.thresholds[2] == nil, "one image: no threshold")

        // A real image slightly moved is a copy; one moved by the class's typical distance is
        // not; a sample of another class is compared with its own class only.
        let threshold = Double(copies.thresholds[0]!)
        var near = Array(first[0..<d]), far = Array(first[0..<d])
        for i in 0..<d { near[i] += 0.01; far[i] += Float((threshold / Double(d)).squareRoot() * 1.5) }
        let samples = near + far + near + Array(third[0..<d])
        #expect(copies.areCopies(samples, labels: [0, 0, 1, 2]) == [true, false, false, false])
    }

    /// A batch's classes are checked as parallel tasks (on a GPU's sampling thread) or in turn
    /// (inside a sampling worker, or on one thread): every sample gets its own verdict either
    /// way, the plain rule's, whatever order its class's rows come in.
    @Test func classesCheckedInParallelGiveEachSampleItsOwnVerdict() {
        let classes = 6
        let real = (0..<classes).map { rows(25, seed: 10 + UInt64($0), offset: Float($0)) }
        let labels = (0..<classes).flatMap { [Int32](repeating: Int32($0), count: 25) }
        let copies = NearCopies(features: real.flatMap { $0 }, labels: labels, classes: classes)
        // 48 samples, classes interleaved; every third one a slightly moved real image.
        var rng = RandomGenerator(seed: 20)
        var samples: [Float] = [], sampleLabels: [Int32] = []
        for i in 0..<48 {
            let k = (i * 5) % classes
            let source = real[k][(i % 25 * d)..<(i % 25 * d + d)]
            samples += source.map { $0 + (i % 3 == 0 ? 0.01 : 1.5) * rng.normal() }
            sampleLabels.append(Int32(k))
        }
        let plain = (0..<48).map { i in
            let k = Int(sampleLabels[i])
            return (0..<25).map { distance(samples, i, real[k], $0) }.min()! < Double(copies.thresholds[k]!)
        }
        let parallel = ComputeContext(threads: 4).run { copies.areCopies(samples, labels: sampleLabels) }
        let serial = ComputeContext(threads: 1).run { copies.areCopies(samples, labels: sampleLabels) }
        #expect(parallel == plain)
        #expect(serial == plain)
        #expect(plain.enumerated().allSatisfy { $0.element == ($0.offset % 3 == 0) }, "the moved copies, and only they")
    }

    /// The daemon's jobs ask for bfloat16 products, which would cancel a distance's digits
    /// (|q|^2 + |r|^2 - 2 q.r): thresholds and verdicts are the FP32 ones in such a context.
    @Test(.enabled(if: BFloat16Kernel.fastest != nil, "this CPU has no bfloat16 kernel: bfloat16 products are not used here"))
    func bfloat16ContextsMeasureDistancesInFloat32() {
        let features = rows(60, seed: 4) + rows(40, seed: 5, offset: 2)
        let labels = [Int32](repeating: 0, count: 60) + [Int32](repeating: 1, count: 40)
        var samples = rows(30, seed: 6)
        for i in 0..<(10 * d) { samples[i] = features[i] + 0.02 * samples[i] }   // ten near-copies of class 0
        for i in (10 * d)..<samples.count { samples[i] *= 2 }                       // twenty wider than any real image
        let sampleLabels = [Int32](repeating: 0, count: 30)
        let float32 = NearCopies(features: features, labels: labels, classes: 2)
        let (reduced, verdicts) = ComputeContext(threads: 2, products: .bfloat16).run {
            let copies = NearCopies(features: features, labels: labels, classes: 2)
            return (copies, copies.areCopies(samples, labels: sampleLabels))
        }
        #expect(reduced.thresholds == float32.thresholds)
        #expect(verdicts == float32.areCopies(samples, labels: sampleLabels))
        #expect(verdicts.prefix(10).allSatisfy { $0 } && !verdicts.suffix(20).contains(true))
    }
}
