import Glibc

/// A layer's weights as a Winograd path multiplies them, transformed again only when the
/// weights changed: sampling and D's passes within a step call a layer with the same weights
/// again and again, and comparing reads them once where transforming writes 25/4 times as much.
final class TransformedWeights {
    private var transformed: Tensor?
    /// The weights `transformed` was made from.
    private var source: Tensor?

    /// `count` floats of `weight` transformed by `transform(weight, into)`; `changed` when they
    /// were transformed now (whatever was derived from the last ones is stale).
    func prepare(_ weight: Tensor, count: Int,
                 transform: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> (weights: Tensor, changed: Bool) {
        let u = Tensor.reuse(transformed, shape: [count])
        let copy = Tensor.reuse(source, shape: weight.shape)
        let changed = u !== transformed || copy !== source
            || memcmp(copy.data, weight.data, weight.count * MemoryLayout<Float>.size) != 0
        if changed {
            transform(weight.data, u.data)
            copy.copy(from: weight)
        }
        (transformed, source) = (u, copy)
        return (u, changed)
    }
}
