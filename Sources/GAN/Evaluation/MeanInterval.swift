/// Where the mean of a few noisy measurements could be: the 95% confidence interval of the mean
/// of `values` (Student's t, two-sided), nil for fewer than two. The mixing measure's gains are
/// paired differences (each seed's mixed classifier against its own real-alone twin), so this is
/// the paired t interval: a row whose interval holds 0 has not shown a gain or a loss.
public func meanInterval95(_ values: [Double]) -> ClosedRange<Double>? {
    let n = values.count
    guard n >= 2 else { return nil }
    let mean = values.reduce(0, +) / Double(n)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
    let half = studentT975(degreesOfFreedom: n - 1) * (variance / Double(n)).squareRoot()
    return (mean - half)...(mean + half)
}

/// The 0.975 quantile of Student's t distribution: exact to three decimals up to 30 degrees of
/// freedom (the tables'), then the normal's 1.96 with the first correction term.
func studentT975(degreesOfFreedom df: Int) -> Double {
    precondition(df >= 1)
    let table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
    if df <= table.count { return table[df - 1] }
    let z = 1.959964
    return z + (z * z * z + z) / (4 * Double(df))
}
