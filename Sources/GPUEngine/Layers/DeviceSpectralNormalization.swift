import CUDA
import Engine

/// `SpectralNormalization` on a device: the trained weight W in its network's arena, the
/// layer's W / sigma in the arena the layer computes from, the power iteration's u and v and
/// sigma in device memory. The same steps as the CPU's, in the same order (`normalize` before a
/// forward pass, `accumulateGradient` after a D update's backward passes), so that a step on
/// the device and one on the CPU agree to rounding.
public final class DeviceSpectralNormalization {
    public let normalization: SpectralNormalization
    let weight: DeviceTensor, weightGradient: DeviceTensor
    let target: DeviceTensor, targetGradient: DeviceTensor
    let u: DeviceTensor, v: DeviceTensor, mv: DeviceTensor
    /// {sigma, <G, W/sigma>}.
    let scalars: DeviceTensor
    /// Whether v has been computed here (the CPU's rule: the first normalisation iterates).
    private var hasDirection = false

    /// `weights`: the arena with the trained weight; `targets`: the one with the layer's.
    public init(_ normalization: SpectralNormalization, weights: ParameterArena, targets: ParameterArena) throws(CUDAError) {
        self.normalization = normalization
        weight = weights.value(normalization.weight)
        weightGradient = weights.gradient(normalization.weight)
        target = targets.value(normalization.target)
        targetGradient = targets.gradient(normalization.target)
        let device = weights.device
        u = try DeviceTensor(normalization.u, on: device)
        v = try DeviceTensor(on: device, shape: [normalization.weight.value.count / normalization.u.count])
        mv = try DeviceTensor(on: device, shape: [normalization.u.count])
        scalars = try DeviceTensor(on: device, shape: [2])
        try device.fill(scalars, 1)
    }

    private var device: any KernelDevice { weight.device }
    private var rows: Int { normalization.weight.shape[0] }
    private var columns: Int { normalization.weight.value.count / rows }

    /// y = M x or M^T x, M = W, or W^T for a transposed normalisation (an embedding table).
    private func multiply(transposingM: Bool, _ x: DeviceTensor, into y: DeviceTensor) throws(CUDAError) {
        let transposingW = transposingM != normalization.transposed
        try device.launch("sn_matvec", grid: transposingW ? columns : rows, block: SpectralKernels.block,
                          [weight.argument, x.argument, y.argument, .int32(Int32(rows)), .int32(Int32(columns)),
                           .int32(transposingW ? 1 : 0)])
    }

    /// y = x / |x| (y may be x).
    private func normalize(_ x: DeviceTensor, into y: DeviceTensor) throws(CUDAError) {
        try device.launch("sn_normalize", grid: 1, block: SpectralKernels.block, [x.argument, y.argument, .int32(Int32(x.count))])
    }

    /// The layer's weight becomes W / sigma, after one power-iteration step when `iterate`.
    public func normalize(iterate: Bool) throws(CUDAError) {
        if iterate || !hasDirection {
            try multiply(transposingM: true, u, into: v)
            try normalize(v, into: v)
            hasDirection = true
        }
        try multiply(transposingM: false, v, into: mv)
        if iterate { try normalize(mv, into: u) }
        try device.launch("sn_dot", grid: 1, block: SpectralKernels.block,
                          [u.argument, mv.argument, scalars.argument, .int64(u.count), .float(1e-12)])
        try device.launchElementwise("sn_scale", count: weight.count,
                                     [weight.argument, target.argument, scalars.argument, .int64(weight.count)])
    }

    /// Adds dL/dW for the gradient the layer accumulated since the last call, and clears that.
    public func accumulateGradient() throws(CUDAError) {
        let along = DeviceTensor(storage: scalars.storage, offset: scalars.offset + 1, shape: [1])
        try device.launch("sn_dot", grid: 1, block: SpectralKernels.block,
                          [targetGradient.argument, target.argument, along.argument, .int64(weight.count), .float(-.infinity)])
        let (row, column) = normalization.transposed ? (v, u) : (u, v)
        try device.launchElementwise("sn_gradient", count: weight.count,
                                     [targetGradient.argument, weightGradient.argument, row.argument, column.argument,
                                      along.argument, scalars.argument, .int32(Int32(rows)), .int32(Int32(columns))])
    }

    /// u into the CPU normalisation (the model's buffer; checkpoints keep it).
    public func download() throws(CUDAError) {
        let values = try u.values()
        for i in values.indices { normalization.u[i] = values[i] }
    }
}
