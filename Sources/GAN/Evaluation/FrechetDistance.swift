import Engine

/// Mean and covariance of feature vectors, in Double.
public struct FeatureStatistics: Sendable {
    public let dimension: Int
    public let count: Int
    public let mean: [Double]
    /// Row-major dimension x dimension, normalised by count - 1.
    public let covariance: [Double]

    /// `features` holds `count` vectors of `dimension` values back to back.
    public init(_ features: [Float], dimension: Int) {
        let count = features.count / dimension
        precondition(count >= 2, "statistics need at least two feature vectors")
        var mean = [Double](repeating: 0, count: dimension)
        for i in 0..<count { for d in 0..<dimension { mean[d] += Double(features[i * dimension + d]) } }
        for d in 0..<dimension { mean[d] /= Double(count) }
        var covariance = [Double](repeating: 0, count: dimension * dimension)
        var centred = [Double](repeating: 0, count: dimension)
        for i in 0..<count {
            for d in 0..<dimension { centred[d] = Double(features[i * dimension + d]) - mean[d] }
            for a in 0..<dimension {
                let ca = centred[a]
                for b in a..<dimension { covariance[a * dimension + b] += ca * centred[b] }
            }
        }
        for a in 0..<dimension {
            for b in a..<dimension {
                let value = covariance[a * dimension + b] / Double(count - 1)
                covariance[a * dimension + b] = value
                covariance[b * dimension + a] = value
            }
        }
        self.dimension = dimension
        self.count = count
        self.mean = mean
        self.covariance = covariance
    }

    /// Mean distance of the vectors from their mean: a spread to compare diversity with.
    public static func spread(_ features: [Float], dimension: Int) -> Double {
        let count = features.count / dimension
        guard count > 0 else { return 0 }
        var mean = [Double](repeating: 0, count: dimension)
        for i in 0..<count { for d in 0..<dimension { mean[d] += Double(features[i * dimension + d]) / Double(count) } }
        var total = 0.0
        for i in 0..<count {
            var squares = 0.0
            for d in 0..<dimension { let x = Double(features[i * dimension + d]) - mean[d]; squares += x * x }
            total += squares.squareRoot()
        }
        return total / Double(count)
    }
}

/// The Frechet distance between two Gaussians fitted to features (Heusel et al. 2017, "FID"
/// when the features are Inception's): |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).
/// tr (S1 S2)^(1/2) is computed as the sum of the square roots of the eigenvalues of the
/// symmetric S1^(1/2) S2 S1^(1/2), which has the same spectrum.
public func frechetDistance(_ a: FeatureStatistics, _ b: FeatureStatistics) -> Double {
    precondition(a.dimension == b.dimension, "feature sizes differ: \(a.dimension) and \(b.dimension)")
    let n = a.dimension
    var meanTerm = 0.0
    for d in 0..<n { meanTerm += (a.mean[d] - b.mean[d]) * (a.mean[d] - b.mean[d]) }
    var traces = 0.0
    for d in 0..<n { traces += a.covariance[d * n + d] + b.covariance[d * n + d] }
    let rootA = SymmetricEigen(a.covariance, n: n).apply { $0 > 0 ? $0.squareRoot() : 0 }
    let product = multiply(multiply(rootA, b.covariance, n), rootA, n)
    let crossTrace = SymmetricEigen(product, n: n).values.reduce(0) { $0 + ($1 > 0 ? $1.squareRoot() : 0) }
    return meanTerm + traces - 2 * crossTrace
}

func multiply(_ x: [Double], _ y: [Double], _ n: Int) -> [Double] {
    var result = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for k in 0..<n {
            let xik = x[i * n + k]
            if xik == 0 { continue }
            for j in 0..<n { result[i * n + j] += xik * y[k * n + j] }
        }
    }
    return result
}
