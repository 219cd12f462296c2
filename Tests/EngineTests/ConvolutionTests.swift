import Engine
import NumericTestSupport
import Testing

/// Direct convolution by its definition, the independent reference for Conv2d:
/// y[b, o, i, j] = bias[o] + sum_{c, p, q} w[o, c, p, q] * x[b, c, i*s - pad + p, j*s - pad + q].
func directConvolution(_ x: Tensor, weight w: Tensor, bias: Tensor?, stride s: Int, padding pad: Int) -> [Float] {
    let (batch, cin, h, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, k) = (w.shape[0], w.shape[2])
    let oh = (h + 2 * pad - k) / s + 1, ow = (width + 2 * pad - k) / s + 1
    var y = [Float](repeating: 0, count: batch * cout * oh * ow)
    for b in 0..<batch { for o in 0..<cout { for i in 0..<oh { for j in 0..<ow {
        var total = Double(bias?[o] ?? 0)
        for c in 0..<cin { for p in 0..<k { for q in 0..<k {
            let ih = i * s - pad + p, iw = j * s - pad + q
            guard ih >= 0, ih < h, iw >= 0, iw < width else { continue }
            total += Double(w[((o * cin + c) * k + p) * k + q]) * Double(x[((b * cin + c) * h + ih) * width + iw])
        } } }
        y[((b * cout + o) * oh + i) * ow + j] = Float(total)
    } } } }
    return y
}

/// Transposed convolution by scattering each input pixel through the kernel, the
/// independent reference for ConvTranspose2d: y[b, o, i*s - pad + p, j*s - pad + q] += x[b, c, i, j] * w[c, o, p, q].
func directTransposedConvolution(_ x: Tensor, weight w: Tensor, bias: Tensor?, stride s: Int, padding pad: Int) -> [Float] {
    let (batch, cin, h, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (cout, k) = (w.shape[1], w.shape[2])
    let oh = (h - 1) * s - 2 * pad + k, ow = (width - 1) * s - 2 * pad + k
    var y = [Double](repeating: 0, count: batch * cout * oh * ow)
    for b in 0..<batch { for c in 0..<cin { for i in 0..<h { for j in 0..<width {
        let v = Double(x[((b * cin + c) * h + i) * width + j])
        for o in 0..<cout { for p in 0..<k { for q in 0..<k {
            let yi = i * s - pad + p, yj = j * s - pad + q
            guard yi >= 0, yi < oh, yj >= 0, yj < ow else { continue }
            y[((b * cout + o) * oh + yi) * ow + yj] += v * Double(w[((c * cout + o) * k + p) * k + q])
        } } }
    } } } }
    if let bias {
        for b in 0..<batch { for o in 0..<cout { for i in 0..<(oh * ow) { y[(b * cout + o) * oh * ow + i] += Double(bias[o]) } } }
    }
    return y.map(Float.init)
}

struct ConvCase: Sendable, CustomTestStringConvertible {
    var inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, height: Int, width: Int
    var testDescription: String { "\(inChannels)->\(outChannels) k\(kernel) s\(stride) p\(padding) \(height)x\(width)" }
}

let convCases = [
    ConvCase(inChannels: 2, outChannels: 3, kernel: 4, stride: 2, padding: 1, height: 6, width: 6),
    ConvCase(inChannels: 3, outChannels: 2, kernel: 3, stride: 1, padding: 1, height: 5, width: 4),
    ConvCase(inChannels: 1, outChannels: 4, kernel: 2, stride: 1, padding: 0, height: 3, width: 5),
    ConvCase(inChannels: 2, outChannels: 2, kernel: 3, stride: 3, padding: 2, height: 7, width: 6),
    // The reference model's shape, at grid widths that take the SIMD paths of im2col and
    // col2im: 8 and 16 wide (full vectors) and 4 wide (half vectors), as input or as output.
    ConvCase(inChannels: 2, outChannels: 3, kernel: 4, stride: 2, padding: 1, height: 8, width: 16),
    ConvCase(inChannels: 3, outChannels: 2, kernel: 4, stride: 2, padding: 1, height: 4, width: 4),
    ConvCase(inChannels: 1, outChannels: 2, kernel: 4, stride: 2, padding: 1, height: 8, width: 8),
]

@Suite struct Conv2dTests {
    func makeLayer(_ c: ConvCase) -> Conv2d {
        let layer = Conv2d("conv", inChannels: c.inChannels, outChannels: c.outChannels,
                           kernelSize: c.kernel, stride: c.stride, padding: c.padding)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 11))
        layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 12))
        return layer
    }

    @Test(arguments: convCases)
    func forwardMatchesDirectConvolution(_ c: ConvCase) {
        let layer = makeLayer(c)
        let x = randomTensor([2, c.inChannels, c.height, c.width], seed: 13)
        let y = layer.forward(x)
        let expected = directConvolution(x, weight: layer.weight.value, bias: layer.bias!.value,
                                         stride: c.stride, padding: c.padding)
        expectClose(y.values, expected, "Conv2d \(c.testDescription)")
    }

    @Test(arguments: convCases)
    func gradientsMatchFiniteDifferences(_ c: ConvCase) {
        let layer = makeLayer(c)
        let x = randomTensor([2, c.inChannels, c.height, c.width], seed: 14)
        checkLayerGradients(layer, input: x, seed: 15) { layer.forward(x) } backward: { layer.backward($0) }
    }
}

