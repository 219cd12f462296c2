/// col2im for the geometry of every DCGAN upsampling layer and of the discriminator's
/// downsampling gradients: a 4 x 4 kernel at stride 2 with padding 1, the image twice the
/// grid's size. There each image pixel receives exactly four column entries, two kernel rows
/// by two kernel columns fixed by the pixel's parity, so the image can be gathered row by row
/// and written once: no zeroed scratch plane, no scatter of 16 taps that each read and write
/// twice the floats they add, no copy out (the scatter's cost, 22% of generation's profile
/// on a Sapphire Rapids VM, as much as all of its products).
///
/// Pixel (y, x) reads grid row gy with y + 1 = 2 gy + kh, and column gx with x + 1 = 2 gx + kw:
/// an even x = 2j takes kw = 1 at gx = j and kw = 3 at gx = j - 1; an odd x = 2j + 1 takes
/// kw = 2 at gx = j and kw = 0 at gx = j + 1 (rows alike), terms past the grid's edges absent.
enum DoublingColumns {
    static func applies(to g: ConvGeometry) -> Bool {
        g.doublesTheGrid && (g.gridWidth == 4 || g.gridWidth % 8 == 0)
    }

    static func col2im(_ image: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>,
                       _ g: ConvGeometry, parallel: Bool) {
        let (gridHeight, gridWidth) = (g.gridHeight, g.gridWidth)
        let gridArea = gridHeight * gridWidth, rowLength = g.columnCount, width = g.width
        let planes = g.channels * g.batch
        let minimumPlanes = parallel ? Swift.max(1, 32768 / Swift.max(16 * gridArea, 1)) : planes
        Parallel.forRanges(planes, minimumPerChunk: minimumPlanes) { range in
            for planeIndex in range {
                let c = planeIndex / g.batch, b = planeIndex % g.batch
                // Tap (kh, kw)'s grid plane for this image and channel.
                let taps = cols + c * 16 * rowLength + b * gridArea
                let plane = image + (b * g.channels + c) * g.height * width
                for y in 0..<g.height {
                    // The (kh, gy) pairs of this row: kh = 1 at y / 2 and 3 above it for an
                    // even y; kh = 2 at (y - 1) / 2 and 0 below it for an odd one.
                    let (near, far) = y % 2 == 0 ? ((kh: 1, gy: y / 2), (kh: 3, gy: y / 2 - 1))
                                                 : ((kh: 2, gy: y / 2), (kh: 0, gy: y / 2 + 1))
                    let nearRow = taps + near.kh * 4 * rowLength + near.gy * gridWidth
                    let farRow: UnsafePointer<Float>? = far.gy >= 0 && far.gy < gridHeight
                        ? taps + far.kh * 4 * rowLength + far.gy * gridWidth : nil
                    let out = plane + y * width
                    if gridWidth == 4 {
                        gatherRow(SIMD4<Float>.self, out, nearRow, farRow, gridWidth: 4, rowLength: rowLength)
                    } else {
                        gatherRow(SIMD8<Float>.self, out, nearRow, farRow, gridWidth: gridWidth, rowLength: rowLength)
                    }
                }
            }
        }
    }

    /// One image row from the kernel rows `near` and (when inside the grid) `far`, each at its
    /// grid row: tap kw of a kernel row lies `kw * rowLength` floats after its tap 0.
    @inline(__always)
    private static func gatherRow<V: SIMD>(_: V.Type, _ out: UnsafeMutablePointer<Float>, _ near: UnsafePointer<Float>,
                                           _ far: UnsafePointer<Float>?, gridWidth: Int, rowLength: Int) where V.Scalar == Float {
        let lanes = V.scalarCount
        for j in Swift.stride(from: 0, to: gridWidth, by: lanes) {
            var even = load(V.self, near + rowLength + j) + shiftedRight(load(V.self, near + 3 * rowLength + j), j > 0 ? near[3 * rowLength + j - 1] : 0)
            var odd = load(V.self, near + 2 * rowLength + j) + shiftedLeft(load(V.self, near + j), j + lanes < gridWidth ? near[j + lanes] : 0)
            if let far {
                even += load(V.self, far + rowLength + j) + shiftedRight(load(V.self, far + 3 * rowLength + j), j > 0 ? far[3 * rowLength + j - 1] : 0)
                odd += load(V.self, far + 2 * rowLength + j) + shiftedLeft(load(V.self, far + j), j + lanes < gridWidth ? far[j + lanes] : 0)
            }
            interleave(even, odd, into: out + 2 * j)
        }
    }

    /// (e0, o0, e1, o1, ...) at `out`: with 8 lanes one 16-float store, two unpacks and a
    /// permute, where lane-by-lane stores were 16.
    @inline(__always)
    private static func interleave<V: SIMD>(_ even: V, _ odd: V, into out: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        if let e = even as? SIMD8<Float>, let o = odd as? SIMD8<Float> {
            let pairs = SIMD16<Float>(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3], e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7])
            UnsafeMutableRawPointer(out).storeBytes(of: pairs, as: SIMD16<Float>.self)
        } else {
            for lane in 0..<V.scalarCount {
                out[2 * lane] = even[lane]
                out[2 * lane + 1] = odd[lane]
            }
        }
    }

    @inline(__always)
    private static func load<V: SIMD>(_: V.Type, _ p: UnsafePointer<Float>) -> V where V.Scalar == Float {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    /// (first, v0, ..., v(n-2)): the vector one lane to the right, `first` entering.
    @inline(__always)
    private static func shiftedRight<V: SIMD>(_ v: V, _ first: Float) -> V where V.Scalar == Float {
        var r = V()
        r[0] = first
        for lane in 1..<V.scalarCount { r[lane] = v[lane - 1] }
        return r
    }

    /// (v1, ..., v(n-1), last): the vector one lane to the left, `last` entering.
    @inline(__always)
    private static func shiftedLeft<V: SIMD>(_ v: V, _ last: Float) -> V where V.Scalar == Float {
        var r = V()
        for lane in 0..<(V.scalarCount - 1) { r[lane] = v[lane + 1] }
        r[V.scalarCount - 1] = last
        return r
    }
}
