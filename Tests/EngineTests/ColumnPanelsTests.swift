@testable import Engine
import NumericTestSupport
import Testing

/// The columns path with its Float products by `PanelKernel` (`ColumnPanels.swift`): im2col
/// writing panels, and the convolutions' passes against the same passes by OpenBLAS (a context
/// without a panel kernel), each kernel this CPU runs. The direct sums and finite differences
/// of ConvolutionTests check the default context, which takes the panels where grids suit.
@Suite struct ColumnPanelsTests {
    /// The im2col geometry of `images` images of a case's input.
    func geometry(_ c: ConvCase, images: Int) -> ConvGeometry {
        ConvGeometry(batch: images, channels: c.inChannels, height: c.height, width: c.width,
                     kernelHeight: c.kernel, kernelWidth: c.kernel, stride: c.stride, padding: c.padding,
                     gridHeight: (c.height + 2 * c.padding - c.kernel) / c.stride + 1,
                     gridWidth: (c.width + 2 * c.padding - c.kernel) / c.stride + 1)
    }

    /// The panel layout holds the row-major matrix's values: column q of row r at panel q / 16.
    @Test(arguments: [
        ConvCase(inChannels: 3, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 32, width: 32),  // 16 wide
        ConvCase(inChannels: 2, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 16, width: 16),  // 8 wide
        ConvCase(inChannels: 5, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 8, width: 8),    // 4 wide
        ConvCase(inChannels: 3, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 64, width: 64),  // 32 wide
        ConvCase(inChannels: 1, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 8, width: 32),   // 4 x 16
        ConvCase(inChannels: 7, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 32, width: 16),  // 16 x 8
        ConvCase(inChannels: 3, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 16, width: 8),   // 8 x 4
        ConvCase(inChannels: 2, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 8, width: 48),   // 24 wide
        ConvCase(inChannels: 2, outChannels: 1, kernel: 3, stride: 1, padding: 1, height: 4, width: 8),    // any other
    ])
    func im2colPanelsHoldTheRows(_ c: ConvCase) {
        let images = 3
        let g = geometry(c, images: images)
        let x = randomTensor([images, c.inChannels, c.height, c.width], seed: 5)
        let (k, n) = (g.patchSize, g.columnCount)
        #expect(n % 16 == 0)
        let rows = Tensor(zeros: [k * n]), panels = Tensor(zeros: [PanelKernel.packedCount(k: k, n: n)])
        im2col(rows.data, x.data, g, parallel: false)
        im2col(panels.data, x.data, g, parallel: true, layout: .panels)
        // The DCGAN geometry's own kernel (PanelIm2col.c) where it applies: here for all but the
        // 24-wide grid (its panels straddle grid rows) and the 3 x 3 kernel.
        #expect(g.hasPanelIm2colKernel == (c.kernel == 4 && c.width != 48))
        var wrong = 0
        for r in 0..<k {
            for q in 0..<n where panels[(q / 16) * 16 * k + r * 16 + q % 16] != rows[r * n + q] { wrong += 1 }
        }
        #expect(wrong == 0, "\(c.testDescription): \(wrong) of \(k * n) values misplaced")
    }

    /// `patchPanels` holds im2col's matrix transposed: row q (a grid cell), column p (channel c,
    /// tap kh * 4 + kw) at panel c, lane p % 16.
    @Test(arguments: [
        ConvCase(inChannels: 3, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 8, width: 8),
        ConvCase(inChannels: 2, outChannels: 1, kernel: 4, stride: 2, padding: 1, height: 32, width: 16),
        ConvCase(inChannels: 2, outChannels: 1, kernel: 4, stride: 1, padding: 2, height: 5, width: 3),   // any stride
    ])
    func patchPanelsHoldTheTransposedColumns(_ c: ConvCase) {
        let images = 2
        let g = geometry(c, images: images)
        let x = randomTensor([images, c.inChannels, c.height, c.width], seed: 6)
        let (k, n) = (g.patchSize, g.columnCount)
        let rows = Tensor(zeros: [k * n]), panels = Tensor(zeros: [n * k])
        im2col(rows.data, x.data, g, parallel: false)
        patchPanels(panels.data, x.data, g)
        var wrong = 0
        for p in 0..<k {
            for q in 0..<n where panels[(p / 16) * 16 * n + q * 16 + p % 16] != rows[p * n + q] { wrong += 1 }
        }
        #expect(wrong == 0, "\(c.testDescription): \(wrong) of \(k * n) values misplaced")
        #expect(suitsPatchPanels(g) == (c.inChannels >= 2))
    }

    /// The kernels the columns path takes here (AVX-512's only: `columnPanels`).
    static let kernels = PanelKernel.avx512.isAvailable ? [PanelKernel.avx512] : []

