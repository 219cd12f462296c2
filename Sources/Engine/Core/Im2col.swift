import CFloatGEMM

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

extension ConvGeometry {
    /// Side lengths of an image plane padded so that every kernel read of every grid position
    /// lands inside it: the inner loops of im2col and col2im then need no bounds checks.
    var paddedHeight: Int { Swift.max(height + 2 * padding, (gridHeight - 1) * stride + kernelHeight) }
    var paddedWidth: Int { Swift.max(width + 2 * padding, (gridWidth - 1) * stride + kernelWidth) }
    var paddedArea: Int { paddedHeight * paddedWidth }

    /// The DCGAN geometry: a 4 x 4 kernel at stride 2 with padding 1, the grid half the image.
    var doublesTheGrid: Bool {
        kernelHeight == 4 && kernelWidth == 4 && stride == 2 && padding == 1
            && height == 2 * gridHeight && width == 2 * gridWidth
    }

    /// Whether im2col into panels takes the DCGAN geometry's own kernel (`PanelIm2col.c`).
    var hasPanelIm2colKernel: Bool { doublesTheGrid && synthd_panel_im2col_k4s2_applies(Int32(height), Int32(width)) }
}

/// How `im2col` lays out the column matrix.
public enum ColumnLayout: Sendable {
    /// Row-major, as BLAS reads it.
    case rows
    /// In `PanelKernel`'s panels of 16 columns (each patch x 16 floats), so that its products
    /// read the columns with no packing pass: the grid rows im2col writes (4, 8 or a multiple
    /// of 8 columns, starting at a multiple of their width) never straddle two panels where
    /// the grid's cells are a multiple of 16 (`ComputeContext.columnPanels`).
    case panels
}

/// im2col over a whole batch.
///
/// image is (B, C, H, W); cols is (C*KH*KW, B*GH*GW): row (c, kh, kw), column (b, gh, gw).
/// Putting the batch inside the columns makes each convolution one large GEMM instead of B
/// thin ones (at 4x4 grids a per-image GEMM has N = 16). Each (c, b) plane is first copied
/// into a zero-bordered scratch plane, which then serves all KH*KW kernel offsets from L1.
public func im2col(_ cols: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>,
                   _ g: ConvGeometry, parallel: Bool = true, layout: ColumnLayout = .rows) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let gridArea = g.gridHeight * g.gridWidth
    let planes = g.channels * g.batch
    let minimumPlanes = parallel ? Swift.max(1, 32768 / Swift.max(kernelArea * gridArea, 1)) : planes
    if layout == .panels && g.hasPanelIm2colKernel {
        // The DCGAN geometry by its own kernel: each tap's grid row one contiguous run (PanelIm2col.c).
        Parallel.forRanges(planes, minimumPerChunk: minimumPlanes) { range in
            synthd_panel_im2col_k4s2(image, Int32(g.channels), Int32(g.height), Int32(g.width), Int32(g.batch),
                                     Int32(range.lowerBound), Int32(range.upperBound), cols)
        }
        return
    }
    let imageArea = g.height * g.width
    let rowLength = g.columnCount
    let panels = layout == .panels, panelStride = 16 * g.patchSize
    /// Where column q of row `row` goes.
    @inline(__always) func destination(_ row: Int, _ q: Int) -> UnsafeMutablePointer<Float> {
        if panels {
            let panel: Int = (q &>> 4) &* panelStride
            return cols + (panel &+ row &* 16 &+ (q & 15))
        }
        return cols + (row &* rowLength &+ q)
    }
    let (stride, gridWidth, paddedWidth) = (g.stride, g.gridWidth, g.paddedWidth)
    Parallel.forRanges(planes, minimumPerChunk: minimumPlanes) { range in
        // 16 spare floats: the SIMD path below loads whole vectors past a row's last read.
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: g.paddedArea + 16)
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: g.paddedArea + 16)
        let strideTwoVectors = stride == 2 && gridWidth % 8 == 0
        let strideTwoHalfVectors = stride == 2 && gridWidth == 4
        for planeIndex in range {
            let c = planeIndex / g.batch, b = planeIndex % g.batch
            let plane = image + (b * g.channels + c) * imageArea
            for h in 0..<g.height {
                // A loop, not memcpy: rows are 4 to 32 floats, shorter than a call is worth.
                let from = plane + h * g.width, to = padded + (h + g.padding) * paddedWidth + g.padding
                for w in 0..<g.width { to[w] = from[w] }
            }
            for k in 0..<kernelArea {
                let kh = k / g.kernelWidth, kw = k % g.kernelWidth
                let source = padded + kh * paddedWidth + kw
                let row = c * kernelArea + k
                for gh in 0..<g.gridHeight {
                    let inRow = source + gh * stride * paddedWidth
                    let first = b * gridArea + gh * gridWidth
                    if strideTwoVectors {
                        // Every other float of 16 consecutive ones: one load and a shuffle.
                        for j in Swift.stride(from: 0, to: gridWidth, by: 8) {
                            let pair = UnsafeRawPointer(inRow + 2 * j).loadUnaligned(as: SIMD16<Float>.self)
                            UnsafeMutableRawPointer(destination(row, first + j)).storeBytes(of: pair.evenHalf, as: SIMD8<Float>.self)
                        }
                    } else if strideTwoHalfVectors {
                        let pair = UnsafeRawPointer(inRow).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(destination(row, first)).storeBytes(of: pair.evenHalf, as: SIMD4<Float>.self)
                    } else {
                        for gw in 0..<gridWidth { destination(row, first + gw).pointee = inRow[gw &* stride] }
                    }
                }
            }
        }
    }
}

