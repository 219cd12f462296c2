@testable import Engine
import NumericTestSupport
import Testing

/// Training's Winograd paths (`ComputeContext.winogradConvolutions`): the 4/2/1 convolution's
/// forward by F(4x4, 2x2) on its space-to-depth phases (`Conv2d+Winograd.swift`) and its input
/// gradient as a Winograd transposed convolution of dy; the transposed convolution's forward
/// and its input gradient the other way round. Each checked against the direct sums in Double
/// (ConvolutionTests' references), the columns path, and finite differences; the weight
/// transforms against G g G^T in Double.
///
/// Tolerance as WinogradTransposedConvolutionTests': F(4, 2)'s constants (up to 8 and 1/6) round
/// to ~1e-6 of the outputs' largest magnitude; a wrong tap or phase is off by ~1e-1 of it.
@Suite struct WinogradTrainingTests {
    let winograd = ComputeContext(threads: 2, products: .float32, winogradConvolutions: true)
    let columns = ComputeContext(threads: 2, products: .float32, winogradConvolutions: false)

    func expectNear(_ actual: [Float], _ expected: [Float], _ label: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
        expectWinogradNear(actual, expected, label, sourceLocation: sourceLocation)
    }

    typealias Shape = WinogradTransposedConvolutionTests.Shape

    /// Input sizes of the convolution (its output is half as tall and wide).
    static let shapes = [
        Shape(batch: 3, inChannels: 16, outChannels: 32, height: 8, width: 8),    // one tile an image
        Shape(batch: 5, inChannels: 32, outChannels: 16, height: 16, width: 8),   // oblong, fewer outputs than inputs
        Shape(batch: 2, inChannels: 16, outChannels: 48, height: 16, width: 16),  // four tiles an image, odd vector count
    ]

    func convolution(_ s: Shape, seed: UInt64, bias: Bool = true) -> Conv2d {
        let conv = Conv2d("conv", inChannels: s.inChannels, outChannels: s.outChannels, kernelSize: 4, stride: 2,
                          padding: 1, bias: bias)
        conv.weight.value.copy(from: randomTensor(conv.weight.shape, seed: seed))
        conv.bias?.value.copy(from: randomTensor(conv.bias!.shape, seed: seed + 1))
        return conv
    }

    /// The transposed convolution whose input is `s`'s output: (Cout, H/2, W/2) -> (Cin, H, W).
    func upsampler(_ s: Shape, seed: UInt64) -> ConvTranspose2d {
        let up = ConvTranspose2d("up", inChannels: s.outChannels, outChannels: s.inChannels, kernelSize: 4, stride: 2,
                                 padding: 1)
        up.weight.value.copy(from: randomTensor(up.weight.shape, seed: seed))
        up.bias!.value.copy(from: randomTensor(up.bias!.shape, seed: seed + 1))
        return up
    }

