/// A per-class scale and shift of each channel of an NCHW tensor:
/// y[b, c] = x[b, c] * scale[label_b, c] + shift[label_b, c].
///
/// After a BatchNorm this is class-conditional batch normalisation (de Vries et al. 2017), how
/// the generators of Miyato & Koyama 2018 and BigGAN take the class at every resolution
/// rather than only at the input. Scale starts at 1 and shift at 0, so a new layer (or a new
/// class's row) changes nothing until training moves it.
public final class ClassConditionalAffine: Module {
    public let scale: Parameter   // (classes, channels)
    public let shift: Parameter   // (classes, channels)
    public let classes: Int, channels: Int

    private var input: Tensor?
    private var labels: [Int32] = []
    private var output: Tensor?
    private var inputGrad: Tensor?

    public init(_ name: String, classes: Int, channels: Int) {
        self.classes = classes
        self.channels = channels
        scale = Parameter("\(name).scale", shape: [classes, channels])
        shift = Parameter("\(name).shift", shape: [classes, channels])
        scale.value.fill(1)
    }

    public var parameters: [Parameter] { [scale, shift] }

    public func forward(_ x: Tensor, labels: [Int32]) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == channels && labels.count == x.shape[0],
                     "ClassConditionalAffine expects (B, \(channels), H, W) and B labels, got \(x.shape), \(labels.count)")
        for label in labels {
            precondition(label >= 0 && Int(label) < classes, "ClassConditionalAffine: class \(label) outside 0..<\(classes)")
        }
        let y = Tensor.reuse(output, shape: x.shape); output = y
        let area = x.shape[2] * x.shape[3]
        Parallel.forRanges(x.shape[0] * channels, minimumPerChunk: Swift.max(1, 16384 / area)) { range in
            for plane in range {
                let k = Int(labels[plane / channels]) * channels + plane % channels
                let a = scale.value[k], b = shift.value[k]
                let src = x.data + plane * area, dst = y.data + plane * area
                for i in 0..<area { dst[i] = src[i] * a + b }
            }
        }
        input = x
        self.labels = labels
        return y
    }

    /// dy -> dx; adds d scale and d shift into the rows of the labels seen.
    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("ClassConditionalAffine.backward before forward") }
        let dx = Tensor.reuse(inputGrad, shape: x.shape); inputGrad = dx
        let batch = x.shape[0], area = x.shape[2] * x.shape[3]
        // By channel, so that no two threads add into the same gradient element.
        Parallel.forRanges(channels, minimumPerChunk: Swift.max(1, 16384 / Swift.max(1, batch * area))) { range in
            for c in range {
                for b in 0..<batch {
                    let k = Int(labels[b]) * channels + c
                    let offset = (b * channels + c) * area
                    let a = scale.value[k]
                    scale.grad[k] += dot(dy.data + offset, x.data + offset, area)
                    shift.grad[k] += sum(dy.data + offset, area)
                    for i in 0..<area { dx.data[offset + i] = dy.data[offset + i] * a }
                }
            }
        }
        return dx
    }
}
