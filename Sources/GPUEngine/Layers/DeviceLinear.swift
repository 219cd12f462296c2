import CUDA
import Engine

/// y = x W^T + b on a device, as `Engine/Layers/Linear.swift` (W (out, in), x (B, in)).
///
/// The input may come in parts along the features (the generator's latent vector and class
/// embedding): each part multiplies its own columns of W, so nothing is concatenated.
public final class DeviceLinear {
    public let layer: Linear
    let parameters: DeviceWeights
    var weight: DeviceTensor { parameters.weight }
    var weightGradient: DeviceTensor { parameters.weightGradient }
    var bias: DeviceTensor? { parameters.bias }
    var biasGradient: DeviceTensor? { parameters.biasGradient }
    private var inputs: [DeviceTensor] = []
    private var output: DeviceTensor?
    private var inputGradients: [DeviceTensor?] = []
    /// Partial sums of the bias gradient (see `addChannelBiasGradient`).
    private var biasScratch: DeviceTensor?

    public init(_ layer: Linear, arena: some ParameterSource) {
        self.layer = layer
        parameters = DeviceWeights(weight: layer.weight, bias: layer.bias, arena: arena)
    }

    var device: any KernelDevice { parameters.device }

    public func forward(_ x: DeviceTensor) throws(CUDAError) -> DeviceTensor { try forward(parts: [x]) }

    /// parts (B, in_i) with the in_i summing to `inFeatures` -> y (B, out), into `destination`
    /// when one is given (a batch's rows of a larger output), else into the layer's own.
    public func forward(parts: [DeviceTensor], into destination: DeviceTensor? = nil) throws(CUDAError) -> DeviceTensor {
        let batch = parts[0].shape[0], (inputs, outputs) = (layer.inFeatures, layer.outFeatures)
        precondition(parts.allSatisfy { $0.shape.count == 2 && $0.shape[0] == batch }
                     && parts.map { $0.shape[1] }.reduce(0, +) == inputs, "Linear expects (B, \(inputs)) in parts")
        precondition(destination.map { $0.shape == [batch, outputs] } ?? true, "Linear writes (B, \(outputs))")
        let y: DeviceTensor
        if let destination { y = destination } else {
            y = try DeviceTensor.reuse(output, shape: [batch, outputs], on: device)
            output = y
        }
        self.inputs = parts
        var column = 0
        for (index, part) in parts.enumerated() {
            // y (B, out) (+)= part (B, in_i) . W[:, column..<column + in_i]^T
            try device.multiply(MatrixProduct(transB: true, m: batch, n: outputs, k: part.shape[1], a: part.address,
                                              lda: part.shape[1], b: weight.address + UInt64(column * 4), ldb: inputs,
                                              beta: index == 0 ? 0 : 1, c: y.address, ldc: outputs))
            column += part.shape[1]
        }
        if let bias {
            try device.launchElementwise("add_channel_bias", count: y.count, [y.argument, bias.argument, .int64(batch),
                                                                              .int32(Int32(outputs)), .int64(1)])
        }
        return y
    }

    /// dy (B, out) -> the parameter gradients (added, when `parameterGradients`) and the
    /// gradient of each input part whose `inputGradient` is true (nil for the others).
    public func backward(_ dy: DeviceTensor, inputGradient: [Bool], parameterGradients: Bool = true) throws(CUDAError) -> [DeviceTensor?] {
        precondition(!inputs.isEmpty, "Linear.backward before forward")
        let batch = dy.shape[0], (inputCount, outputs) = (layer.inFeatures, layer.outFeatures)
        if inputGradients.count != inputs.count { inputGradients = Array(repeating: nil, count: inputs.count) }
        var result: [DeviceTensor?] = []
        var column = 0
        for (index, part) in inputs.enumerated() {
            let width = part.shape[1]
            if parameterGradients {
                // dW[:, columns] (out, in_i) += dy^T (out, B) . part (B, in_i)
                try device.multiply(MatrixProduct(transA: true, m: outputs, n: width, k: batch, a: dy.address, lda: outputs,
                                                  b: part.address, ldb: width, beta: 1,
                                                  c: weightGradient.address + UInt64(column * 4), ldc: inputCount))
            }
            if inputGradient[index] {
                // dpart (B, in_i) = dy (B, out) . W[:, columns] (out, in_i)
                let dx = try DeviceTensor.reuse(inputGradients[index], shape: part.shape, on: device)
                inputGradients[index] = dx
                try device.multiply(MatrixProduct(m: batch, n: width, k: outputs, a: dy.address, lda: outputs,
                                                  b: weight.address + UInt64(column * 4), ldb: inputCount, c: dx.address, ldc: width))
                result.append(dx)
            } else {
                result.append(nil)
            }
            column += width
        }
        if parameterGradients, let biasGradient {
            try device.addChannelBiasGradient(dy, into: biasGradient, batch: batch, channels: outputs, spatial: 1,
                                              scratch: &biasScratch)
        }
        return result
    }
}
