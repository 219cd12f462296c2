/// The geometry of a 2-D convolution over a batch: which image pixels each output position reads.
///
/// For `Conv2d` the image is the input and the grid is the output. For `ConvTranspose2d` the
/// roles swap: the image is the (larger) output and the grid is the input, because a transposed
/// convolution is the adjoint of a convolution.
public struct ConvGeometry: Equatable, Sendable {
    public var batch: Int
    public var channels: Int
    public var height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var stride: Int
    public var padding: Int
    public var gridHeight: Int, gridWidth: Int

    public init(batch: Int, channels: Int, height: Int, width: Int,
                kernelHeight: Int, kernelWidth: Int, stride: Int, padding: Int,
                gridHeight: Int, gridWidth: Int) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelHeight = kernelHeight
        self.kernelWidth = kernelWidth
        self.stride = stride
        self.padding = padding
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
    }

    /// Rows of the column matrix: channels x kernel positions.
    public var patchSize: Int { channels * kernelHeight * kernelWidth }
    /// Columns of the column matrix: batch x grid positions.
    public var columnCount: Int { batch * gridHeight * gridWidth }
}

/// im2col over a whole batch.
///
/// image is (B, C, H, W); cols is (C*KH*KW, B*GH*GW): row (c, kh, kw), column (b, gh, gw).
/// Putting the batch inside the columns makes each convolution one large GEMM instead of B
/// thin ones (at 4x4 grids a per-image GEMM has N = 16).
public func im2col(_ cols: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
                   _ g: ConvGeometry) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let gridArea = g.gridHeight * g.gridWidth
    let imageArea = g.height * g.width
    let rowLength = g.columnCount
    Parallel.forRanges(g.patchSize, minimumPerChunk: Swift.max(1, 8192 / Swift.max(rowLength, 1))) { rows in
        for row in rows {
            let c = row / kernelArea
            let kh = (row % kernelArea) / g.kernelWidth
            let kw = row % g.kernelWidth
            let rowOut = cols + row * rowLength
            for b in 0..<g.batch {
                let plane = image + (b * g.channels + c) * imageArea
                let out = rowOut + b * gridArea
                for gh in 0..<g.gridHeight {
                    let ih = gh * g.stride - g.padding + kh
                    let outRow = out + gh * g.gridWidth
                    if ih < 0 || ih >= g.height {
                        outRow.update(repeating: 0, count: g.gridWidth)
                        continue
                    }
                    let inRow = plane + ih * g.width
                    for gw in 0..<g.gridWidth {
                        let iw = gw &* g.stride &- g.padding &+ kw
                        outRow[gw] = (iw >= 0 && iw < g.width) ? inRow[iw] : 0
                    }
                }
            }
        }
    }
}

/// col2im over a whole batch: the adjoint of `im2col`. Overwrites image (B, C, H, W) with
/// the sum of every column entry that reads each pixel.
public func col2im(_ image: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>,
                   _ g: ConvGeometry) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let gridArea = g.gridHeight * g.gridWidth
    let imageArea = g.height * g.width
    let rowLength = g.columnCount
    // Rows of one channel all add into that channel's planes: split the work by channel.
    let perChannel = kernelArea * rowLength
    Parallel.forRanges(g.channels, minimumPerChunk: Swift.max(1, 16384 / Swift.max(perChannel, 1))) { channels in
        for c in channels {
            for b in 0..<g.batch {
                (image + (b * g.channels + c) * imageArea).update(repeating: 0, count: imageArea)
            }
            for k in 0..<kernelArea {
                let kh = k / g.kernelWidth
                let kw = k % g.kernelWidth
                let rowIn = cols + (c * kernelArea + k) * rowLength
                for b in 0..<g.batch {
                    let plane = image + (b * g.channels + c) * imageArea
                    let input = rowIn + b * gridArea
                    for gh in 0..<g.gridHeight {
                        let ih = gh * g.stride - g.padding + kh
                        if ih < 0 || ih >= g.height { continue }
                        let outRow = plane + ih * g.width
                        let inRow = input + gh * g.gridWidth
                        for gw in 0..<g.gridWidth {
                            let iw = gw &* g.stride &- g.padding &+ kw
                            if iw >= 0 && iw < g.width { outRow[iw] += inRow[gw] }
                        }
                    }
                }
            }
        }
    }
}

/// Swaps the two leading axes: source (A, B, S) -> destination (B, A, S).
/// Converts NCHW activations to and from the channel-major (C, N, H*W) matrices that the
/// batched convolution GEMMs produce and consume.
public func swapLeadingAxes(_ destination: UnsafeMutablePointer<Float>,
                            _ source: UnsafePointer<Float>, a: Int, b: Int, inner: Int) {
    Parallel.forRanges(a, minimumPerChunk: Swift.max(1, 65536 / Swift.max(b * inner, 1))) { range in
        for i in range {
            for j in 0..<b {
                (destination + (j * a + i) * inner).update(from: source + (i * b + j) * inner,
                                                           count: inner)
            }
        }
    }
}
