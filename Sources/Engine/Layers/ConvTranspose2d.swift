#if canImport(Glibc)
import Glibc
#endif

/// Transposed 2-D convolution, NCHW. Weight (Cin, Cout, KH, KW) and bias (Cout) as in PyTorch.
/// Output size (H - 1) * stride - 2 * padding + K.
///
/// It is the adjoint of a convolution whose input is this layer's output, so it uses the same
/// im2col geometry with the roles swapped (image = output, grid = input): forward is a GEMM
/// then col2im, backward is im2col then GEMMs (with bfloat16 products in the 4/2/1 geometry,
/// GEMMs whose columns are packed straight from dy). Like `Conv2d`, it works through the batch in
/// cache-sized chunks per thread. For sampling, the 4/2/1 shape of G's upsamplers can take a
/// Winograd forward instead (`ConvTranspose2d+Winograd.swift`: 39% of the multiplications),
/// and `sample` runs it channels-last (`ChannelsLast.swift`). In contexts that ask for Winograd
/// (`ComputeContext.winogradConvolutions`) training's passes take it too: the forward, and the
/// gradients as those of the adjoint convolution (`Conv2d+Winograd.swift`).
public final class ConvTranspose2d: Module {
    /// How `forward` computes: by columns (GEMM then col2im; any shape; training's) or by
    /// Winograd F(4x4, 2x2) on the four stride-2 phases (kernel 4, stride 2, padding 1, sizes
    /// that are multiples of 4, at least 16 output channels; other shapes fall back to
    /// columns), in Float or, `winogradBFloat16`, with bfloat16 products (`BFloat16GEMM`)
    /// where the CPU has them (elsewhere as `winograd`).
    public enum ForwardAlgorithm: Sendable {
        case columns, winograd, winogradBFloat16

        public var isWinograd: Bool { self != .columns }
        /// Whether it multiplies in bfloat16 on this CPU.
        public var usesBFloat16: Bool { self == .winogradBFloat16 && BFloat16GEMM.isAvailable }

        /// What it comes to in the current context: `winogradBFloat16` in a context whose
        /// products go to AMX tiles is `columns`, whose GEMMs then run on the tiles (in
        /// bfloat16 too): sampling 1.6-1.8x the Winograd path's AVX512-BF16 products on a
        /// Sapphire Rapids (docs/training.md); on a CPU whose AVX512-BF16 products do not beat
        /// Float (`BFloat16Payoff`) it is `winograd`. Every other case is itself.
        public var resolved: ForwardAlgorithm {
            guard self == .winogradBFloat16 else { return self }
            if ComputeContext.current.usesAMX { return .columns }
            return BFloat16Payoff.dotProductsPayOff ? self : .winograd
        }
    }
    public let weight: Parameter
    public let bias: Parameter?
    public let inChannels: Int, outChannels: Int
    public let kernelSize: Int, stride: Int, padding: Int

    private var input: Tensor?
    private var output: Tensor?
    private var inputGrad: Tensor?
    let scratch = ConvolutionScratch()
    /// The weights packed for the bfloat16 kernels for a pass's products, when its context asks for bfloat16 (`BLAS`).
    private let packedWeights = PackedLeftOperand()
    /// W^T (Cout*K*K x Cin) packed for the columns forward's products by the panel kernel, or W
    /// for the input gradient's.
    private let weightTiles = LeftOperandTiles()
    /// The weights transformed for the Winograd forward.
    private let winogradWeights = TransformedWeights()
    /// The weights transformed for the input gradient by Winograd (a 4/2/1 convolution of dy).
    private let winogradGradientWeights = TransformedWeights()
    /// `winogradWeights` packed for `BFloat16GEMM`, when a bfloat16 forward asked for them;
    /// emptied whenever the weights are transformed again.
    private var packedWinogradWeights: [UInt16] = []
    /// The bias padded to whole vectors, and `sample`'s output.
    private var winogradBias: Tensor?
    private var sampled: Tensor?
    /// `sampleImage`'s output.
    var sampledImage: Tensor?

    public init(_ name: String, inChannels: Int, outChannels: Int,
                kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        weight = Parameter("\(name).weight", shape: [inChannels, outChannels, kernelSize, kernelSize])
        self.bias = bias ? Parameter("\(name).bias", shape: [outChannels]) : nil
    }