    @Test(arguments: shapes)
    func convolutionForwardMatchesTheDirectSum(_ s: Shape) {
        #expect(WinogradStridedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, inChannels: s.inChannels,
                                                   outChannels: s.outChannels, height: s.height, width: s.width))
        for bias in [true, false] {
            let conv = convolution(s, seed: 11, bias: bias)
            let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 13)
            let y = winograd.run { conv.forward(x) }
            #expect(y.shape == [s.batch, s.outChannels, s.height / 2, s.width / 2])
            let expected = directConvolution(x, weight: conv.weight.value, bias: conv.bias?.value, stride: 2, padding: 1)
            expectNear(y.values, expected, "Winograd convolution \(s.testDescription), bias \(bias)")
        }
    }

    @Test(arguments: shapes)
    func transposedForwardMatchesTheDirectSum(_ s: Shape) {
        let up = upsampler(s, seed: 21)
        let x = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 23)
        let y = winograd.run { up.forward(x) }   // the context's choice: Winograd
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        expectNear(y.values, expected, "Winograd transposed convolution \(s.testDescription)")
    }

    /// dx, then the parameters' gradients (dW, db) of a fresh layer from `make` after `pass`
    /// (its forward, then its backward, returning dx) in `context`.
    func gradients<Layer: Module>(_ context: ComputeContext, _ make: () -> Layer,
                                  pass: (Layer) -> Tensor) -> (dx: [Float], parameters: [[Float]]) {
        let layer = make()
        return context.run {
            layer.zeroGradients()
            let dx = pass(layer)
            return (dx.values, layer.parameters.map(\.grad.values))
        }
    }

    /// Backward in a Winograd context (the input and weight gradients by Winograd, the bias's a
    /// plain sum) against the columns context's: each near.
    func expectGradientsAgree<Layer: Module>(_ s: Shape, _ make: () -> Layer,
                                             pass: (Layer) -> Tensor) -> [Float] {
        let (fast, exact) = (gradients(winograd, make, pass: pass), gradients(columns, make, pass: pass))
        expectNear(fast.dx, exact.dx, "dx \(s.testDescription)")
        for (name, (a, b)) in zip(["dW", "db"], zip(fast.parameters, exact.parameters)) {
            expectNear(a, b, "\(name) \(s.testDescription)")
        }
        return fast.dx
    }

    @Test(arguments: shapes)
    func convolutionGradientsAgreeWithColumns(_ s: Shape) {
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 33)
        let dy = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 35)
        _ = expectGradientsAgree(s, { convolution(s, seed: 31) }) { conv in
            _ = conv.forward(x)
            return conv.backward(dy)!
        }
    }

    @Test(arguments: shapes)
    func transposedGradientsAgreeWithColumns(_ s: Shape) {
        let x = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 43)
        let dy = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 45)
        let dx = expectGradientsAgree(s, { upsampler(s, seed: 41) }) { up in
            _ = up.forward(x)
            return up.backward(dy)!
        }
        // Only the input gradient asked for (G's first upsampler in the G step asks for both;
        // a frozen layer would ask for this alone).
        let up = upsampler(s, seed: 41)
        let alone = winograd.run { () -> [Float] in
            _ = up.forward(x)
            return up.backward(dy, parameterGradients: false)!.values
        }
        #expect(alone == dx)
    }

    /// The products of the Winograd passes by OpenBLAS and by each `PanelKernel` this CPU runs
    /// (the transformed weights then written as its packed panels): forward, input and weight
    /// gradients of both layers as the columns path's, on the shape with an odd number of
    /// vectors (48 channels: three panels) and four tiles an image.
    @Test func everyKernelOfTheProductsAgreesWithColumns() {
        let s = Self.shapes[2]
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 63)
        let dy = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 65)
        let exact = gradients(columns, { convolution(s, seed: 61) }) { conv in _ = conv.forward(x); return conv.backward(dy)! }
        let exactUp = gradients(columns, { upsampler(s, seed: 67) }) { up in _ = up.forward(dy); return up.backward(x)! }
        let kernels: [PanelKernel?] = [nil] + PanelKernel.floatKernels.filter(\.isAvailable)
        let forward = columns.run { convolution(s, seed: 61).forward(x) }.values
        for kernel in kernels {
            let context = ComputeContext(threads: 2, products: .float32, winogradConvolutions: true, panelKernel: kernel)
            let name = kernel.map { "\($0)" } ?? "OpenBLAS"
            let conv = gradients(context, { convolution(s, seed: 61) }) { conv in _ = conv.forward(x); return conv.backward(dy)! }
            let up = gradients(context, { upsampler(s, seed: 67) }) { up in _ = up.forward(dy); return up.backward(x)! }
            for (label, fast, slow) in [("convolution", conv, exact), ("transposed", up, exactUp)] {
                expectNear(fast.dx, slow.dx, "\(name): \(label) dx")
                expectNear(fast.parameters[0], slow.parameters[0], "\(name): \(label) dW")
            }
            expectNear(context.run { convolution(s, seed: 61).forward(x) }.values, forward, "\(name) forward")
        }
    }

    /// A transposed convolution's transformed weights serve sampling (row-major products) and
    /// training (packed panels where the CPU has a `PanelKernel`): switching between the two
    /// transforms them again, in either order, and each pass reads its own layout.
    @Test func samplingAndTrainingLayoutsAlternate() {
        let up = ConvTranspose2d("up", inChannels: 16, outChannels: 32, kernelSize: 4, stride: 2, padding: 1)
        up.weight.value.copy(from: randomTensor(up.weight.shape, seed: 71))
        up.bias!.value.copy(from: randomTensor(up.bias!.shape, seed: 72))
        let x = randomTensor([3, 16, 4, 8], seed: 73)
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        let planes = { (sampled: ChannelsLast) -> [Float] in   // (B, H, W, padded C) back to (B, C, H, W)
            let (b, h, w, c) = (3, 8, 16, 32), stride = sampled.values.shape[3]
            return (0..<(b * c * h * w)).map { i in
                let (image, channel, pixel) = (i / (c * h * w), i / (h * w) % c, i % (h * w))
                return sampled.values.values[((image * h * w) + pixel) * stride + channel]
            }
        }
        for _ in 0..<2 {
            let sampled = winograd.run { up.sample(.planes(x)).activations }
            expectNear(planes(sampled), expected, "sampling's layout")
            expectNear(winograd.run { up.forward(x) }.values, expected, "training's layout")
        }
    }

    @Test func gradientsMatchFiniteDifferences() {
        let s = Self.shapes[0]
        let conv = convolution(s, seed: 51)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 53)
        winograd.run {
            checkLayerGradients(conv, input: x, seed: 55, maxElements: 40) { conv.forward(x) } backward: { conv.backward($0) }

            let up = upsampler(s, seed: 57)
            let small = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 59)
            checkLayerGradients(up, input: small, seed: 61, maxElements: 40) { up.forward(small) } backward: { up.backward($0) }
        }
    }

    /// Many images of many channels: 600 tiles, so two slices of the batch (at most 512 tiles
    /// each), each split over the threads.
    @Test func manyImagesAgreeWithColumns() {
        let s = Shape(batch: 150, inChannels: 64, outChannels: 16, height: 16, width: 16)
        #expect(s.batch * 4 > WinogradTransposedConvolution.wholeBatchTiles)
        let conv = convolution(s, seed: 71)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 73)
        let dy = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 79)
        func weightGradient(_ context: ComputeContext) -> [Float] {
            context.run {
                _ = conv.forward(x)
                conv.zeroGradients()
                conv.backward(dy, inputGradient: false)
                return conv.weight.grad.values
            }
        }
        expectNear(winograd.run { conv.forward(x).values }, columns.run { conv.forward(x).values }, "convolution")
        expectNear(weightGradient(winograd), weightGradient(columns), "weight gradient over two slices")
        let up = upsampler(s, seed: 75)
        let small = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 77)
        expectNear(winograd.run { up.forward(small).values }, columns.run { up.forward(small).values }, "transposed")
    }

    /// The weight gradient's products go by blocks (`GradientBlock`) where their results
    /// outnumber their operands: D's 128 -> 256 layer and G's 256 -> 128 at batch 64, not the
    /// 64 <-> 128 layers at 16 x 16 (four tiles an image), nor a slice of 512 tiles of the test
    /// above.
    @Test func weightGradientBlocksWhereTheResultsOutweighTheOperands() {
        typealias Block = WinogradStridedConvolution.GradientBlock
        #expect(Block.pays(outChannels: 256, depth: 4 * 128, tiles: 64))
        #expect(!Block.pays(outChannels: 128, depth: 4 * 64, tiles: 256))
        #expect(!Block.pays(outChannels: 16, depth: 4 * 64, tiles: 512))
        #expect(!Block.pays(outChannels: 256, depth: 4 * 16 + 16, tiles: 1), "columns in whole blocks of 64 only")
    }

    /// The weight gradient reads the transforms that the pass before it left (`TransformedImages`:
    /// D's forward's of x, G's input gradient's of dy) only where they are of its own images: a
    /// backward of the transposed convolution after one that made only its input gradient, with
    /// dy's values changed in place between, transforms dy afresh; the convolution's weight
    /// gradient after another forward of the same tensor with other values (by bfloat16 columns,
    /// which leaves no transforms) is of those values.
    @Test func transformsLeftByAPassAreReadOnlyForTheirOwnImages() {
        let s = Self.shapes[0]
        let x = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 81)
        let dy = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 83)
        let other = randomTensor(dy.shape, seed: 85)
        func upWeightGradient(_ context: ComputeContext, changingDy: Bool) -> [Float] {
            let up = upsampler(s, seed: 87)
            let gradient = Tensor(zeros: dy.shape)
            gradient.copy(from: dy)
            return context.run {
                _ = up.forward(x)
                up.backward(gradient, parameterGradients: false)
                if changingDy { gradient.copy(from: other) }
                up.zeroGradients()
                up.backward(gradient, inputGradient: false)
                return up.weight.grad.values
            }
        }
        let up = upsampler(s, seed: 87)
        let expected = columns.run { () -> [Float] in
            _ = up.forward(x)
            up.zeroGradients()
            up.backward(other, inputGradient: false)
            return up.weight.grad.values
        }
        expectNear(upWeightGradient(winograd, changingDy: true), expected, "transposed dW after dy changed")

        let conv = convolution(s, seed: 89)
        let first = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 91)
        let second = randomTensor(first.shape, seed: 93)
        let convDy = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 95)
        let exact = columns.run { () -> [Float] in
            _ = conv.forward(second)
            conv.zeroGradients()
            conv.backward(convDy, inputGradient: false)
            return conv.weight.grad.values
        }
        let fast = winograd.run { () -> [Float] in
            _ = conv.forward(first)
            first.copy(from: second)  // the same tensor, other values
            _ = conv.forward(first, bfloat16: true)
            conv.zeroGradients()
            conv.backward(convDy, inputGradient: false)
            return conv.weight.grad.values
        }
        expectNear(fast, exact, "dW after a second forward")
    }

    /// A weight changed in place (Adam's step) is seen by the next pass, both transforms.
    @Test func seesWeightsChangedInPlace() {
        let s = Self.shapes[0]
        let conv = convolution(s, seed: 81)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 83)
        let dy = randomTensor([s.batch, s.outChannels, s.height / 2, s.width / 2], seed: 85)
        winograd.run {
            _ = conv.forward(x)
            _ = conv.backward(dy)
            conv.weight.value.data[5] += 0.5
            let y = conv.forward(x)
            expectNear(y.values, directConvolution(x, weight: conv.weight.value, bias: conv.bias!.value, stride: 2, padding: 1),
                       "forward after a weight changed")
            let dx = conv.backward(dy)!.values
            expectNear(dx, directTransposedConvolution(dy, weight: conv.weight.value, bias: nil, stride: 2, padding: 1),
                       "dx after a weight changed")
        }
    }

    /// Layers that read or make an image (1 or 3 channels), and other geometries, keep columns:
    /// the same values to the bit as a context without Winograd.
    @Test func otherLayersKeepColumns() {
        let image = Conv2d("first", inChannels: 1, outChannels: 16, kernelSize: 4, stride: 2, padding: 1)
        image.weight.value.copy(from: randomTensor(image.weight.shape, seed: 91))
        let x = randomTensor([2, 1, 8, 8], seed: 93)
        #expect(winograd.run { image.forward(x).values } == columns.run { image.forward(x).values })
        let dy = randomTensor([2, 16, 4, 4], seed: 95)
        #expect(winograd.run { image.backward(dy)!.values } == columns.run { image.backward(dy)!.values })
        #expect(!WinogradStridedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, inChannels: 16, outChannels: 16,
                                                    height: 12, width: 8))
        #expect(!WinogradStridedConvolution.applies(kernelSize: 3, stride: 2, padding: 1, inChannels: 16, outChannels: 16,
                                                    height: 8, width: 8))
        #expect(!WinogradStridedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, inChannels: 20, outChannels: 16,
                                                    height: 8, width: 8))
    }

    /// G, the filter transform for the points 0, 1, -1, 2 and infinity, scaled as
    /// `WinogradTransposedConvolution.filterTransform` documents.
    static let g: [[Double]] = [[0.5, 0], [0.5, 0.5], [1.0 / 6, -1.0 / 6], [1.0 / 6, 1.0 / 3], [0, 1]]

    /// (G g G^T)[a][b] in Double for a 2x2 filter g[p][q].
    static func transformed(_ taps: [[Double]]) -> [Double] {
        (0..<25).map { xi in
            let (a, b) = (xi / 5, xi % 5)
            var total = 0.0
            for p in 0..<2 { for q in 0..<2 { total += g[a][p] * taps[p][q] * g[b][q] } }
            return total
        }
    }

    /// Both weight transforms write `PanelKernel`'s packed panels themselves (training's layout
    /// where the CPU has a panel kernel): the same values as packing their row-major matrices.
    @Test func weightTransformsWriteThePackedPanels() {
        let (cin, cout) = (16, 48)
        let w = randomTensor([cout, cin, 4, 4], seed: 121)
        for strided in [true, false] {
            let count = strided ? WinogradStridedConvolution.transformedWeightCount(inChannels: cin, outChannels: cout)
                : WinogradTransposedConvolution.transformedWeightCount(inChannels: cin, outChannels: cout)
            let (rows, packed) = (Tensor(zeros: [count]), Tensor(zeros: [count]))
            let (matrices, k) = strided ? (25, 4 * cin) : (100, cin)
            for (u, isPacked) in [(rows, false), (packed, true)] {
                if strided {
                    WinogradStridedConvolution.transformWeights(w.data, inChannels: cin, outChannels: cout, packed: isPacked, into: u.data)
                } else {
                    WinogradTransposedConvolution.transformWeights(w.data, inChannels: cin, outChannels: cout, packed: isPacked, into: u.data)
                }
            }
            let repacked = Tensor(zeros: [count])
            PanelKernel.pack(rows.data, matrices: matrices, k: k, n: cout, into: repacked.data)
            #expect(packed.values == repacked.values, "\(strided ? "convolution" : "transposed") transform's panels")
            #expect(packed.values != rows.values)
        }
    }

    @Test func convolutionWeightTransformIsGgGt() {
        let (cin, cout) = (16, 32)
        let w = randomTensor([cout, cin, 4, 4], seed: 101)
        let u = Tensor(zeros: [WinogradStridedConvolution.transformedWeightCount(inChannels: cin, outChannels: cout)])
        WinogradStridedConvolution.transformWeights(w.data, inChannels: cin, outChannels: cout, into: u.data)
        var worst = 0.0
        for o in [0, 17, 31] { for c in [0, 9, 15] { for r in 0..<2 { for s in 0..<2 {
            let taps = (0..<2).map { p in (0..<2).map { q in Double(w[((o * cin + c) * 4 + 2 * p + r) * 4 + 2 * q + s]) } }
            let expected = Self.transformed(taps)
            for xi in 0..<25 {
                let actual = Double(u[(xi * 4 * cin + (2 * r + s) * cin + c) * cout + o])
                worst = max(worst, abs(actual - expected[xi]))
            }
        } } } }
        #expect(worst < 1e-6, "largest difference \(worst)")
    }

    /// The vectorised transform (output channels in whole vectors) and the one-by-one transform
    /// (the rest) against G g G^T of each phase's taps.
    @Test(arguments: [16, 17])
    func transposedWeightTransformIsGgGt(outChannels cout: Int) {
        let cin = 8
        let w = randomTensor([cin, cout, 4, 4], seed: 111)
        let matrix = cin * cout
        let u = Tensor(zeros: [WinogradTransposedConvolution.transformedWeightCount(inChannels: cin, outChannels: cout)])
        WinogradTransposedConvolution.transformWeights(w.data, inChannels: cin, outChannels: cout, into: u.data)
        var worst = 0.0
        for c in [0, 5, 7] { for o in [0, 3, cout - 1] { for py in 0..<2 { for px in 0..<2 {
            let taps = (0..<2).map { a in (0..<2).map { b in
                let kh = WinogradTransposedConvolution.kernelIndex(phase: py, tap: a)
                let kw = WinogradTransposedConvolution.kernelIndex(phase: px, tap: b)
                return Double(w[((c * cout + o) * 4 + kh) * 4 + kw])
            } }
            let expected = Self.transformed(taps)
            for xi in 0..<25 {
                let actual = Double(u[((py * 2 + px) * 25 + xi) * matrix + c * cout + o])
                worst = max(worst, abs(actual - expected[xi]))
            }
        } } } }
        #expect(worst < 1e-6, "largest difference \(worst)")
    }
}
