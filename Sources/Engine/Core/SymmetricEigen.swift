/// Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations, in Double.
/// Quadratic convergence; a few sweeps suffice for the 128 x 128 covariance matrices that the
/// Frechet distance needs.
public struct SymmetricEigen {
    /// Eigenvalues (unsorted) and the matching eigenvectors as columns of an n x n row-major matrix.
    public let values: [Double]
    public let vectors: [Double]
    public let n: Int

    public init(_ matrix: [Double], n: Int, maxSweeps: Int = 50) {
        precondition(matrix.count == n * n, "matrix of \(matrix.count) values is not \(n) x \(n)")
        var a = matrix
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        for _ in 0..<maxSweeps {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<max(p + 1, n) { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-22 { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) where abs(a[p * n + q]) > 1e-300 {
                    let apq = a[p * n + q]
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {  // columns p and q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {  // rows p and q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        values = (0..<n).map { a[$0 * n + $0] }
        vectors = v
        self.n = n
    }

    /// V f(L) V^T for a function of the eigenvalues (square root of a covariance, say).
    public func apply(_ f: (Double) -> Double) -> [Double] {
        var result = [Double](repeating: 0, count: n * n)
        let mapped = values.map(f)
        for i in 0..<n {
            for j in 0..<n {
                var total = 0.0
                for k in 0..<n { total += vectors[i * n + k] * mapped[k] * vectors[j * n + k] }
                result[i * n + j] = total
            }
        }
        return result
    }
}
