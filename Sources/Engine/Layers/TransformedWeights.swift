import Glibc

/// A layer's weights as a Winograd path multiplies them, transformed again only when the
/// weights (or the layout asked for) changed: sampling and D's passes within a step call a
/// layer with the same weights again and again, and comparing reads them once where
/// transforming writes 25/4 times as much.
final class TransformedWeights {
    private var transformed: Tensor?
    /// The weights `transformed` was made from, and in which layout.
    private var source: Tensor?
    private var layout = WinogradProducts.Layout.rows

    /// The products of a pass of `Convolution` by `weight` (`inChannels` in, `outChannels` out)
    /// in `layout`, by default the one the running context's kernel takes for that many output
    /// columns; `changed` when the weights were transformed now (whatever was derived from the
    /// last ones is stale). The products read this object's memory: keep it while they run.
    func products<Convolution: WinogradWeightTransform>(
        _ convolution: Convolution.Type, of weight: Tensor, inChannels: Int, outChannels: Int,
        layout: WinogradProducts.Layout? = nil
    ) -> (products: WinogradProducts, changed: Bool) {
        let layout = layout ?? WinogradProducts.layout(n: outChannels)
        let count = Convolution.transformedWeightCount(inChannels: inChannels, outChannels: outChannels)
        let (u, changed) = prepare(weight, count: count, layout: layout) { w, u in
            Convolution.transformWeights(w, inChannels: inChannels, outChannels: outChannels, packed: layout.isPacked, into: u)
        }
        let products = WinogradProducts(weights: u.data, k: Convolution.productDepth(inChannels: inChannels),
                                        n: outChannels, layout: layout)
        return (products, changed)
    }

    /// `count` floats of `weight` transformed by `transform(weight, into)` in `layout`;
    /// `changed` when they were transformed now.
    private func prepare(_ weight: Tensor, count: Int, layout: WinogradProducts.Layout,
                         transform: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> (weights: Tensor, changed: Bool) {
        let u = Tensor.reuse(transformed, shape: [count])
        let copy = Tensor.reuse(source, shape: weight.shape)
        let changed = u !== transformed || copy !== source || layout != self.layout
            || memcmp(copy.data, weight.data, weight.count * MemoryLayout<Float>.size) != 0
        if changed {
            transform(weight.data, u.data)
            copy.copy(from: weight)
        }
        (transformed, source, self.layout) = (u, copy, layout)
        return (u, changed)
    }
}

/// What `TransformedWeights` needs of a Winograd convolution: the size of its transformed
/// weights, the depth of each of its products, and the transform.
protocol WinogradWeightTransform {
    static func transformedWeightCount(inChannels: Int, outChannels: Int) -> Int
    /// k of each product: the rows of one transformed weight matrix.
    static func productDepth(inChannels: Int) -> Int
    static func transformWeights(_ w: UnsafePointer<Float>, inChannels: Int, outChannels: Int, packed: Bool,
                                 into u: UnsafeMutablePointer<Float>)
}

extension WinogradStridedConvolution: WinogradWeightTransform {
    /// The four parity phases' channels side by side (a space-to-depth of the input).
    static func productDepth(inChannels: Int) -> Int { 4 * inChannels }
}

extension WinogradTransposedConvolution: WinogradWeightTransform {
    static func productDepth(inChannels: Int) -> Int { inChannels }
}

/// A Winograd pass's transformed weights, k x n matrices one after another, and how its GEMMs
/// multiply by them: the running context's `PanelKernel` where it has one and n suits it (the
/// weight transforms then write its packed panels: OpenBLAS would pack them again for every
/// product of every pass), else OpenBLAS on the plain matrices. Read-only while the pass runs,
/// on any thread.
struct WinogradProducts: @unchecked Sendable {
    enum Layout: Equatable {
        case rows
        case panels(PanelKernel)

        /// Whether the weight transforms write packed panels (`PanelKernel.offset`).
        var isPacked: Bool { self != .rows }
    }

    /// The layout a pass with `n` output columns takes in the running context.
    static func layout(n: Int) -> Layout {
        guard let kernel = ComputeContext.current.panelKernel, PanelKernel.suits(n: n) else { return .rows }
        return .panels(kernel)
    }

    let weights: UnsafePointer<Float>
    let k: Int, n: Int
    let layout: Layout

    /// c (m x n, row stride ldc) = a (m x k, row stride lda) . matrix `index`, on the calling thread.
    func multiply(_ index: Int, m: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let matrix = weights + index * k * n   // as long packed as plain: n is whole panels
        switch layout {
        case .panels(let kernel):
            kernel.multiply(m: m, n: n, k: k, a: a, lda: lda, packed: matrix, c: c, ldc: ldc)
        case .rows:
            BLAS.gemmSerial(m: m, n: n, k: k, a: a, lda: lda, b: matrix, ldb: n, c: c, ldc: ldc)
        }
    }
}
