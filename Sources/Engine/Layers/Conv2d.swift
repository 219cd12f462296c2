/// 2-D convolution, NCHW. Weight (Cout, Cin, KH, KW) and bias (Cout) as in PyTorch.
///
/// The batch is split over the threads, and each thread works through its images in chunks
/// of n (see `ConvolutionScratch`): im2col of the chunk into cols (Cin*KH*KW, n*OH*OW), one
/// GEMM W (Cout, Cin*KH*KW) . cols -> (Cout, n*OH*OW), the bias, and a swap of the two leading
/// axes into y (n, Cout, OH, OW). The backward recomputes each chunk's cols (cheaper than
/// keeping the whole batch's, which does not fit in cache). With bfloat16 products in the
/// DCGAN geometry (4 x 4, stride 2, padding 1), the forward's and the weight gradient's
/// products take the columns packed straight from x instead (`BFloat16Kernel.multiplyColumns`).
/// In contexts that ask for Winograd (`ComputeContext.winogradConvolutions`), the forward, the
/// weight gradient and the input gradient of that geometry multiply by F(4x4, 2x2) instead
/// (`Conv2d+Winograd.swift`; the input gradient is a transposed convolution of dy,
/// `ConvTranspose2d+Winograd.swift`).
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Int, stride: Int, padding: Int

    private var input: Tensor?
    private var output: Tensor?
    private var inputGrad: Tensor?
    private let scratch = ConvolutionScratch()
    /// The weights packed for the bfloat16 kernels for a pass's products, when its context asks for bfloat16 (`BLAS`).
    private let packedWeights = PackedLeftOperand()
    /// The weights transformed for the Winograd forward, and for the Winograd input gradient.
    private let winogradWeights = TransformedWeights(), winogradGradientWeights = TransformedWeights()
    /// W, or W^T for the input gradient, packed for the panel kernel's products.
    private let weightTiles = LeftOperandTiles()

    public init(_ name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter("\(name).weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter("\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func outputSize(_ inputSize: Int) -> Int { (inputSize + 2 * padding - kernelSize) / stride + 1 }

    /// The geometry of `images` images of input `x`.
    private func geometry(_ x: Tensor, images: Int) -> ConvGeometry {
        ConvGeometry(batch: images, channels: inChannels, height: x.shape[2], width: x.shape[3],
                     kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride, padding: padding,
                     gridHeight: outputSize(x.shape[2]), gridWidth: outputSize(x.shape[3]))
    }

    /// `bfloat16`: the GEMMs with bfloat16 operands (`BFloat16GEMM`, where the CPU has it), for
    /// inference that tolerates ~1e-3 of relative error (generation's judge); training and
    /// `synthd eval`'s classifiers keep Float.
    public func forward(_ x: Tensor, bfloat16: Bool = false) -> Tensor {
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "Conv2d expects (B, \(inChannels), H, W), got \(x.shape)")
        let batch = x.shape[0]
        let whole = geometry(x, images: batch)
        precondition(whole.gridHeight > 0 && whole.gridWidth > 0, "Conv2d: input \(x.shape) is smaller than the kernel")
        input = x
        scratch.transformedImages = nil  // the Winograd pass below leaves x's, for the weight gradient
        let y = Tensor.reuse(output, shape: [batch, outChannels, whole.gridHeight, whole.gridWidth]); output = y
        if !bfloat16 && takesWinogradForward(x) {
            winogradForward(x, into: y)
            return y
        }
        BLAS.recordFLOPs(m: outChannels, n: whole.columnCount, k: whole.patchSize)

        let gridArea = whole.gridHeight * whole.gridWidth
        let chunk = ConvolutionScratch.imagesPerChunk(columnFloatsPerImage: whole.patchSize * gridArea)
        let maxColumns = Swift.min(chunk, batch) * gridArea
        // In a context whose products go to a bfloat16 kernel (AMX tiles, AVX512-BF16 dot products),
        // the ordinary path below is bfloat16 too, and faster: its columns come packed from x.
        let reduced = bfloat16 && BFloat16GEMM.isAvailable && ComputeContext.current.bfloat16Kernel == nil
        // With bfloat16, room for the packed columns and the converted weights (UInt16s, in Floats).
        let packedFloats = reduced ? (BFloat16GEMM.packedCount(k: whole.patchSize, n: maxColumns) + 1) / 2 : 0
        let convertedFloats = reduced ? (BFloat16GEMM.scratchCount(m: outChannels, k: whole.patchSize) + 1) / 2 : 0
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [whole.patchSize * maxColumns, outChannels * maxColumns,
                                               packedFloats, convertedFloats])
        let inputImage = inChannels * x.shape[2] * x.shape[3], outputImage = outChannels * gridArea
        let packedWeights = reduced ? nil : packedWeights.pack(transA: false, m: outChannels, k: whole.patchSize,
                                                                a: weight.value.data, lda: whole.patchSize)
        // With bfloat16 products in the DCGAN geometry, the columns are packed from x itself (no im2col).
        let columnKernel = reduced ? nil : BFloat16Kernel.forColumns(of: geometry(x, images: Swift.min(chunk, batch)),
                                                                    m: outChannels, transposed: false)
        // Float products: im2col writes the kernel's panels, the product y and its bias.
        let panels = bfloat16 ? nil : ComputeContext.current.columnPanels(gridCells: gridArea)
        let weightTiles = panels.map {
            self.weightTiles.pack(transA: false, weight.value.data, lda: whole.patchSize, m: outChannels, k: whole.patchSize, for: $0)
        }
        Parallel.forParts(batch) { part, images in
            let cols = pointers[part, 0], ycm = pointers[part, 1]
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                let g = geometry(x, images: n)
                let columns = g.columnCount
                if let panels, let weightTiles {
                    im2col(cols, x.data + start * inputImage, g, parallel: false, layout: .panels)
                    panels.multiply(aTiles: true, halves: weightTiles.halves, m: outChannels, n: columns, k: g.patchSize,
                                    a: weightTiles.floats, lda: 0,
                                    packed: cols, c: y.data + start * outputImage, ldc: gridArea,
                                    columnsPerImage: gridArea, imageStride: outputImage, bias: bias?.value.data)
                    continue
                }
                // ycm (Cout, n*OH*OW) = W (Cout, Cin*K*K) . cols (Cin*K*K, n*OH*OW), plus the bias
                if reduced {
                    im2col(cols, x.data + start * inputImage, g, parallel: false)
                    let packed = UnsafeMutableRawPointer(pointers[part, 2]).assumingMemoryBound(to: UInt16.self)
                    let converted = UnsafeMutableRawPointer(pointers[part, 3]).assumingMemoryBound(to: UInt16.self)
                    BFloat16GEMM.pack(cols, ldb: columns, k: g.patchSize, n: columns, into: packed)
                    BFloat16GEMM.multiply(m: outChannels, n: columns, k: g.patchSize, a: weight.value.data,
                                          lda: g.patchSize, packed: packed, c: ycm, ldc: columns, scratch: converted)
                    if let bias {
                        for o in 0..<outChannels {
                            let row = ycm + o * columns, value = bias.value[o]
                            for i in 0..<columns { row[i] += value }
                        }
                    }
                } else {
                    if let bias {
                        for o in 0..<outChannels { (ycm + o * columns).update(repeating: bias.value[o], count: columns) }
                    }
                    if let columnKernel {
                        columnKernel.multiplyColumns(packedA: packedWeights, a: weight.value.data, lda: g.patchSize,
                                                     image: x.data + start * inputImage, geometry: g, transposedColumns: false,
                                                     m: outChannels, beta: bias == nil ? 0 : 1, c: ycm, ldc: columns)
                    } else {
                        im2col(cols, x.data + start * inputImage, g, parallel: false)
                        BLAS.gemmSerial(m: outChannels, n: columns, k: g.patchSize,
                                        a: weight.value.data, lda: g.patchSize, packedA: packedWeights, b: cols, ldb: columns,
                                        beta: bias == nil ? 0 : 1, c: ycm, ldc: columns)
                    }
                }
                swapLeadingAxes(y.data + start * outputImage, ycm, a: outChannels, b: n, inner: gridArea, parallel: false)
            }
        }
        return y
    }

    /// Whether x's convolution (and its weight gradient) is computed by Winograd in this context.
    private func takesWinogradForward(_ x: Tensor) -> Bool {
        ComputeContext.current.winogradConvolutions
            && WinogradStridedConvolution.applies(kernelSize: kernelSize, stride: stride, padding: padding,
                                                  inChannels: inChannels, outChannels: outChannels,
                                                  height: x.shape[2], width: x.shape[3])
    }

    /// dW += the weight gradient by Winograd; db += dy summed over each channel's maps.
    private func winogradParameterGradients(_ x: Tensor, _ dy: Tensor) {
        WinogradStridedConvolution.weightGradient(x.data, dy.data, batch: x.shape[0], inChannels: inChannels,
                                                  outChannels: outChannels, height: x.shape[2], width: x.shape[3],
                                                  into: weight.grad.data, scratch: scratch)
        if let bias { addChannelSums(of: dy, into: bias.grad) }
    }

    /// y = the convolution of x plus the bias, by Winograd (the shape checked by the caller).
    private func winogradForward(_ x: Tensor, into y: Tensor) {
        let weights = winogradWeights.products(WinogradStridedConvolution.self, of: weight.value,
                                               inChannels: inChannels, outChannels: outChannels).products
        WinogradStridedConvolution.run(x.data, batch: x.shape[0], inChannels: inChannels, outChannels: outChannels,
                                       height: x.shape[2], width: x.shape[3], weights: weights, bias: bias?.value.data,
                                       into: y.data, scratch: scratch)
    }

    /// Whether the input gradient for an output grid of `gridHeight` x `gridWidth` is computed by
    /// Winograd in this context: dx is the transposed convolution of dy with these weights (read
    /// as a transposed convolution's (Cout inputs, Cin outputs): the same memory).
    private func takesWinogradInputGradient(gridHeight: Int, gridWidth: Int) -> Bool {
        ComputeContext.current.winogradConvolutions && inChannels % 16 == 0
            && WinogradTransposedConvolution.applies(kernelSize: kernelSize, stride: stride, padding: padding,
                                                     outChannels: inChannels, height: gridHeight, width: gridWidth)
    }

    /// dx (B, Cin, H, W) = the transposed convolution of dy (B, Cout, H/2, W/2), by Winograd.
    private func winogradInputGradient(_ dy: Tensor, into dx: Tensor) {
        let weights = winogradGradientWeights.products(WinogradTransposedConvolution.self, of: weight.value,
                                                       inChannels: outChannels, outChannels: inChannels).products
        WinogradTransposedConvolution.runWholeBatch(dy.data, batch: dy.shape[0], inChannels: outChannels,
                                                    outChannels: inChannels, height: dy.shape[2], width: dy.shape[3],
                                                    weights: weights, bias: nil, into: dx.data, scratch: scratch)
    }

    /// dy is (B, Cout, OH, OW). Returns dx (B, Cin, H, W) when `inputGradient`, else nil.
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        guard inputGradient || parameterGradients else { return nil }
        let batch = x.shape[0]
        let whole = geometry(x, images: batch)
        let gridArea = whole.gridHeight * whole.gridWidth
        let dx = inputGradient ? Tensor.reuse(inputGrad, shape: x.shape) : nil
        if let dx { inputGrad = dx }
        // dW and db by Winograd where the context asks for it (the forward's shapes), first: it
        // reads x's transforms as the forward left them (`TransformedImages`), which dx's pass
        // would write over. The loop below then makes what is left.
        let winogradParameters = parameterGradients && takesWinogradForward(x)
        if winogradParameters { winogradParameterGradients(x, dy) }
        let parameterGradients = parameterGradients && !winogradParameters
        // dx likewise.
        let winogradInput = inputGradient && takesWinogradInputGradient(gridHeight: whole.gridHeight,
                                                                        gridWidth: whole.gridWidth)
        if let dx, winogradInput { winogradInputGradient(dy, into: dx) }
        let inputGradient = inputGradient && !winogradInput
        guard inputGradient || parameterGradients else { return dx }
        if parameterGradients { BLAS.recordFLOPs(m: outChannels, n: whole.patchSize, k: whole.columnCount) }
        if inputGradient { BLAS.recordFLOPs(m: whole.patchSize, n: whole.columnCount, k: outChannels) }

        let chunk = ConvolutionScratch.imagesPerChunk(columnFloatsPerImage: whole.patchSize * gridArea)
        let maxColumns = Swift.min(chunk, batch) * gridArea
        let parts = Parallel.partCount(batch)
        // Products by the panel kernel: dx's with W^T packed once a pass and dy packed from its
        // NCHW maps; dW's (4 x 4 kernels) with dy in tiles and x's patches in panels. Neither
        // needs dy's channel-major copy.
        let panelKernel = ComputeContext.current.columnPanels(gridCells: gridArea)
        let panels = inputGradient ? panelKernel : nil
        let weightPanels = parameterGradients && suitsPatchPanels(whole) ? panelKernel : nil
        let pointers = scratch.prepare(parts: parts, sizes: [whole.patchSize * maxColumns, outChannels * maxColumns,
                                                             weight.value.count, outChannels,
                                                             panels == nil ? 0 : outChannels * maxColumns,
                                                             weightPanels == nil ? 0 : PanelKernel.tilesCount(m: outChannels,
                                                                                                             k: maxColumns)])
        let inputImage = inChannels * x.shape[2] * x.shape[3], outputImage = outChannels * gridArea
        let packedWeights = inputGradient ? packedWeights.pack(transA: true, m: whole.patchSize, k: outChannels,
                                                               a: weight.value.data, lda: whole.patchSize) : nil
        let transposedWeights = panels.map {
            weightTiles.pack(transA: true, weight.value.data, lda: whole.patchSize, m: whole.patchSize, k: outChannels, for: $0)
        }
        // dW's product takes the columns' transpose packed from x itself where it can (no im2col).
        let columnKernel = BFloat16Kernel.forColumns(of: geometry(x, images: Swift.min(chunk, batch)),
                                                     m: outChannels, transposed: true)
        Parallel.forParts(batch) { part, images in
            let cols = pointers[part, 0], dycm = pointers[part, 1]
            let (dW, db) = pointers.gradientTargets(part: part, weight: weight, bias: bias, zeroPartials: parameterGradients)
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                let g = geometry(x, images: n)
                let columns = g.columnCount
                let dyChunk = dy.data + start * outputImage
                if (parameterGradients && weightPanels == nil) || (inputGradient && panels == nil) {
                    swapLeadingAxes(dycm, dyChunk, a: n, b: outChannels, inner: gridArea, parallel: false)
                }
                if parameterGradients, let weightPanels {
                    // dW (Cout, Cin*16) += dy (Cout, n*OH*OW) . cols^T, the chain going on from dW.
                    weightPanels.addWeightGradient(maps: dyChunk, rows: outChannels, image: x.data + start * inputImage,
                                                   geometry: g, tiles: pointers[part, 5], panels: cols, into: dW)
                    if let db {
                        for plane in 0..<(n * outChannels) { db[plane % outChannels] += sum(dyChunk + plane * gridArea, gridArea) }
                    }
                } else if parameterGradients {
                    // dW (Cout, Cin*K*K) += dycm (Cout, n*OH*OW) . cols^T
                    if let columnKernel {
                        columnKernel.multiplyColumns(packedA: nil, a: dycm, lda: columns, image: x.data + start * inputImage,
                                                     geometry: g, transposedColumns: true, m: outChannels,
                                                     beta: 1, c: dW, ldc: g.patchSize)
                    } else {
                        im2col(cols, x.data + start * inputImage, g, parallel: false)
                        BLAS.gemmSerial(transB: true, m: outChannels, n: g.patchSize, k: columns,
                                        a: dycm, lda: columns, b: cols, ldb: columns,
                                        beta: 1, c: dW, ldc: g.patchSize)
                    }
                    if let db {
                        for o in 0..<outChannels { db[o] += sum(dycm + o * columns, columns) }
                    }
                }
                if let dx, inputGradient {
                    // dcols (Cin*K*K, n*OH*OW) = W^T . dycm, then scattered back to pixels.
                    if let panels, let transposedWeights {
                        let dyPanels = pointers[part, 4]
                        PanelKernel.pack(images: dy.data + start * outputImage, ldb: gridArea, k: outChannels, n: columns,
                                         columnsPerImage: gridArea, imageStride: outputImage, into: dyPanels)
                        panels.multiply(aTiles: true, halves: transposedWeights.halves, m: g.patchSize, n: columns, k: outChannels,
                                        a: transposedWeights.floats,
                                        lda: 0, packed: dyPanels, c: cols, ldc: columns, columnsPerImage: columns,
                                        imageStride: 0, bias: nil)
                    } else {
                        BLAS.gemmSerial(transA: true, m: g.patchSize, n: columns, k: outChannels,
                                        a: weight.value.data, lda: g.patchSize, packedA: packedWeights, b: dycm, ldb: columns,
                                        c: cols, ldc: columns)
                    }
                    col2im(dx.data + start * inputImage, cols, g, parallel: false)
                }
            }
        }
        if parameterGradients {
            pointers.addPartials(slot: 2, into: weight.grad)
            if let bias { pointers.addPartials(slot: 3, into: bias.grad) }
        }
        return dx
    }
}