@Suite struct ConvTranspose2dTests {
    func makeLayer(_ c: ConvCase) -> ConvTranspose2d {
        let layer = ConvTranspose2d("up", inChannels: c.inChannels, outChannels: c.outChannels,
                                    kernelSize: c.kernel, stride: c.stride, padding: c.padding)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 21))
        layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 22))
        return layer
    }

    @Test(arguments: convCases)
    func forwardMatchesDirectScatter(_ c: ConvCase) {
        let layer = makeLayer(c)
        let x = randomTensor([2, c.inChannels, c.height, c.width], seed: 23)
        let y = layer.forward(x)
        #expect(y.shape == [2, c.outChannels, layer.outputSize(c.height), layer.outputSize(c.width)])
        let expected = directTransposedConvolution(x, weight: layer.weight.value, bias: layer.bias!.value,
                                                   stride: c.stride, padding: c.padding)
        expectClose(y.values, expected, "ConvTranspose2d \(c.testDescription)")
    }

    @Test(arguments: convCases)
    func gradientsMatchFiniteDifferences(_ c: ConvCase) {
        let layer = makeLayer(c)
        let x = randomTensor([2, c.inChannels, c.height, c.width], seed: 24)
        checkLayerGradients(layer, input: x, seed: 25) { layer.forward(x) } backward: { layer.backward($0) }
    }

    @Test func skippingGradientsLeavesThemUntouched() {
        let layer = makeLayer(convCases[0])
        let x = randomTensor([2, 2, 6, 6], seed: 26)
        let y = layer.forward(x)
        layer.zeroGradients()
        #expect(layer.backward(projectionWeights(like: y, seed: 27), inputGradient: false, parameterGradients: false) == nil)
        #expect(layer.weight.grad.values.allSatisfy { $0 == 0 })
    }
}

/// A batch large enough that each thread works through several chunks (see
/// ConvolutionScratch: 16 images of 16 channels at 16x16 per chunk, 40 images in all), so the
/// per-thread partial gradients and the chunk offsets are exercised.
@Suite struct ChunkedConvolutionTests {
    static let big = ConvCase(inChannels: 16, outChannels: 4, kernel: 4, stride: 2, padding: 1, height: 16, width: 16)

    @Test func conv2dOverManyChunks() {
        let c = Self.big
        let layer = Conv2d("conv", inChannels: c.inChannels, outChannels: c.outChannels,
                           kernelSize: c.kernel, stride: c.stride, padding: c.padding)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 81))
        layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 82))
        let x = randomTensor([40, c.inChannels, c.height, c.width], seed: 83)
        let y = layer.forward(x)
        expectClose(y.values, directConvolution(x, weight: layer.weight.value, bias: layer.bias!.value,
                                                stride: c.stride, padding: c.padding), "chunked Conv2d")
        checkLayerGradients(layer, input: x, seed: 84, maxElements: 40) { layer.forward(x) } backward: { layer.backward($0) }
    }

    @Test func convTranspose2dOverManyChunks() {
        let c = Self.big
        // The adjoint's columns are (Cout*K*K, grid): 16 output channels make them as large.
        let layer = ConvTranspose2d("up", inChannels: c.outChannels, outChannels: c.inChannels,
                                    kernelSize: c.kernel, stride: c.stride, padding: c.padding)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 85))
        layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 86))
        let x = randomTensor([40, c.outChannels, 8, 8], seed: 87)
        let y = layer.forward(x)
        expectClose(y.values, directTransposedConvolution(x, weight: layer.weight.value, bias: layer.bias!.value,
                                                          stride: c.stride, padding: c.padding), "chunked ConvTranspose2d")
        checkLayerGradients(layer, input: x, seed: 88, maxElements: 40) { layer.forward(x) } backward: { layer.backward($0) }
    }
}
