/// BatchNorm, an optional per-class scale and shift, then ReLU or LeakyReLU, as one layer:
/// every stage of the generator (BatchNorm -> class scale and shift -> ReLU) and of the
/// discriminator (BatchNorm -> LeakyReLU). The parameters, running statistics and training
/// mode are those of the `BatchNorm2d` and `ClassConditionalAffine` it is made from, so
/// checkpoints do not change; the arithmetic is theirs.
///
/// Why one layer: the three run one after another cost nine passes over the activations
/// forward and twelve backward, each a read or write of megabytes that do not stay in cache
/// at batch 64, and they were a quarter of a CPU training step. Fused: the statistics (two
/// reads), then one pass that keeps x-hat and the output; backward, one pass that finds the
/// gradient at the BatchNorm's output and the sums BatchNorm and the class table need, and
/// one that finishes the input's gradient.
public final class BatchNormActivation {
    public let norm: BatchNorm2d
    public let classAffine: ClassConditionalAffine?
    /// The slope for negative inputs: 0 for ReLU, LeakyReLU's otherwise.
    public let negativeSlope: Float

    private var normalized: Tensor?   // x-hat
    private var output: Tensor?
    private var inputGrad: Tensor?
    private var invStd: [Float]
    private var labels: [Int32] = []

    /// `activation`: `.relu` or `.leakyReLU` (the derivative then follows from the output's sign).
    public init(_ norm: BatchNorm2d, classAffine: ClassConditionalAffine? = nil, activation: Activation.Kind) {
        switch activation {
        case .relu: negativeSlope = 0
        case .leakyReLU(let slope): negativeSlope = slope
        default: preconditionFailure("BatchNormActivation takes ReLU or LeakyReLU, not \(activation)")
        }
        precondition(classAffine.map { $0.channels == norm.channels } ?? true, "the class table has other channels")
        self.norm = norm
        self.classAffine = classAffine
        invStd = Array(repeating: 1, count: norm.channels)
    }

