import Engine
import Synchronization

/// Memorisation: generated images that are near-copies of training images, found in the
/// judge's features (`Classifier.features`). A sample is a near-copy when the nearest real
/// image of its class is nearer than that class's threshold: the distance that 95% of the
/// class's real images keep from their own nearest other real image (leave one out). So a
/// new real image of the class would be called a copy about 5% of the time, and a sample the
/// generator memorised, far more often. A class with one real image has no threshold.
public struct NearCopies: Sendable {
    /// The share of real images nearer to another real image than the threshold.
    public static let percentile = 0.05
    public static let dimension = Classifier.featureSize

    /// Per class, its real images' features (rows of `dimension`), and their squared norms.
    let real: [[Float]]
    private let norms: [[Float]]
    /// Per class, the squared distance under which a sample is a near-copy.
    public let thresholds: [Float?]

    /// From the real images' features (rows) and labels.
    public init(features: [Float], labels: [Int32], classes: Int) {
        let d = Self.dimension
        var real = [[Float]](repeating: [], count: classes)
        for (row, label) in labels.enumerated() { real[Int(label)] += features[(row * d)..<((row + 1) * d)] }
        self.real = real
        let norms = real.map(Self.squaredNorms)
        self.norms = norms
        thresholds = zip(real, norms).map { rows, rowNorms in
            guard rows.count / d >= 2 else { return nil }
            let nearest = Self.nearest(rows, among: rows, norms: rowNorms, leavingOut: true).sorted()
            return nearest[min(nearest.count - 1, Int(Double(nearest.count) * Self.percentile))]
        }
    }

    /// From saved per-class features (rows) and thresholds (a judge's checkpoint).
    public init(real: [[Float]], thresholds: [Float?]) {
        self.real = real
        norms = real.map(Self.squaredNorms)
        self.thresholds = thresholds
    }

    /// |row|^2 of each row.
    static func squaredNorms(_ rows: [Float]) -> [Float] {
        (0..<(rows.count / dimension)).map { r in (0..<dimension).reduce(Float(0)) { $0 + rows[r * dimension + $1] * rows[r * dimension + $1] } }
    }

    /// Whether each sample (rows of `features`, with `labels`) is a near-copy of a real image.
    ///
    /// A task per class, so that a caller outside the parallel workers (a whole set judged on
    /// one thread) uses every core: a class of Fashion-MNIST is 6,000 real images, 1.5 MFLOP
    /// a sample. Inside a CPU sampling worker the tasks run in turn on its thread. (A GPU's
    /// sampling finds the distances on the device: `areCopies(nearest:labels:)`.)
    public func areCopies(_ features: [Float], labels: [Int32]) -> [Bool] {
        let d = Self.dimension
        let groups: [(k: Int, threshold: Float, rows: [Int])] = Set(labels).sorted().compactMap { label in
            let k = Int(label)
            guard k < thresholds.count, let threshold = thresholds[k] else { return nil }
            return (k, threshold, labels.indices.filter { labels[$0] == label })
        }
        let copies = Mutex([Bool](repeating: false, count: labels.count))
        Parallel.forEachTask(groups.count) { _, task in
            let (k, threshold, rows) = groups[task]
            let samples = rows.flatMap { features[($0 * d)..<(($0 + 1) * d)] }
            let distances = Self.nearest(samples, among: real[k], norms: norms[k], leavingOut: false)
            copies.withLock { copies in
                for (row, distance) in zip(rows, distances) { copies[row] = distance < threshold }
            }
        }
        return copies.withLock { $0 }
    }

    /// Whether each sample is a near-copy, given its squared distance to the nearest real
    /// image of its class (`labels`), found elsewhere (a GPU: `DeviceJudge.nearestReal`).
    public func areCopies(nearest: [Float], labels: [Int32]) -> [Bool] {
        zip(nearest, labels).map { distance, label in
            let k = Int(label)
            guard k < thresholds.count, let threshold = thresholds[k] else { return false }
            return distance < threshold
        }
    }

    /// Real images of each class (the model's class order).
    public var realCounts: [Int] { real.map { $0.count / Self.dimension } }

    /// For each row of `queries`, the squared distance to the nearest row of `rows` (whose
    /// squared norms are `rowNorms`; the same index skipped when `leavingOut`: queries and
    /// rows are then one set): |q|^2 + |r|^2 - 2 q.r, the dot products by BLAS in blocks of 256
    /// queries (single-threaded: the judge runs on every sampling worker at once), in FP32
    /// whatever the context asks for: the subtraction cancels most of the dot product's digits.
    static func nearest(_ queries: [Float], among rows: [Float], norms rowNorms: [Float], leavingOut: Bool) -> [Float] {
        ComputeContext.withFloat32Products { nearestInFloat32(queries, among: rows, norms: rowNorms, leavingOut: leavingOut) }
    }

    private static func nearestInFloat32(_ queries: [Float], among rows: [Float], norms rowNorms: [Float], leavingOut: Bool) -> [Float] {
        let d = dimension, m = queries.count / d, n = rows.count / d
        guard n > 0 else { return [Float](repeating: .infinity, count: m) }
        var result = [Float](repeating: .infinity, count: m)
        let block = min(256, m)
        var dots = [Float](repeating: 0, count: block * n)
        for start in stride(from: 0, to: m, by: block) {
            let count = min(block, m - start)
            queries.withUnsafeBufferPointer { q in
                rows.withUnsafeBufferPointer { r in
                    dots.withUnsafeMutableBufferPointer { out in
                        BLAS.gemmSerial(transB: true, m: count, n: n, k: d, a: q.baseAddress! + start * d, lda: d,
                                        b: r.baseAddress!, ldb: d, c: out.baseAddress!, ldc: n)
                    }
                }
            }
            let queryNorms = Self.squaredNorms(Array(queries[(start * d)..<((start + count) * d)]))
            for i in 0..<count {
                let query = start + i, norm = queryNorms[i]
                var best = Float.infinity
                for j in 0..<n where !(leavingOut && j == query) {
                    best = min(best, norm + rowNorms[j] - 2 * dots[i * n + j])
                }
                result[query] = max(0, best)
            }
        }
        return result
    }
}
