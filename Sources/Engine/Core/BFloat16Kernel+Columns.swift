import CBFloat16

/// Convolution products whose right operand is the column matrix of an image batch, packed
/// into the kernels' tiles straight from the images (Sources/CBFloat16/ColumnTiles.c).
///
/// Why: with bfloat16 products, im2col wrote a Float column matrix (four times the image at
/// stride 2) that the kernel then read again to pack it: about a tenth of a training step, where
/// the products themselves are a little over half. Only the geometry of every training
/// convolution of the DCGAN models takes this path (4 x 4 kernels, stride 2, padding 1, the
/// image twice the grid); others keep im2col and `BLAS.gemmSerial`.
extension BFloat16Kernel {
    /// The kernel that multiplies `m`-row products by `g`'s column matrix (or its transpose)
    /// packed from the images: the current context's bfloat16 kernel, where it has one, the
    /// geometry is one the packing takes, and the product suits the kernel (`suits`); nil
    /// where the layer should use im2col and `BLAS.gemmSerial`.
    public static func forColumns(of g: ConvGeometry, m: Int, transposed: Bool) -> BFloat16Kernel? {
        guard let kernel = ComputeContext.current.bfloat16Kernel, packsColumns(of: g) else { return nil }
        let (k, n) = transposed ? (g.columnCount, g.patchSize) : (g.patchSize, g.columnCount)
        return suits(m: m, n: n, k: k) ? kernel : nil
    }

    /// Whether the packing takes `g`: col2im's gathered geometry (`DoublingColumns`: 4 x 4,
    /// stride 2, padding 1, image twice the grid) with grids of a multiple of 16 cells, 4, 8 or
    /// a multiple of 16 wide.
    public static func packsColumns(of g: ConvGeometry) -> Bool {
        DoublingColumns.applies(to: g) && synthd_bf16_columns_fit(g.columns)
    }

    /// c = alpha * op(a) . cols + beta * c, where cols is the column matrix of `image` in
    /// geometry `g` (`im2col`: patch x columns) or, with `transposedColumns`, its transpose;
    /// op(a) from `a` or packed already (`packedA`). As `multiply` with b = cols, to the last
    /// bit. Only where `packsColumns(of: g)`.
    public func multiplyColumns(
        packedA: PackedMatrix?, transA: Bool = false, a: UnsafePointer<Float>, lda: Int,
        image: UnsafePointer<Float>, geometry g: ConvGeometry, transposedColumns: Bool,
        m: Int, alpha: Float = 1, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard isAvailable else { fatalError("BFloat16Kernel.\(self) on a CPU without it") }
        guard Self.packsColumns(of: g) else { fatalError("BFloat16Kernel: no column packing for \(g)") }
        let k = transposedColumns ? g.columnCount : g.patchSize
        if let packedA, packedA.rows != m || packedA.depth != k {
            fatalError("BFloat16Kernel: operand packed as \(packedA.rows) x \(packedA.depth), used as \(m) x \(k)")
        }
        let multiply = switch self {
        case .amxTiles: synthd_amx_gemm_columns
        case .dotProducts: synthd_dot_gemm_columns
        }
        multiply(packedA?.elements, transA, a, Int32(lda), g.columns, transposedColumns, image,
                 Int32(m), alpha, beta, c, Int32(ldc))
    }
}

extension ConvGeometry {
    /// The geometry as the column packing takes it (images, channels, grid).
    var columns: synthd_columns {
        synthd_columns(images: Int32(batch), channels: Int32(channels),
                       gridHeight: Int32(gridHeight), gridWidth: Int32(gridWidth))
    }
}
