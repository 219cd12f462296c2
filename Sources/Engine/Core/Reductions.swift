/// Sums of contiguous Float runs with SIMD accumulators.
///
/// Floating-point reductions are never auto-vectorised (the compiler may not reorder the
/// additions); 2 x SIMD16 accumulators run ~4x faster than a scalar loop and are more accurate.
@inlinable
public func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var sums = VectorSums()
    var i = sums.add(UnsafeRawPointer(p), count)
    var total = sums.total
    while i < count { total += p[i]; i += 1 }
    return total
}

/// Sum of x[i] * y[i].
@inlinable
public func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
    var i = 0
    let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
    while i + 32 <= count {
        acc0 = acc0.addingProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                  ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        acc1 = acc1.addingProduct(rx.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self),
                                  ry.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self))
        i += 32
    }
    if i + 16 <= count {
        acc0 = acc0.addingProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                  ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        i += 16
    }
    var total = (acc0 + acc1).sum()
    while i < count { total += x[i] * y[i]; i += 1 }
    return total
}

/// Sum of (x[i] - center)^2.
@inlinable
public func sumOfSquaredDeviations(_ x: UnsafePointer<Float>, _ count: Int, center: Float) -> Float {
    var sums = VectorSums()
    var i = sums.addSquaredDeviations(UnsafeRawPointer(x), count, from: SIMD16(repeating: center))
    var total = sums.total
    while i < count { let d = x[i] - center; total += d * d; i += 1 }
    return total
}

/// Sum of `runs` runs of `count` floats each, `stride` floats apart (a channel's planes over
/// the batch). Where runs are whole vectors, one set of accumulators serves every run: summing
/// each run on its own ended every 16 or 64 floats (BatchNorm's 4x4 and 8x8 planes) in a
/// horizontal sum that cost as much as the run.
@inlinable
public func sum(runs: Int, of count: Int, stride: Int, from p: UnsafePointer<Float>) -> Float {
    guard count % 16 == 0 else {
        var total: Float = 0
        for run in 0..<runs { total += sum(p + run * stride, count) }
        return total
    }
    var sums = VectorSums()
    for run in 0..<runs { _ = sums.add(UnsafeRawPointer(p + run * stride), count, lastIntoSecond: run & 1 == 1) }
    return sums.total
}

/// Sum of (x[i] - center)^2 over `runs` runs of `count` floats, `stride` apart (as `sum(runs:...)`).
@inlinable
public func sumOfSquaredDeviations(runs: Int, of count: Int, stride: Int, from x: UnsafePointer<Float>,
                                   center: Float) -> Float {
    guard count % 16 == 0 else {
        var total: Float = 0
        for run in 0..<runs { total += sumOfSquaredDeviations(x + run * stride, count, center: center) }
        return total
    }
    var sums = VectorSums()
    let c = SIMD16<Float>(repeating: center)
    for run in 0..<runs {
        _ = sums.addSquaredDeviations(UnsafeRawPointer(x + run * stride), count, from: c, lastIntoSecond: run & 1 == 1)
    }
    return sums.total
}

/// Two vector accumulators and the loops that add a run's whole vectors to them, shared by the
/// reductions over one run and over strided runs: two vectors a step, then one more (BatchNorm's
/// 4x4 planes are 16 floats, all tail without it) into the second accumulator where
/// `lastIntoSecond` (so that runs of 16 alternate and their additions overlap).
@usableFromInline
struct VectorSums {
    @usableFromInline var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()

    @inlinable init() {}

    @inlinable var total: Float { (acc0 + acc1).sum() }

    /// Adds the whole vectors of `count` floats at `raw`; returns how many floats that took.
    @inlinable @inline(__always)
    mutating func add(_ raw: UnsafeRawPointer, _ count: Int, lastIntoSecond: Bool = false) -> Int {
        var i = 0
        while i + 32 <= count {
            acc0 += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            acc1 += raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self)
            i += 32
        }
        if i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            if lastIntoSecond { acc1 += v } else { acc0 += v }
            i += 16
        }
        return i
    }

    /// Adds (x - c)^2 over the whole vectors of `count` floats at `raw`; returns how many floats that took.
    @inlinable @inline(__always)
    mutating func addSquaredDeviations(_ raw: UnsafeRawPointer, _ count: Int, from c: SIMD16<Float>,
                                       lastIntoSecond: Bool = false) -> Int {
        var i = 0
        while i + 32 <= count {
            let d0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - c
            let d1 = raw.loadUnaligned(fromByteOffset: (i + 16) * 4, as: SIMD16<Float>.self) - c
            acc0 = acc0.addingProduct(d0, d0)
            acc1 = acc1.addingProduct(d1, d1)
            i += 32
        }
        if i + 16 <= count {
            let d = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - c
            if lastIntoSecond { acc1 = acc1.addingProduct(d, d) } else { acc0 = acc0.addingProduct(d, d) }
            i += 16
        }
        return i
    }
}

/// y[i] += alpha * x[i].
@inlinable
public func axpy(_ y: UnsafeMutablePointer<Float>, _ alpha: Float, _ x: UnsafePointer<Float>, _ count: Int) {
    for i in 0..<count { y[i] += alpha * x[i] }
}

/// grad[c] += the sum of channel c's maps over the batch of x (B, C, H, W): a bias's gradient.
func addChannelSums(of x: Tensor, into grad: Tensor) {
    let (batch, channels, area) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
    for image in 0..<batch {
        for c in 0..<channels { grad.data[c] += sum(x.data + (image * channels + c) * area, area) }
    }
}