    public var parameters: [Parameter] { [weight] + (bias.map { [$0] } ?? []) }

    public func outputSize(_ inputSize: Int) -> Int { (inputSize - 1) * stride - 2 * padding + kernelSize }

    /// The geometry of `images` images of input `x`: the image is this layer's output.
    private func geometry(_ x: Tensor, images: Int) -> ConvGeometry {
        ConvGeometry(batch: images, channels: outChannels,
                     height: outputSize(x.shape[2]), width: outputSize(x.shape[3]),
                     kernelHeight: kernelSize, kernelWidth: kernelSize, stride: stride, padding: padding,
                     gridHeight: x.shape[2], gridWidth: x.shape[3])
    }

    /// `algorithm: .winograd` takes the Winograd path where the shape allows it, else columns;
    /// nil, the context's choice (`ComputeContext.winogradConvolutions`: Float Winograd, else
    /// columns). FP32 training keeps columns: Winograd's rounding (~1e-5 of the output scale)
    /// is nothing in an image, but carried through D and back it moved G's gradients off the
    /// PyTorch reference step by up to 5e-3 of their scale (ReferenceStepTests allows 2e-3).
    public func forward(_ x: Tensor, algorithm: ForwardAlgorithm? = nil) -> Tensor {
        let algorithm = algorithm ?? (ComputeContext.current.winogradConvolutions ? .winograd : .columns)
        precondition(x.rank == 4 && x.shape[1] == inChannels,
                     "ConvTranspose2d expects (B, \(inChannels), H, W), got \(x.shape)")
        let batch = x.shape[0]
        let whole = geometry(x, images: batch)
        precondition(whole.height > 0 && whole.width > 0, "ConvTranspose2d: output of \(x.shape) would be empty")
        input = x
        scratch.transformedImages = nil  // only the backward's input gradient leaves transforms to read
        let y = Tensor.reuse(output, shape: [batch, outChannels, whole.height, whole.width]); output = y
        if algorithm.isWinograd, hasWinogradShape(height: x.shape[2], width: x.shape[3]) {
            winogradForward(x, into: y, bfloat16: algorithm.usesBFloat16)
        } else {
            columnsForward(x, into: y)
        }
        return y
    }

