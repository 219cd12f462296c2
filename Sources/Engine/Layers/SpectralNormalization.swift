import CBLAS

/// Spectral normalisation of a layer's weight (Miyato et al. 2018): the layer computes with
/// W / sigma(W), sigma the largest singular value, estimated by one power iteration per call
/// of `normalize(iterate: true)` from a vector `u` kept between calls (and in checkpoints).
///
/// The trained weight is `weight`, what optimisers and checkpoints see; the layer's own
/// parameter (`target`) only receives W / sigma before a forward pass, and its gradient is
/// turned into `weight`'s by `accumulateGradient()`. As in PyTorch, u and v count as constants
/// in the gradient: with sigma = u^T W v,
///     dL/dW = (G - <G, W/sigma> u v^T) / sigma,   G = dL/d(W/sigma).
///
/// W (rows, ...) is read as a matrix of rows x (count / rows), or its transpose when
/// `transposed` (an embedding table, whose row count grows with the classes: the kept vector
/// then lives on the side that does not grow).
public final class SpectralNormalization {
    /// The trained weight, under the layer parameter's name.
    public let weight: Parameter
    /// The layer's parameter, overwritten with W / sigma.
    public let target: Parameter
    /// The power iteration's left singular vector estimate, saved with the model.
    public let u: Tensor
    public let transposed: Bool
    /// sigma of the last `normalize`.
    public private(set) var sigma: Float = 1

    /// The rank-1 direction of d sigma / dW in W's own (rows, columns) layout.
    private let rowVector: Tensor
    private let columnVector: Tensor
    private let v: Tensor
    /// M v, the new u before normalising.
    private let mv: Tensor
    /// Whether v has been computed (a model loaded for inference has only u).
    private var hasDirection = false

    public init(_ target: Parameter, transposed: Bool = false) {
        self.target = target
        self.transposed = transposed
        weight = Parameter(target.name, shape: target.shape)
        let rows = target.shape[0], columns = target.value.count / rows
        let (uSize, vSize) = transposed ? (columns, rows) : (rows, columns)
        u = Tensor(zeros: [uSize])
        v = Tensor(zeros: [vSize])
        mv = Tensor(zeros: [uSize])
        // A fixed start per name: models stay reproducible without another seed to carry.
        let nameHash = Array(target.name.utf8).withUnsafeBytes { CRC32.checksum($0) }
        var rng = RandomGenerator(seed: UInt64(nameHash))
        rng.fillNormal(u)
        Self.normalizeInPlace(u)
        rowVector = Tensor(zeros: [rows])
        columnVector = Tensor(zeros: [columns])
    }

    /// The name `u` is saved under.
    public var vectorName: String { "\(weight.name).u" }

    private var rows: Int { weight.shape[0] }
    private var columns: Int { weight.value.count / rows }

    /// Sets the target to W / sigma. With `iterate`, first one power-iteration step:
    /// v = M^T u / |M^T u|, u = M v / |M v|, with M = W (or W^T); sigma = u^T M v either way.
    /// Without it (inference, or W changed by an optimiser step within a training step) the
    /// saved u and the last v are reused.
    public func normalize(iterate: Bool) {
        let w = weight.value.data
        if iterate || !hasDirection {
            multiply(w, transposingM: true, u.data, into: v.data)
            Self.normalizeInPlace(v)
            hasDirection = true
        }
        multiply(w, transposingM: false, v.data, into: mv.data)
        if iterate {
            u.copy(from: mv)
            Self.normalizeInPlace(u)
        }
        sigma = Swift.max(dot(u.data, mv.data, u.count), 1e-12)
        let scale = 1 / sigma
        let out = target.value.data
        for i in 0..<weight.value.count { out[i] = w[i] * scale }
        if transposed {
            rowVector.copy(from: v); columnVector.copy(from: u)
        } else {
            rowVector.copy(from: u); columnVector.copy(from: v)
        }
    }

    /// Adds dL/dW for the gradient the layer accumulated in `target.grad` since the last call,
    /// and clears that.
    public func accumulateGradient() {
        let g = target.grad.data, wsn = target.value.data, dw = weight.grad.data
        let count = weight.value.count
        let along = dot(g, wsn, count)
        let scale = 1 / sigma
        let columns = self.columns
        for r in 0..<rows {
            let coefficient = along * rowVector[r]
            let base = r * columns
            for c in 0..<columns {
                dw[base + c] += (g[base + c] - coefficient * columnVector[c]) * scale
            }
        }
        target.grad.zero()
    }

    /// y = M x, or M^T x when `transposingM`, for M = W (rows x columns, row-major) or W^T.
    private func multiply(_ w: UnsafePointer<Float>, transposingM: Bool, _ x: UnsafePointer<Float>,
                          into y: UnsafeMutablePointer<Float>) {
        let transposingW = transposingM != transposed
        cblas_sgemv(CblasRowMajor, transposingW ? CblasTrans : CblasNoTrans,
                    Int32(rows), Int32(columns), 1, w, Int32(columns), x, 1, 0, y, 1)
    }

    private static func normalizeInPlace(_ t: Tensor) {
        let norm = dot(t.data, t.data, t.count).squareRoot()
        let scale = 1 / Swift.max(norm, 1e-12)
        for i in 0..<t.count { t[i] *= scale }
    }
}