    /// x (B, C, H, W) -> act(classAffine(BatchNorm(x))); `labels` (B) with a class table.
    public func forward(_ x: Tensor, labels: [Int32] = []) -> Tensor {
        let channels = norm.channels
        precondition(x.rank == 4 && x.shape[1] == channels, "BatchNormActivation expects (B, \(channels), H, W), got \(x.shape)")
        if let classAffine {
            precondition(labels.count == x.shape[0], "\(x.shape[0]) images, \(labels.count) labels")
            for label in labels {
                precondition(label >= 0 && Int(label) < classAffine.classes, "class \(label) outside 0..<\(classAffine.classes)")
            }
        }
        self.labels = labels
        let batch = x.shape[0], area = x.shape[2] * x.shape[3], stride = channels * area
        let z = Tensor.reuse(output, shape: x.shape); output = z
        let xhat = Tensor.reuse(normalized, shape: x.shape); normalized = xhat
        let slope = negativeSlope
        invStd.withUnsafeMutableBufferPointer { invStd in
            Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(batch * area, 1))) { range in
                for c in range {
                    let (mean, inv) = norm.statistics(x, channel: c)
                    invStd[c] = inv
                    for b in 0..<batch {
                        // The class scale and shift folded into BatchNorm's: (h g + b') s + t.
                        let (scale, shift) = affine(channel: c, image: b)
                        let offset = b * stride + c * area
                        Self.normalizeAndActivate(x.data + offset, xhat.data + offset, z.data + offset, area,
                                                  mean: mean, inv: inv, scale: scale, shift: shift, slope: slope)
                    }
                }
            }
        }
        return z
    }

    /// dz (the output's gradient) -> dx; adds into BatchNorm's gamma and beta and the class
    /// table's rows of the labels seen when `parameterGradients`.
    public func backward(_ dz: Tensor, parameterGradients: Bool = true) -> Tensor {
        guard let xhat = normalized, let z = output else { preconditionFailure("BatchNormActivation.backward before forward") }
        let channels = norm.channels, shape = xhat.shape
        let batch = shape[0], area = shape[2] * shape[3], stride = channels * area
        let dx = Tensor.reuse(inputGrad, shape: shape); inputGrad = dx
        let n = Float(batch * area), slope = negativeSlope, training = norm.isTraining
        invStd.withUnsafeBufferPointer { invStd in
            // By channel, so that no two threads add into the same gradient element.
            Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 32768 / Swift.max(batch * area, 1))) { range in
                for c in range {
                    let g = norm.gamma.value[c], beta = norm.beta.value[c]
                    var sumDa: Float = 0, sumDaXhat: Float = 0
                    for b in 0..<batch {
                        let offset = b * stride + c * area
                        // du = dz act'(z); da = du s, kept in dx until the second pass.
                        let s = classAffine.map { $0.scale.value[Int(labels[b]) * channels + c] } ?? 1
                        let (du, duXhat) = Self.activationGradient(dz.data + offset, z.data + offset, xhat.data + offset,
                                                                   into: dx.data + offset, area, slope: slope, times: s)
                        if parameterGradients, let classAffine {
                            // u = a s + t with a = x-hat g + beta: d s = sum du a, d t = sum du.
                            let k = Int(labels[b]) * channels + c
                            classAffine.scale.grad[k] += g * duXhat + beta * du
                            classAffine.shift.grad[k] += du
                        }
                        sumDa += s * du
                        sumDaXhat += s * duXhat
                    }
                    if parameterGradients {
                        norm.gamma.grad[c] += sumDaXhat
                        norm.beta.grad[c] += sumDa
                    }
                    // dx = g inv (da - mean(da) - x-hat mean(da x-hat)); in inference mode, g inv da.
                    let k = g * invStd[c]
                    let meanDa = training ? sumDa / n : 0, meanDaXhat = training ? sumDaXhat / n : 0
                    for b in 0..<batch {
                        let offset = b * stride + c * area
                        Self.finishInputGradient(dx.data + offset, xhat.data + offset, area, k: k, meanDa: meanDa, meanDaXhat: meanDaXhat)
                    }
                }
            }
        }
        return dx
    }

    /// The combined scale and shift of image b's channel c: BatchNorm's, then its class's.
    private func affine(channel c: Int, image b: Int) -> (scale: Float, shift: Float) {
        let g = norm.gamma.value[c], beta = norm.beta.value[c]
        guard let classAffine else { return (g, beta) }
        let k = Int(labels[b]) * norm.channels + c
        let s = classAffine.scale.value[k], t = classAffine.shift.value[k]
        return (g * s, beta * s + t)
    }

    /// One plane: h = (x - mean) inv into xhat, z = act(h scale + shift).
    @inline(__always)
    private static func normalizeAndActivate(_ x: UnsafePointer<Float>, _ xhat: UnsafeMutablePointer<Float>,
                                             _ z: UnsafeMutablePointer<Float>, _ count: Int,
                                             mean: Float, inv: Float, scale: Float, shift: Float, slope: Float) {
        typealias V = SIMD16<Float>
        let (m, i16, a, b, s) = (V(repeating: mean), V(repeating: inv), V(repeating: scale), V(repeating: shift), V(repeating: slope))
        var i = 0
        while i + 16 <= count {
            let h = (UnsafeRawPointer(x + i).loadUnaligned(as: V.self) - m) * i16
            UnsafeMutableRawPointer(xhat + i).storeBytes(of: h, as: V.self)
            let u = h * a + b
            UnsafeMutableRawPointer(z + i).storeBytes(of: u.replacing(with: u * s, where: u .<= 0), as: V.self)
            i += 16
        }
        while i < count {
            let h = (x[i] - mean) * inv
            xhat[i] = h
            let u = h * scale + shift
            z[i] = u > 0 ? u : slope * u
            i += 1
        }
    }

    /// One plane: da = dz act'(z) s into `da`; returns (sum of du, sum of du x-hat), du = dz act'(z).
    @inline(__always)
    private static func activationGradient(_ dz: UnsafePointer<Float>, _ z: UnsafePointer<Float>, _ xhat: UnsafePointer<Float>,
                                           into da: UnsafeMutablePointer<Float>, _ count: Int, slope: Float,
                                           times s: Float) -> (Float, Float) {
        typealias V = SIMD16<Float>
        var sumDu = V(), sumDuXhat = V()
        let (slopes, ss) = (V(repeating: slope), V(repeating: s))
        var i = 0
        while i + 16 <= count {
            let g = UnsafeRawPointer(dz + i).loadUnaligned(as: V.self)
            let du = g.replacing(with: g * slopes, where: UnsafeRawPointer(z + i).loadUnaligned(as: V.self) .<= 0)
            sumDu += du
            sumDuXhat = sumDuXhat.addingProduct(du, UnsafeRawPointer(xhat + i).loadUnaligned(as: V.self))
            UnsafeMutableRawPointer(da + i).storeBytes(of: du * ss, as: V.self)
            i += 16
        }
        var du0 = sumDu.sum(), du1 = sumDuXhat.sum()
        while i < count {
            let du = z[i] > 0 ? dz[i] : slope * dz[i]
            du0 += du
            du1 += du * xhat[i]
            da[i] = du * s
            i += 1
        }
        return (du0, du1)
    }

    /// One plane, in place: dx = k (da - meanDa - x-hat meanDaXhat).
    @inline(__always)
    private static func finishInputGradient(_ dx: UnsafeMutablePointer<Float>, _ xhat: UnsafePointer<Float>, _ count: Int,
                                            k: Float, meanDa: Float, meanDaXhat: Float) {
        typealias V = SIMD16<Float>
        let (kk, m, mx) = (V(repeating: k), V(repeating: meanDa), V(repeating: meanDaXhat))
        var i = 0
        while i + 16 <= count {
            let da = UnsafeRawPointer(dx + i).loadUnaligned(as: V.self)
            let h = UnsafeRawPointer(xhat + i).loadUnaligned(as: V.self)
            UnsafeMutableRawPointer(dx + i).storeBytes(of: kk * (da - m - h * mx), as: V.self)
            i += 16
        }
        while i < count { dx[i] = k * (dx[i] - meanDa - xhat[i] * meanDaXhat); i += 1 }
    }
}