    /// A shape's layer in a context with `kernel` (or OpenBLAS): the output, then dx, dW, db.
    func pass<Layer: Module>(_ kernel: PanelKernel?, _ make: () -> Layer, x: Tensor,
                             forward: (Layer) -> Tensor, backward: (Layer, Tensor) -> Tensor?) -> [[Float]] {
        let layer = make()
        return ComputeContext(threads: 2, products: .float32, winogradConvolutions: false, panelKernel: kernel).run {
            layer.zeroGradients()
            let y = forward(layer)
            let dx = backward(layer, projectionWeights(like: y, seed: 9))
            return [y.values, dx?.values ?? []] + layer.parameters.map(\.grad.values)
        }
    }

    func expectAgree(_ label: String, _ panels: [[Float]], _ openBLAS: [[Float]]) {
        for (name, (a, b)) in zip(["y", "dx", "dW", "db"], zip(panels, openBLAS)) {
            #expect(a.count == b.count)
            let scale = b.map(abs).max() ?? 0
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 * Swift.max(scale, 1), "\(label) \(name): \(worst) apart at scale \(scale)")
        }
    }

    // Channel counts around the tiles (12 rows) and grids of 16, 64 and 128 cells; 9 images, so
    // that each thread works through more than one image and the panels cross image bounds.
    static let cases = [
        ConvCase(inChannels: 3, outChannels: 20, kernel: 4, stride: 2, padding: 1, height: 8, width: 8),
        ConvCase(inChannels: 16, outChannels: 13, kernel: 4, stride: 2, padding: 1, height: 16, width: 16),
        ConvCase(inChannels: 1, outChannels: 32, kernel: 4, stride: 2, padding: 1, height: 16, width: 32),
        ConvCase(inChannels: 4, outChannels: 7, kernel: 3, stride: 1, padding: 1, height: 4, width: 4),
    ]

    @Test(.enabled(if: !kernels.isEmpty, "the columns path takes the panel kernel only with AVX-512"), arguments: cases)
    func convolutionAgreesWithOpenBLAS(_ c: ConvCase) {
        let x = randomTensor([9, c.inChannels, c.height, c.width], seed: 3)
        let make = {
            let layer = Conv2d("conv", inChannels: c.inChannels, outChannels: c.outChannels, kernelSize: c.kernel,
                               stride: c.stride, padding: c.padding)
            layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 1))
            layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 2))
            return layer
        }
        let reference = pass(nil, make, x: x, forward: { $0.forward(x) }, backward: { $0.backward($1) })
        for kernel in Self.kernels {
            expectAgree("Conv2d \(c.testDescription), \(kernel)", pass(kernel, make, x: x, forward: { $0.forward(x) },
                                                                        backward: { $0.backward($1) }), reference)
        }
    }

    @Test(.enabled(if: !kernels.isEmpty, "the columns path takes the panel kernel only with AVX-512"), arguments: cases)
    func transposedConvolutionAgreesWithOpenBLAS(_ c: ConvCase) {
        // The adjoint: input with the convolution's output channels and grid.
        let grid = geometry(c, images: 9)
        let x = randomTensor([9, c.outChannels, grid.gridHeight, grid.gridWidth], seed: 4)
        let make = {
            let layer = ConvTranspose2d("up", inChannels: c.outChannels, outChannels: c.inChannels, kernelSize: c.kernel,
                                        stride: c.stride, padding: c.padding)
            layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 5))
            layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: 6))
            return layer
        }
        let forward = { (layer: ConvTranspose2d) in layer.forward(x, algorithm: .columns) }
        let reference = pass(nil, make, x: x, forward: forward, backward: { $0.backward($1) })
        for kernel in Self.kernels {
            expectAgree("ConvTranspose2d \(c.testDescription), \(kernel)",
                        pass(kernel, make, x: x, forward: forward, backward: { $0.backward($1) }), reference)
        }
    }

    /// Weights changed in place between passes (as Adam does) are seen: the tiles are packed
    /// afresh each pass, never kept from the last.
    @Test(.enabled(if: !kernels.isEmpty, "the columns path takes the panel kernel only with AVX-512"))
    func weightsChangedInPlaceAreSeen() {
        let layer = Conv2d("conv", inChannels: 2, outChannels: 12, kernelSize: 4, stride: 2, padding: 1)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: 7))
        let x = randomTensor([2, 2, 8, 8], seed: 8)
        let context = ComputeContext(threads: 1, products: .float32, winogradConvolutions: false, panelKernel: Self.kernels[0])
        let before = context.run { layer.forward(x).values }
        for i in 0..<layer.weight.value.count { layer.weight.value[i] *= 2 }
        let after = context.run { layer.forward(x).values }
        let bias = layer.bias!.value[0]   // zero: initialised so
        #expect(bias == 0)
        expectClose(after, before.map { 2 * $0 }, "doubled weights")
    }
}