    /// y = W^T x as columns (Cout*K*K, grid), scattered into the image by col2im.
    private func columnsForward(_ x: Tensor, into y: Tensor) {
        let batch = x.shape[0]
        let whole = geometry(x, images: batch)
        BLAS.recordFLOPs(m: whole.patchSize, n: whole.columnCount, k: inChannels)

        let gridArea = whole.gridHeight * whole.gridWidth, outputArea = whole.height * whole.width
        let chunk = ConvolutionScratch.imagesPerChunk(columnFloatsPerImage: whole.patchSize * gridArea)
        let maxColumns = Swift.min(chunk, batch) * gridArea
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [whole.patchSize * maxColumns, inChannels * maxColumns])
        let packedWeights = packedWeights.pack(transA: true, m: whole.patchSize, k: inChannels,
                                               a: weight.value.data, lda: whole.patchSize)
        // Float products by the panel kernel: W^T (packed once a pass), x packed from its NCHW maps.
        let panels = ComputeContext.current.columnPanels(gridCells: gridArea)
        let transposedWeights = panels.map {
            weightTiles.pack(transA: true, weight.value.data, lda: whole.patchSize, m: whole.patchSize, k: inChannels, for: $0)
        }
        Parallel.forParts(batch) { part, images in
            let cols = pointers[part, 0], xcm = pointers[part, 1]
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                let g = geometry(x, images: n)
                let columns = g.columnCount
                // cols (Cout*K*K, n*H*W) = W^T . xcm, W stored (Cin, Cout*K*K): transpose A.
                if let panels, let transposedWeights {
                    PanelKernel.pack(images: x.data + start * inChannels * gridArea, ldb: gridArea, k: inChannels,
                                     n: columns, columnsPerImage: gridArea, imageStride: inChannels * gridArea, into: xcm)
                    panels.multiply(aTiles: true, halves: transposedWeights.halves, m: g.patchSize, n: columns, k: inChannels,
                                    a: transposedWeights.floats, lda: 0, packed: xcm, c: cols, ldc: columns, columnsPerImage: columns,
                                    imageStride: 0, bias: nil)
                } else {
                    swapLeadingAxes(xcm, x.data + start * inChannels * gridArea, a: n, b: inChannels, inner: gridArea,
                                    parallel: false)
                    BLAS.gemmSerial(transA: true, m: g.patchSize, n: columns, k: inChannels,
                                    a: weight.value.data, lda: g.patchSize, packedA: packedWeights, b: xcm, ldb: columns,
                                    c: cols, ldc: columns)
                }
                let yChunk = y.data + start * outChannels * outputArea
                col2im(yChunk, cols, g, parallel: false)
                if let bias {
                    for plane in 0..<(n * outChannels) {
                        let p = yChunk + plane * outputArea, value = bias.value[plane % outChannels]
                        for i in 0..<outputArea { p[i] += value }
                    }
                }
            }
        }
    }

    private func winogradForward(_ x: Tensor, into y: Tensor, bfloat16: Bool) {
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        let plane = height * width, outPlane = y.shape[2] * y.shape[3]
        guard bfloat16 else {   // training's: Float products over the whole batch at once
            WinogradTransposedConvolution.runWholeBatch(
                x.data, batch: batch, inChannels: inChannels, outChannels: outChannels, height: height, width: width,
                weights: winogradProducts(), bias: paddedBias().data, into: y.data, scratch: scratch)
            return
        }
        winograd(batch: batch, height: height, width: width, bfloat16: bfloat16) { start in
            (.planes(x.data + start * inChannels * plane), .planes(y.data + start * outChannels * outPlane))
        }
    }

    /// What `sample` reads: planes (B, Cin, H, W) used as they are, or channels-last
    /// activations through the BatchNorm, class scale and ReLU before this layer.
    public enum SamplingInput {
        case planes(Tensor)
        case channelsLast(ChannelsLast, RectifiedChannelAffine)
    }

    /// Whether an input of `height` x `width` can take the Winograd path (`sample`, or
    /// `forward` with `.winograd`).
    public func hasWinogradShape(height: Int, width: Int) -> Bool {
        WinogradTransposedConvolution.applies(kernelSize: kernelSize, stride: stride, padding: padding,
                                              outChannels: outChannels, height: height, width: width)
    }

    /// The forward for sampling, by Winograd, into channels-last activations (the same values
    /// as `forward(_:algorithm: .winograd)` after transposing), with their per-channel
    /// statistics for the BatchNorm that follows, taken as the values are made (a pass over a
    /// batch's activations fewer). Nothing is kept for backward. `bfloat16`: products in
    /// bfloat16 (`BFloat16GEMM`) where the CPU has them.
    public func sample(_ input: SamplingInput, bfloat16: Bool = false) -> (activations: ChannelsLast, statistics: ChannelStatistics) {
        let (batch, height, width): (Int, Int, Int)
        switch input {
        case .planes(let x):
            precondition(x.rank == 4 && x.shape[1] == inChannels, "ConvTranspose2d expects (B, \(inChannels), H, W), got \(x.shape)")
            (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        case .channelsLast(let x, let affine):
            precondition(x.channels == inChannels, "ConvTranspose2d expects \(inChannels) channels, got \(x.channels)")
            precondition(affine.rows.count == x.batch && affine.scale.shape[1] == x.stride,
                         "affine for \(affine.rows.count) images of \(affine.scale.shape[1]) floats, input \(x.values.shape)")
            (batch, height, width) = (x.batch, x.height, x.width)
        }
        precondition(hasWinogradShape(height: height, width: width), "ConvTranspose2d.sample: no Winograd path for this shape")
        let cout = ChannelsLast.padded(outChannels)
        let y = Tensor.reuse(sampled, shape: [batch, 2 * height, 2 * width, cout]); sampled = y
        let plane = height * width, outPixels = 4 * plane
        // The rows as a buffer that outlives the closure calls below (an Array's may not).
        let rowBuffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch)
        defer { rowBuffer.deallocate() }
        if case .channelsLast(_, let affine) = input { _ = rowBuffer.initialize(from: affine.rows) }
        // Sums of y - bias and of their squares, one set per part, added up below.
        let parts = Parallel.partCount(batch)
        let sums = UnsafeMutableBufferPointer<Double>.allocate(capacity: parts * 2 * cout)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0)
        winograd(batch: batch, height: height, width: width, statistics: sums.baseAddress!, bfloat16: bfloat16) { start in
            let target = WinogradTransposedConvolution.Destination.channelsLast(y.data + start * outPixels * cout)
            switch input {
            case .planes(let x):
                return (.planes(x.data + start * inChannels * plane), target)
            case .channelsLast(let x, let affine):
                return (.channelsLast(x.values.data + start * plane * x.stride, scale: affine.scale.data,
                                      shift: affine.shift.data, rows: rowBuffer.baseAddress! + start), target)
            }
        }
        for part in 1..<Swift.max(1, parts) {
            for i in 0..<(2 * cout) { sums[i] += sums[part * 2 * cout + i] }
        }
        let statistics = ChannelStatistics(sums: sums.baseAddress!, squares: sums.baseAddress! + cout,
                                           center: winogradBias!.data, channels: outChannels, count: batch * outPixels)
        return (ChannelsLast(values: y, channels: outChannels), statistics)
    }

    /// The Winograd forward of `batch` images, in chunks per thread; `ends(start)` says where
    /// the chunk starting at image `start` is read from and written to.
    private func winograd(batch: Int, height: Int, width: Int, statistics: UnsafeMutablePointer<Double>? = nil,
                          bfloat16: Bool,
                          ends: (Int) -> (WinogradTransposedConvolution.Source, WinogradTransposedConvolution.Destination)) {
        let bfloat16 = bfloat16 && BFloat16GEMM.isAvailable
        // bfloat16 packs its own copy of the transformed weights from rows; Float takes them as
        // training does (the context's panel kernel's panels where it has one).
        let weights = winogradProducts(layout: bfloat16 ? .rows : nil)
        let u = weights.weights
        if bfloat16 && packedWinogradWeights.isEmpty {
            packedWinogradWeights = [UInt16](unsafeUninitializedCapacity: WinogradTransposedConvolution.packedWeightCount(
                inChannels: inChannels, outChannels: outChannels)) { buffer, count in
                WinogradTransposedConvolution.packWeights(u, inChannels: inChannels, outChannels: outChannels,
                                                          into: buffer.baseAddress!)
                count = buffer.count
            }
        }
        let paddedBias = paddedBias()
        packedWinogradWeights.withUnsafeBufferPointer { packed in
            WinogradTransposedConvolution.run(batch: batch, inChannels: inChannels, outChannels: outChannels,
                                              height: height, width: width, weights: weights, bias: paddedBias.data,
                                              scratch: scratch, statistics: statistics,
                                              packed: bfloat16 ? packed.baseAddress : nil, ends: ends)
        }
    }

    /// The bias padded to whole vectors (zero past Cout; all zero without a bias).
    private func paddedBias() -> Tensor {
        let padded = Tensor.reuse(winogradBias, shape: [ChannelsLast.padded(outChannels)]); winogradBias = padded
        padded.zero()
        if let bias { padded.data.update(from: bias.value.data, count: outChannels) }
        return padded
    }

    /// The forward's Winograd products in `layout` (by default as the context's kernel takes
    /// them; `.rows` for sampling's bfloat16 pack), transformed again only when the weights or
    /// the layout changed, and then the bfloat16 pack of them is stale too.
    private func winogradProducts(layout: WinogradProducts.Layout? = nil) -> WinogradProducts {
        let (products, changed) = winogradWeights.products(WinogradTransposedConvolution.self, of: weight.value,
                                                           inChannels: inChannels, outChannels: outChannels, layout: layout)
        if changed { packedWinogradWeights = [] }
        return products
    }

    /// Whether the input gradient of an input of `height` x `width` is computed by Winograd in
    /// this context: dx is the 4/2/1 convolution of dy with these weights (Cin outputs); and
    /// the weight gradient (that convolution's, dy its input).
    private func takesWinogradGradients(height: Int, width: Int) -> Bool {
        ComputeContext.current.winogradConvolutions
            && WinogradStridedConvolution.applies(kernelSize: kernelSize, stride: stride, padding: padding,
                                                  inChannels: outChannels, outChannels: inChannels,
                                                  height: outputSize(height), width: outputSize(width))
    }

    /// dx (B, Cin, H, W) = the 4/2/1 convolution of dy (B, Cout, 2H, 2W) with the weights read as
    /// a convolution's (Cin outputs, Cout inputs: the same memory), by Winograd.
    private func winogradInputGradient(_ dy: Tensor, into dx: Tensor) {
        let weights = winogradGradientWeights.products(WinogradStridedConvolution.self, of: weight.value,
                                                       inChannels: outChannels, outChannels: inChannels).products
        WinogradStridedConvolution.run(dy.data, batch: dy.shape[0], inChannels: outChannels, outChannels: inChannels,
                                       height: dy.shape[2], width: dy.shape[3], weights: weights, bias: nil,
                                       into: dx.data, scratch: scratch)
    }

    /// dy is (B, Cout, OH, OW). Returns dx (B, Cin, H, W) when `inputGradient`, else nil.
    @discardableResult
    public func backward(_ dy: Tensor, inputGradient: Bool = true, parameterGradients: Bool = true) -> Tensor? {
        guard let x = input else { preconditionFailure("ConvTranspose2d.backward before forward") }
        guard inputGradient || parameterGradients else { return nil }
        let batch = x.shape[0]
        let whole = geometry(x, images: batch)
        let dx = inputGradient ? Tensor.reuse(inputGrad, shape: x.shape) : nil
        if let dx { inputGrad = dx }
        scratch.transformedImages = nil
        // dx by Winograd where the context asks for it; the loop below then makes dW only. dx's
        // pass transforms dy as dW's reads it, and leaves it for dW (`TransformedImages`).
        let winogradInput = inputGradient && takesWinogradGradients(height: x.shape[2], width: x.shape[3])
        if let dx, winogradInput { winogradInputGradient(dy, into: dx) }
        let inputGradient = inputGradient && !winogradInput
        // dW and db likewise: dW is the convolution's weight gradient with x and dy exchanged.
        let winogradParameters = parameterGradients && takesWinogradGradients(height: x.shape[2], width: x.shape[3])
        if winogradParameters {
            WinogradStridedConvolution.weightGradient(dy.data, x.data, batch: batch, inChannels: outChannels,
                                                      outChannels: inChannels, height: dy.shape[2], width: dy.shape[3],
                                                      into: weight.grad.data, scratch: scratch)
            if let bias { addChannelSums(of: dy, into: bias.grad) }
        }
        let parameterGradients = parameterGradients && !winogradParameters
        guard inputGradient || parameterGradients else { return dx }
        if parameterGradients { BLAS.recordFLOPs(m: inChannels, n: whole.patchSize, k: whole.columnCount) }
        if inputGradient { BLAS.recordFLOPs(m: inChannels, n: whole.columnCount, k: whole.patchSize) }

        let gridArea = whole.gridHeight * whole.gridWidth, outputArea = whole.height * whole.width
        let chunk = ConvolutionScratch.imagesPerChunk(columnFloatsPerImage: whole.patchSize * gridArea)
        let maxColumns = Swift.min(chunk, batch) * gridArea
        // Where the products can take dy's columns packed from dy itself, no im2col.
        let chunkGeometry = geometry(x, images: Swift.min(chunk, batch))
        let weightKernel = BFloat16Kernel.forColumns(of: chunkGeometry, m: inChannels, transposed: true)
        let inputKernel = BFloat16Kernel.forColumns(of: chunkGeometry, m: inChannels, transposed: false)
        // Float products by the panel kernel: dW's (4 x 4 kernels) with x in tiles and dy's
        // patches in panels, dx's with W packed once a pass and dy's columns in panels, written
        // into dx's NCHW maps. Neither needs x's channel-major copy or dx's.
        let panels = ComputeContext.current.columnPanels(gridCells: gridArea)
        let weightPanels = parameterGradients && weightKernel == nil && suitsPatchPanels(whole) ? panels : nil
        let inputPanels = inputGradient && inputKernel == nil ? panels : nil
        let needsColumns = (parameterGradients && weightKernel == nil && weightPanels == nil)
            || (inputGradient && inputKernel == nil && inputPanels == nil)
        let pointers = scratch.prepare(parts: Parallel.partCount(batch),
                                       sizes: [whole.patchSize * maxColumns, inChannels * maxColumns,
                                               weight.value.count, outChannels,
                                               weightPanels == nil ? 0 : PanelKernel.tilesCount(m: inChannels, k: maxColumns)])
        let packedWeights = inputGradient ? packedWeights.pack(transA: false, m: inChannels, k: whole.patchSize,
                                                               a: weight.value.data, lda: whole.patchSize) : nil
        let weightTiles = inputPanels.map {
            self.weightTiles.pack(transA: false, weight.value.data, lda: whole.patchSize, m: inChannels, k: whole.patchSize, for: $0)
        }
        Parallel.forParts(batch) { part, images in
            let dcols = pointers[part, 0], cm = pointers[part, 1]
            let (dW, db) = pointers.gradientTargets(part: part, weight: weight, bias: bias, zeroPartials: parameterGradients)
            for start in Swift.stride(from: images.lowerBound, to: images.upperBound, by: chunk) {
                let n = Swift.min(chunk, images.upperBound - start)
                let g = geometry(x, images: n)
                let columns = g.columnCount
                let dyChunk = dy.data + start * outChannels * outputArea
                if needsColumns { im2col(dcols, dyChunk, g, parallel: false) }  // dcols (Cout*K*K, n*H*W)
                if parameterGradients, let db {
                    for plane in 0..<(n * outChannels) { db[plane % outChannels] += sum(dyChunk + plane * outputArea, outputArea) }
                }
                if parameterGradients, let weightPanels {
                    // dW (Cin, Cout*16) += x (Cin, n*H*W) . dcols^T, the chain going on from dW.
                    weightPanels.addWeightGradient(maps: x.data + start * inChannels * gridArea, rows: inChannels,
                                                   image: dyChunk, geometry: g, tiles: pointers[part, 4], panels: dcols,
                                                   into: dW)
                } else if parameterGradients {
                    swapLeadingAxes(cm, x.data + start * inChannels * gridArea, a: n, b: inChannels, inner: gridArea,
                                    parallel: false)
                    // dW (Cin, Cout*K*K) += xcm (Cin, n*H*W) . dcols^T
                    if let weightKernel {
                        weightKernel.multiplyColumns(packedA: nil, a: cm, lda: columns, image: dyChunk, geometry: g,
                                                     transposedColumns: true, m: inChannels, beta: 1, c: dW, ldc: g.patchSize)
                    } else {
                        BLAS.gemmSerial(transB: true, m: inChannels, n: g.patchSize, k: columns,
                                        a: cm, lda: columns, b: dcols, ldb: columns,
                                        beta: 1, c: dW, ldc: g.patchSize)
                    }
                }
                if let dx, inputGradient, let inputPanels, let weightTiles {
                    // dx (n, Cin, H*W) = W (Cin, Cout*K*K) . dcols, dcols written in panels.
                    im2col(dcols, dyChunk, g, parallel: false, layout: .panels)
                    inputPanels.multiply(aTiles: true, halves: weightTiles.halves, m: inChannels, n: columns, k: g.patchSize,
                                         a: weightTiles.floats, lda: 0,
                                         packed: dcols, c: dx.data + start * inChannels * gridArea, ldc: gridArea,
                                         columnsPerImage: gridArea, imageStride: inChannels * gridArea, bias: nil)
                } else if let dx, inputGradient {
                    // dxcm (Cin, n*H*W) = W (Cin, Cout*K*K) . dcols, then back to NCHW.
                    if let inputKernel {
                        inputKernel.multiplyColumns(packedA: packedWeights, a: weight.value.data, lda: g.patchSize,
                                                    image: dyChunk, geometry: g, transposedColumns: false, m: inChannels,
                                                    beta: 0, c: cm, ldc: columns)
                    } else {
                        BLAS.gemmSerial(m: inChannels, n: columns, k: g.patchSize,
                                        a: weight.value.data, lda: g.patchSize, packedA: packedWeights, b: dcols, ldb: columns,
                                        c: cm, ldc: columns)
                    }
                    swapLeadingAxes(dx.data + start * inChannels * gridArea, cm, a: inChannels, b: n, inner: gridArea,
                                    parallel: false)
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
