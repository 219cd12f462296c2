@testable import Engine
import NumericTestSupport
import Testing

/// Products with a column matrix packed straight from the images (`BFloat16Kernel.multiplyColumns`,
/// Sources/CBFloat16/ColumnTiles.c) against the same product with the column matrix written by
/// `im2col` and packed by the kernel (`multiply`, checked exactly against Double sums in
/// `BFloat16KernelTests`). Both round the same values to bfloat16 into the same tiles, so the
/// results must agree to the last bit: a wrong tap, pair order, edge of the image, grid width
/// (4, 8, 16 and 32 wide), odd channel count or partial k block shows as whole terms.
@Suite struct ColumnTilesTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var images: Int, channels: Int, gridHeight: Int, gridWidth: Int
        var testDescription: String { "\(images) x \(channels) x \(2 * gridHeight) x \(2 * gridWidth)" }

        var geometry: ConvGeometry {
            ConvGeometry(batch: images, channels: channels, height: 2 * gridHeight, width: 2 * gridWidth,
                         kernelHeight: 4, kernelWidth: 4, stride: 2, padding: 1,
                         gridHeight: gridHeight, gridWidth: gridWidth)
        }
    }

    static let cases = [
        Case(images: 1, channels: 1, gridHeight: 4, gridWidth: 4),     // one column block; k half a block
        Case(images: 3, channels: 3, gridHeight: 4, gridWidth: 4),     // odd channels: the last k block half zeros
        Case(images: 2, channels: 2, gridHeight: 8, gridWidth: 8),     // two grid rows a column block
        Case(images: 1, channels: 5, gridHeight: 2, gridWidth: 8),
        Case(images: 3, channels: 4, gridHeight: 8, gridWidth: 4),     // four grid rows a column block
        Case(images: 2, channels: 3, gridHeight: 16, gridWidth: 16),   // a grid row a column block
        Case(images: 1, channels: 2, gridHeight: 3, gridWidth: 32),    // two column blocks a grid row
    ]

    @Test(.enabled(if: !BFloat16KernelTests.available.isEmpty, Comment(rawValue: BFloat16KernelTests.noKernelToTest)), arguments: cases)
    func columnsPackedFromTheImagesGiveIm2colsProduct(_ s: Case) throws {
        let g = s.geometry
        #expect(BFloat16Kernel.packsColumns(of: g))
        let image = randomTensor([s.images, s.channels, g.height, g.width], seed: 41)
        let cols = Tensor(zeros: [g.patchSize, g.columnCount])
        im2col(cols.data, image.data, g, parallel: false)
        for kernel in BFloat16KernelTests.available {
            for transposed in [false, true] {
                let (k, n) = transposed ? (g.columnCount, g.patchSize) : (g.patchSize, g.columnCount)
                let m = 19, lda = k + 3, ldc = n + 2
                let a = randomTensor([m, lda], seed: 42)
                let start = randomTensor([m, ldc], seed: 43)
                let (alpha, beta): (Float, Float) = transposed ? (1, 1) : (0.5, -1)
                let expected = Tensor(shape: start.shape, values: start.values), actual = Tensor(shape: start.shape, values: start.values)
                kernel.multiply(transA: false, transB: transposed, m: m, n: n, k: k, alpha: alpha,
                                a: a.data, lda: lda, b: cols.data, ldb: g.columnCount, beta: beta,
                                c: expected.data, ldc: ldc)
                kernel.multiplyColumns(packedA: nil, a: a.data, lda: lda, image: image.data, geometry: g,
                                       transposedColumns: transposed, m: m, alpha: alpha, beta: beta,
                                       c: actual.data, ldc: ldc)
                let differing = (0..<expected.count).filter { expected[$0] != actual[$0] }
                #expect(differing.isEmpty, "\(kernel), transposed \(transposed): \(differing.count) of \(expected.count) differ, first at \(differing.first ?? -1)")
            }
        }
    }

    /// The layers' way: the weights packed once (`PackedLeftOperand`, here transposed as
    /// `Conv2d.backward`'s and `ConvTranspose2d`'s are not: any op(a) goes).
    @Test(.enabled(if: !BFloat16KernelTests.available.isEmpty, Comment(rawValue: BFloat16KernelTests.noKernelToTest)))
    func packedWeightsGiveTheSameProduct() throws {
        let g = Case(images: 2, channels: 4, gridHeight: 8, gridWidth: 8).geometry
        let image = randomTensor([2, 4, g.height, g.width], seed: 51)
        let m = 32, k = g.patchSize, n = g.columnCount
        let weights = randomTensor([k, m], seed: 52)   // stored k x m: op(a) is its transpose
        let packed = PackedLeftOperand()
        for kernel in BFloat16KernelTests.available {
            let matrix = try #require(packed.pack(transA: true, m: m, k: k, a: weights.data, lda: m, for: kernel))
            let fromA = Tensor(zeros: [m, n]), fromPacked = Tensor(zeros: [m, n])
            kernel.multiplyColumns(packedA: nil, transA: true, a: weights.data, lda: m, image: image.data, geometry: g,
                                   transposedColumns: false, m: m, beta: 0, c: fromA.data, ldc: n)
            kernel.multiplyColumns(packedA: matrix, a: weights.data, lda: m, image: image.data, geometry: g,
                                   transposedColumns: false, m: m, beta: 0, c: fromPacked.data, ldc: n)
            #expect(fromA.values == fromPacked.values, "\(kernel)")
            #expect(fromA.values.contains { $0 != 0 })
        }
    }

    /// Geometries the packing does not take go to im2col (the layers ask `forColumns` first).
    @Test func otherGeometriesAreNotPackedFromTheImages() {
        var g = Case(images: 1, channels: 2, gridHeight: 8, gridWidth: 8).geometry
        #expect(BFloat16Kernel.packsColumns(of: g))
        g.padding = 0
        #expect(!BFloat16Kernel.packsColumns(of: g))
        g = Case(images: 1, channels: 2, gridHeight: 2, gridWidth: 2).geometry   // 4 cells: not whole blocks
        #expect(!BFloat16Kernel.packsColumns(of: g))
        g = Case(images: 1, channels: 2, gridHeight: 2, gridWidth: 24).geometry
        #expect(!BFloat16Kernel.packsColumns(of: g))
        g = Case(images: 1, channels: 2, gridHeight: 4, gridWidth: 4).geometry
        g.stride = 1
        #expect(!BFloat16Kernel.packsColumns(of: g))
    }
}
