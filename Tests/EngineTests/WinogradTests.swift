@testable import Engine
import NumericTestSupport
import Testing

/// Within Winograd's rounding: 1e-5 of the expected values' largest magnitude (see below).
func expectWinogradNear(_ actual: [Float], _ expected: [Float], _ label: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    let scale = expected.map(abs).max() ?? 1
    expectClose(actual, expected, atol: 1e-5 * scale, rtol: 1e-4, label, sourceLocation: sourceLocation)
}

/// The Winograd forward of 4/2/1 transposed convolutions (ConvTranspose2d+Winograd.swift),
/// checked against the direct scatter-sum and against the layer's own columns path.
///
/// F(4, 2)'s transforms scale by up to 8 and 1/6, so its rounding error is ~10x that of a
/// direct sum: about 1e-6 of the outputs' largest magnitude. The tolerance is set from that
/// scale (a wrong tap or transform coefficient is off by the size of a term, ~1e-1).
@Suite struct WinogradTransposedConvolutionTests {
    func expectNear(_ actual: [Float], _ expected: [Float], _ label: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
        expectWinogradNear(actual, expected, label, sourceLocation: sourceLocation)
    }

    struct Shape: Sendable, CustomTestStringConvertible {
        var batch: Int, inChannels: Int, outChannels: Int, height: Int, width: Int
        var testDescription: String { "\(batch)x\(inChannels)->\(outChannels) \(height)x\(width)" }
    }

    static let shapes = [
        Shape(batch: 2, inChannels: 3, outChannels: 16, height: 4, width: 4),    // channels below one vector
        Shape(batch: 3, inChannels: 20, outChannels: 17, height: 4, width: 8),   // vector + tail, oblong
        Shape(batch: 2, inChannels: 16, outChannels: 32, height: 8, width: 8),   // whole vectors, G's up2 shape
        Shape(batch: 300, inChannels: 8, outChannels: 16, height: 8, width: 8),  // 128 images a chunk: several per thread
    ]

    func layer(_ s: Shape, seed: UInt64) -> ConvTranspose2d {
        let layer = ConvTranspose2d("up", inChannels: s.inChannels, outChannels: s.outChannels,
                                    kernelSize: 4, stride: 2, padding: 1)
        layer.weight.value.copy(from: randomTensor(layer.weight.shape, seed: seed))
        layer.bias!.value.copy(from: randomTensor(layer.bias!.shape, seed: seed + 1))
        return layer
    }

    @Test(arguments: shapes)
    func matchesDirectScatter(_ s: Shape) {
        #expect(WinogradTransposedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, outChannels: s.outChannels,
                                                      height: s.height, width: s.width))
        let up = layer(s, seed: 31)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 33)
        let y = up.forward(x, algorithm: .winograd)
        #expect(y.shape == [s.batch, s.outChannels, 2 * s.height, 2 * s.width])
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        expectNear(y.values, expected, "Winograd \(s.testDescription)")
    }

    @Test func agreesWithColumnsAndBackwardStillMatchesFiniteDifferences() {
        let s = Self.shapes[1]
        let up = layer(s, seed: 41)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 43)
        let winograd = up.forward(x, algorithm: .winograd).values
        expectNear(up.forward(x, algorithm: .columns).values, winograd, "columns vs Winograd")
        // The backward pass reads what forward saved: it must not care which path ran.
        checkLayerGradients(up, input: x, parameters: [up.weight], seed: 45, maxElements: 30) {
            up.forward(x, algorithm: .winograd)
        } backward: { up.backward($0) }
    }

    /// The weight transform's two orders of writing (filter by filter; a fifth of the products
    /// at a time, for large layers) write the same values, row-major and in panels.
    @Test(arguments: [false, true])
    func theWeightTransformsOrdersAgree(packed: Bool) {
        let (cin, cout) = (24, 32)
        let w = randomTensor([cin, cout, 4, 4], seed: 61)
        let count = WinogradTransposedConvolution.transformedWeightCount(inChannels: cin, outChannels: cout)
        var byFilters = [Float](repeating: .nan, count: count), byFifths = byFilters
        w.values.withUnsafeBufferPointer { weights in
            byFilters.withUnsafeMutableBufferPointer {
                WinogradTransposedConvolution.transformWeights(weights.baseAddress!, inChannels: cin, outChannels: cout, packed: packed,
                                                               byFifths: false, into: $0.baseAddress!)
            }
            byFifths.withUnsafeMutableBufferPointer {
                WinogradTransposedConvolution.transformWeights(weights.baseAddress!, inChannels: cin, outChannels: cout, packed: packed,
                                                               byFifths: true, into: $0.baseAddress!)
            }
        }
        #expect(!byFifths.contains { $0.isNaN }, "every product written")
        #expect(byFifths == byFilters)
        #expect(WinogradTransposedConvolution.fifthsFromBytes > 4 * 25 * 128 * 64 * 4 && WinogradTransposedConvolution.fifthsFromBytes <= 4 * 25 * 256 * 128 * 4,
                "G's 128 -> 64 filter by filter, the 256 x 128 layers by fifths")
    }

    /// The transformed weights are kept between calls: a weight changed in place (as an
    /// optimiser step does) must be seen by the next forward.
    @Test func seesWeightsChangedInPlace() {
        let s = Self.shapes[0]
        let up = layer(s, seed: 51)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 53)
        _ = up.forward(x, algorithm: .winograd)
        up.weight.value.data[7] += 0.5
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        expectNear(up.forward(x, algorithm: .winograd).values, expected, "after a weight changed")
    }

    @Test func oddSizesAndImageLayersTakeColumns() {
        #expect(!WinogradTransposedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, outChannels: 16, height: 6, width: 4))
        #expect(!WinogradTransposedConvolution.applies(kernelSize: 4, stride: 2, padding: 1, outChannels: 3, height: 16, width: 16))
        #expect(!WinogradTransposedConvolution.applies(kernelSize: 3, stride: 2, padding: 1, outChannels: 16, height: 4, width: 4))
        let s = Shape(batch: 2, inChannels: 4, outChannels: 16, height: 5, width: 3)
        let up = layer(s, seed: 61)
        let x = randomTensor([2, 4, 5, 3], seed: 63)
        expectClose(up.forward(x, algorithm: .winograd).values,
                    directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1),
                    "odd size")
    }
}

@Suite struct BlockTransposeTests {
    /// 8x8 register blocks plus both edges: 19 x 21 has a 3-row and a 5-column remainder.
    @Test(arguments: [(8, 8), (19, 21), (16, 64), (3, 5)])
    func transposes(_ size: (Int, Int)) {
        let (rows, columns) = size
        let a = randomTensor([rows, columns + 2], seed: 71)   // rows 2 floats longer than used
        let b = Tensor(zeros: [columns, rows + 1])              // rows of B 1 float apart from the next
        transpose(a.data, rows: rows, columns: columns, rowStride: columns + 2) { c in
            b.data + c * (rows + 1)
        }
        for c in 0..<columns {
            for r in 0..<rows {
                #expect(b.data[c * (rows + 1) + r] == a.data[r * (columns + 2) + c], "(\(r), \(c))")
            }
            #expect(b.data[c * (rows + 1) + rows] == 0, "the gap after row \(c) stays untouched")
        }
    }
}