/// The transpose of `im2col`'s matrix, (B*GH*GW) x (C*4*4), in `PanelKernel`'s panels: one
/// panel a channel, each row a grid cell's 16 taps (4 rows of 4 consecutive floats of the
/// zero-bordered plane). The right operand of a weight gradient's product by the panel kernel,
/// dW (Cout x C*16) += dy-matrix . cols^T, written where OpenBLAS packed it on every call. Only
/// for 4 x 4 kernels.
public func patchPanels(_ panels: UnsafeMutablePointer<Float>, _ image: UnsafePointer<Float>, _ g: ConvGeometry) {
    precondition(g.kernelHeight == 4 && g.kernelWidth == 4, "patchPanels: a \(g.kernelHeight) x \(g.kernelWidth) kernel")
    let gridArea = g.gridHeight * g.gridWidth, imageArea = g.height * g.width
    let rows = g.columnCount, (stride, paddedWidth) = (g.stride, g.paddedWidth)
    let padded = UnsafeMutablePointer<Float>.allocate(capacity: g.paddedArea + 16)
    defer { padded.deallocate() }
    padded.initialize(repeating: 0, count: g.paddedArea + 16)
    for c in 0..<g.channels {
        let panel = panels + c * 16 * rows
        for b in 0..<g.batch {
            let plane = image + (b * g.channels + c) * imageArea
            for h in 0..<g.height {
                let from = plane + h * g.width, to = padded + (h + g.padding) * paddedWidth + g.padding
                for w in 0..<g.width { to[w] = from[w] }
            }
            for gh in 0..<g.gridHeight {
                let top = padded + gh * stride * paddedWidth
                var out = panel + (b * gridArea + gh * g.gridWidth) * 16
                for gw in 0..<g.gridWidth {
                    let corner = UnsafeRawPointer(top + gw * stride)
                    let taps = SIMD16<Float>(
                        lowHalf: SIMD8(lowHalf: corner.loadUnaligned(as: SIMD4<Float>.self),
                                       highHalf: corner.loadUnaligned(fromByteOffset: paddedWidth * 4, as: SIMD4<Float>.self)),
                        highHalf: SIMD8(lowHalf: corner.loadUnaligned(fromByteOffset: paddedWidth * 8, as: SIMD4<Float>.self),
                                        highHalf: corner.loadUnaligned(fromByteOffset: paddedWidth * 12, as: SIMD4<Float>.self)))
                    UnsafeMutableRawPointer(out).storeBytes(of: taps, as: SIMD16<Float>.self)
                    out += 16
                }
            }
        }
    }
}

/// Whether a weight gradient's product takes `patchPanels` of `g`: 4 x 4 kernels, whose 16 taps
/// a channel fill one panel, and at least two channels. With one (D's first convolution, G's
/// last), the product is a single panel wide and as deep as the batch's pixels, and packing
/// its left operand (64 channels by every pixel) costs more than OpenBLAS's whole product:
/// 0.65-0.74x (docs/performance.md).
public func suitsPatchPanels(_ g: ConvGeometry) -> Bool { g.kernelHeight == 4 && g.kernelWidth == 4 && g.channels >= 2 }

