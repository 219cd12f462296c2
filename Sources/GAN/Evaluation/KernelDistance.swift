/// The kernel distance between two sets of feature vectors (Binkowski et al. 2018, "KID" when
/// the features are Inception's): the unbiased estimate of the squared maximum mean discrepancy
/// under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
///
///     MMD^2 = mean over i != j of k(a_i, a_j) + mean over i != j of k(b_i, b_j) - 2 mean of k(a_i, b_j).
///
/// Why this and not the Frechet distance where few real images are at hand (checkpoint
/// selection holds out 50 images of a 500-image dataset): the Frechet distance fits a
/// covariance of d x d (128 x 128 here) to the sets, which 50 vectors cannot fill, and its
/// estimate is biased by an amount that depends on the set's size; the kernel distance has no
/// bias at any size (it may come out slightly negative when the two sets are alike), so that
/// distances measured against the same small set rank generators by what they are.
///
/// `a` and `b` hold vectors of `dimension` values back to back, at least two each.
public func kernelDistance(_ a: [Float], _ b: [Float], dimension d: Int) -> Double {
    let m = a.count / d, n = b.count / d
    precondition(m >= 2 && n >= 2 && a.count == m * d && b.count == n * d,
                 "kernel distance needs at least two whole vectors of \(d) values on each side")
    let scale = 1 / Float(d)
    /// Sum of k over rows of `x` against rows of `y` (pairs with i < j only and times two,
    /// diagonal left out, when `within`).
    func kernelSum(_ x: [Float], _ xCount: Int, _ y: [Float], _ yCount: Int, within: Bool) -> Double {
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeBufferPointer { ys in
                var total = 0.0
                for i in 0..<xCount {
                    let row = xs.baseAddress! + i * d
                    var rowTotal = 0.0
                    for j in (within ? i + 1 : 0)..<yCount {
                        let column = ys.baseAddress! + j * d
                        var dot: Float = 0
                        for k in 0..<d { dot += row[k] * column[k] }
                        let base = Double(dot * scale) + 1
                        rowTotal += base * base * base
                    }
                    total += rowTotal
                }
                return within ? 2 * total : total
            }
        }
    }
    let withinA = kernelSum(a, m, a, m, within: true) / Double(m * (m - 1))
    let withinB = kernelSum(b, n, b, n, within: true) / Double(n * (n - 1))
    let across = kernelSum(a, m, b, n, within: false) / Double(m * n)
    return withinA + withinB - 2 * across
}
