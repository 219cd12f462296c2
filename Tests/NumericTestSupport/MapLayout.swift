/// Values stored (A, B, S) rewritten as (B, A, S), plainly: image-by-image maps (B, C, area)
/// to channel-major ones (C, B, area) and back, for the device checks of both layouts.
public func swapLeadingAxes(_ v: [Float], a: Int, b: Int, inner: Int) -> [Float] {
    var out = [Float](repeating: 0, count: v.count)
    for j in 0..<a { for k in 0..<b { for s in 0..<inner { out[(k * a + j) * inner + s] = v[(j * b + k) * inner + s] } } }
    return out
}