/// col2im over a whole batch: the adjoint of `im2col`. Overwrites image (B, C, H, W) with
/// the sum of every column entry that reads each pixel: gathered for the DCGAN geometry (4 x 4,
/// stride 2, padding 1, the image twice the grid: `DoublingColumns`), else scattered.
public func col2im(_ image: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>,
                   _ g: ConvGeometry, parallel: Bool = true) {
    if DoublingColumns.applies(to: g) {
        DoublingColumns.col2im(image, cols, g, parallel: parallel)
    } else {
        col2imByScatter(image, cols, g, parallel: parallel)
    }
}

/// `col2im` for any geometry: each (c, b) plane accumulated tap by tap in a zero-bordered
/// scratch plane, whose interior is then copied out.
func col2imByScatter(_ image: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>,
                     _ g: ConvGeometry, parallel: Bool = true) {
    let kernelArea = g.kernelHeight * g.kernelWidth
    let gridArea = g.gridHeight * g.gridWidth
    let imageArea = g.height * g.width
    let rowLength = g.columnCount
    let (stride, gridWidth, paddedWidth) = (g.stride, g.gridWidth, g.paddedWidth)
    let planes = g.channels * g.batch
    let minimumPlanes = parallel ? Swift.max(1, 32768 / Swift.max(kernelArea * gridArea, 1)) : planes
    Parallel.forRanges(planes, minimumPerChunk: minimumPlanes) { range in
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: g.paddedArea + 16)
        defer { padded.deallocate() }
        padded.initialize(repeating: 0, count: g.paddedArea + 16)
        let strideTwoVectors = stride == 2 && gridWidth % 8 == 0
        let strideTwoHalfVectors = stride == 2 && gridWidth == 4
        for planeIndex in range {
            let c = planeIndex / g.batch, b = planeIndex % g.batch
            padded.update(repeating: 0, count: g.paddedArea)
            for k in 0..<kernelArea {
                let kh = k / g.kernelWidth, kw = k % g.kernelWidth
                let target = padded + kh * paddedWidth + kw
                let input = cols + (c * kernelArea + k) * rowLength + b * gridArea
                for gh in 0..<g.gridHeight {
                    let outRow = target + gh * stride * paddedWidth
                    let inRow = input + gh * gridWidth
                    if strideTwoVectors {
                        // Add into every other float of 16 consecutive ones.
                        for j in Swift.stride(from: 0, to: gridWidth, by: 8) {
                            let target = UnsafeMutableRawPointer(outRow + 2 * j)
                            var pair = UnsafeRawPointer(target).loadUnaligned(as: SIMD16<Float>.self)
                            pair.evenHalf += UnsafeRawPointer(inRow + j).loadUnaligned(as: SIMD8<Float>.self)
                            target.storeBytes(of: pair, as: SIMD16<Float>.self)
                        }
                    } else if strideTwoHalfVectors {
                        let target = UnsafeMutableRawPointer(outRow)
                        var pair = UnsafeRawPointer(target).loadUnaligned(as: SIMD8<Float>.self)
                        pair.evenHalf += UnsafeRawPointer(inRow).loadUnaligned(as: SIMD4<Float>.self)
                        target.storeBytes(of: pair, as: SIMD8<Float>.self)
                    } else {
                        for gw in 0..<gridWidth { outRow[gw &* stride] += inRow[gw] }
                    }
                }
            }
            let plane = image + (b * g.channels + c) * imageArea
            for h in 0..<g.height {
                let from = padded + (h + g.padding) * paddedWidth + g.padding, to = plane + h * g.width
                for w in 0..<g.width { to[w] = from[w] }
            }
        }
    }
}

/// Swaps the two leading axes: source (A, B, S) -> destination (B, A, S).
/// Converts NCHW activations to and from the channel-major (C, N, H*W) matrices that the
/// batched convolution GEMMs produce and consume.
public func swapLeadingAxes(_ destination: UnsafeMutablePointer<Float>,
                            _ source: UnsafePointer<Float>, a: Int, b: Int, inner: Int,
                            parallel: Bool = true) {
    let minimum = parallel ? Swift.max(1, 65536 / Swift.max(b * inner, 1)) : a
    Parallel.forRanges(a, minimumPerChunk: minimum) { range in
        for i in range {
            for j in 0..<b {
                let to = destination + (j * a + i) * inner, from = source + (i * b + j) * inner
                if inner >= 256 {
                    to.update(from: from, count: inner)
                } else {
                    for k in 0..<inner { to[k] = from[k] }  // a memcpy call costs more than 16 floats
                }
            }
        }
    }
}
