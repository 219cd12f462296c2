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

/// The grid positions g in 0..<count whose pixel g * stride + offset lies in 0..<size,
/// as a half-open range; computed once per kernel offset so inner loops need no bounds checks.
@inline(__always)
func validGridRange(count: Int, stride: Int, offset: Int, size: Int) -> Range<Int> {
    // g * stride + offset >= 0  <=>  g >= ceil(-offset / stride)
    let low = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // g * stride + offset <= size - 1  <=>  g <= floor((size - 1 - offset) / stride)
    let last = size - 1 - offset
    let high = last < 0 ? 0 : Swift.min(count, last / stride + 1)
    return low < high ? low..<high : 0..<0
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
    let (stride, gridWidth, width) = (g.stride, g.gridWidth, g.width)
    Parallel.forRanges(g.patchSize, minimumPerChunk: Swift.max(1, 16384 / Swift.max(rowLength, 1))) { rows in
        for row in rows {
            let c = row / kernelArea
            let kh = (row % kernelArea) / g.kernelWidth
            let kw = row % g.kernelWidth
            let rowsValid = validGridRange(count: g.gridHeight, stride: stride, offset: kh - g.padding, size: g.height)
            let columnsValid = validGridRange(count: gridWidth, stride: stride, offset: kw - g.padding, size: width)
            let columnOffset = kw - g.padding
            let rowOut = cols + row * rowLength
            for b in 0..<g.batch {
                let plane = image + (b * g.channels + c) * imageArea
                let out = rowOut + b * gridArea
                // Rows of the grid that read only padding. (Plain loops: a memset call per
                // 8-float row costs more than the row.)
                for i in 0..<(rowsValid.lowerBound * gridWidth) { out[i] = 0 }
                for i in (rowsValid.upperBound * gridWidth)..<gridArea { out[i] = 0 }
                for gh in rowsValid {
                    let inRow = plane + (gh * stride - g.padding + kh) * width + columnOffset
                    let outRow = out + gh * gridWidth
                    for gw in 0..<columnsValid.lowerBound { outRow[gw] = 0 }
                    for gw in columnsValid.upperBound..<gridWidth { outRow[gw] = 0 }
                    if stride == 1 {
                        (outRow + columnsValid.lowerBound).update(from: inRow + columnsValid.lowerBound,
                                                                  count: columnsValid.count)
                    } else {
                        for gw in columnsValid { outRow[gw] = inRow[gw &* stride] }
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
    let (stride, gridWidth, width) = (g.stride, g.gridWidth, g.width)
    // Rows of one channel all add into that channel's planes: split the work by channel.
    // Each plane stays in L1 while all kernel offsets add into it.
    let perChannel = kernelArea * rowLength
    Parallel.forRanges(g.channels * g.batch, minimumPerChunk: Swift.max(1, 16384 / Swift.max(perChannel / g.batch, 1))) { planes in
        for planeIndex in planes {
            let c = planeIndex / g.batch, b = planeIndex % g.batch
            let plane = image + (b * g.channels + c) * imageArea
            plane.update(repeating: 0, count: imageArea)
            for k in 0..<kernelArea {
                let kh = k / g.kernelWidth
                let kw = k % g.kernelWidth
                let rowsValid = validGridRange(count: g.gridHeight, stride: stride, offset: kh - g.padding, size: g.height)
                let columnsValid = validGridRange(count: gridWidth, stride: stride, offset: kw - g.padding, size: width)
                let input = cols + (c * kernelArea + k) * rowLength + b * gridArea
                for gh in rowsValid {
                    let outRow = plane + (gh * stride - g.padding + kh) * width + (kw - g.padding)
                    let inRow = input + gh * gridWidth
                    for gw in columnsValid { outRow[gw &* stride] += inRow[gw] }
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
