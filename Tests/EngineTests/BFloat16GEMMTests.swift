@testable import Engine
import NumericTestSupport
import Testing

/// The bfloat16 GEMM kernel (Sources/CBFloat16) and the Winograd forward that uses it.
///
/// The kernel's contract is exact: operands rounded to bfloat16, products summed in Float. So
/// it is checked against a Double sum of operands rounded here, by bit arithmetic written
/// independently of the C code, to Float summation's accuracy (~1e-6 of the terms' sizes); a
/// wrong pair order or column block is off by whole terms. On a CPU without AVX512-BF16 only
/// the rounding is tested (nothing takes the kernel there).
@Suite struct BFloat16GEMMTests {
    /// Round to nearest, ties to even, by the bits: the reference rounding.
    static func bfloat16(_ value: Float) -> Float {
        let bits = value.bitPattern
        let dropped = bits & 0xffff, kept = bits & 0xffff_0000
        let roundUp = dropped > 0x8000 || (dropped == 0x8000 && (kept >> 16) & 1 == 1)
        return Float(bitPattern: roundUp ? kept &+ 0x1_0000 : kept)
    }

    @Test func roundsToNearestWithTiesToEven() {
        let ulp = Float(1) / 128                       // bfloat16 keeps 7 fraction bits
        #expect(BFloat16GEMM.rounded(1) == 1)
        #expect(BFloat16GEMM.rounded(1 + ulp / 2) == 1, "a tie goes to the even neighbour, 1")
        #expect(BFloat16GEMM.rounded(1 + 3 * ulp / 2) == 1 + 2 * ulp, "a tie goes to the even neighbour, 1 + 2 ulp")
        #expect(BFloat16GEMM.rounded(1 + ulp / 2 + ulp / 64) == 1 + ulp, "just above half rounds up")
        #expect(BFloat16GEMM.rounded(-3.14159) == -3.140625)
        #expect(BFloat16GEMM.rounded(0) == 0 && BFloat16GEMM.rounded(1e-30) == Self.bfloat16(1e-30))
        let values = randomTensor([1000], seed: 3, range: -100...100).values
        #expect(values.map(BFloat16GEMM.rounded) == values.map(Self.bfloat16))
    }

    struct Shape: Sendable, CustomTestStringConvertible {
        var m: Int, n: Int, k: Int
        var testDescription: String { "\(m)x\(k) . \(k)x\(n)" }
    }

    /// Remainders of every block: rows (4 at a time), columns (64, then 16, then a partial
    /// vector), and an odd k (the last pair half zero); G's two Winograd shapes.
    static let shapes = [Shape(m: 1, n: 1, k: 1), Shape(m: 3, n: 17, k: 5), Shape(m: 7, n: 37, k: 51),
                         Shape(m: 5, n: 200, k: 33), Shape(m: 20, n: 128, k: 256), Shape(m: 40, n: 64, k: 128)]

    @Test(.enabled(if: BFloat16GEMM.isAvailable, "this CPU has no AVX512-BF16: the bfloat16 kernel is not used here"), arguments: shapes)
    func multipliesRoundedOperandsExactly(_ s: Shape) {
        let (lda, ldb, ldc) = (s.k + 3, s.n + 5, s.n + 7)   // strides longer than the rows
        let a = randomTensor([s.m, lda], seed: 11), b = randomTensor([s.k, ldb], seed: 12)
        let c = Tensor(zeros: [s.m, ldc])
        for i in 0..<c.count { c.data[i] = 42 }
        var packed = [UInt16](repeating: 0, count: BFloat16GEMM.packedCount(k: s.k, n: s.n))
        var scratch = [UInt16](repeating: 0, count: BFloat16GEMM.scratchCount(m: s.m, k: s.k))
        BFloat16GEMM.pack(b.data, ldb: ldb, k: s.k, n: s.n, into: &packed)
        BFloat16GEMM.multiply(m: s.m, n: s.n, k: s.k, a: a.data, lda: lda, packed: packed, c: c.data, ldc: ldc,
                              scratch: &scratch)
        for i in 0..<s.m {
            for j in 0..<ldc {
                guard j < s.n else {
                    #expect(c[i * ldc + j] == 42, "(\(i), \(j)) past the last column was written")
                    continue
                }
                var sum = 0.0, size = 0.0
                for p in 0..<s.k {
                    let term = Double(Self.bfloat16(a[i * lda + p])) * Double(Self.bfloat16(b[p * ldb + j]))
                    sum += term
                    size += abs(term)
                }
                #expect(abs(Double(c[i * ldc + j]) - sum) <= 1e-6 * size + 1e-30, "(\(i), \(j)): \(c[i * ldc + j]) vs \(sum)")
            }
        }
    }

    /// Against Float operands the error is bfloat16's: a few 1e-3 of the terms' sizes.
    @Test(.enabled(if: BFloat16GEMM.isAvailable, "this CPU has no AVX512-BF16: the bfloat16 kernel is not used here"))
    func staysWithinBFloat16sPrecisionOfTheFloatProduct() {
        let (m, n, k) = (20, 128, 256)
        let a = randomTensor([m, k], seed: 21), b = randomTensor([k, n], seed: 22)
        let c = Tensor(zeros: [m, n]), exact = Tensor(zeros: [m, n])
        var packed = [UInt16](repeating: 0, count: BFloat16GEMM.packedCount(k: k, n: n))
        var scratch = [UInt16](repeating: 0, count: BFloat16GEMM.scratchCount(m: m, k: k))
        BFloat16GEMM.pack(b.data, ldb: n, k: k, n: n, into: &packed)
        BFloat16GEMM.multiply(m: m, n: n, k: k, a: a.data, lda: k, packed: packed, c: c.data, ldc: n, scratch: &scratch)
        BLAS.gemmNaive(m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: exact.data, ldc: n)
        let error = zip(c.values, exact.values).map { abs($0 - $1) }.max()!
        #expect(error > 0, "no rounding at all: the operands were not rounded to bfloat16")
        #expect(error < 0.02 * Float(k).squareRoot() / 4, "error \(error)")   // terms ~1/3 each, 2^-8 relative
    }
}

/// The Winograd forward with bfloat16 products (`.winogradBFloat16`).
@Suite(.enabled(if: BFloat16GEMM.isAvailable, "this CPU has no AVX512-BF16: the bfloat16 kernel is not used here")) struct BFloat16WinogradTests {
    func layer(_ s: WinogradTransposedConvolutionTests.Shape, seed: UInt64) -> ConvTranspose2d {
        WinogradTransposedConvolutionTests().layer(s, seed: seed)
    }

    /// A layer whose weights are multiples of 36 and inputs and bias small integers: then every
    /// transformed weight (G g G^T divides by up to 6 twice) and input is an integer under 256,
    /// exact in bfloat16, and every sum an exact Float. So the bfloat16 path must give the direct sum
    /// exactly: a wrong tap, pair or transform shows at full size.
    func integerLayer(_ s: WinogradTransposedConvolutionTests.Shape, seed: UInt64) -> (ConvTranspose2d, Tensor) {
        let up = layer(s, seed: seed)
        var rng = RandomGenerator(seed: seed)
        for i in 0..<up.weight.value.count { up.weight.value.data[i] = Float(36 * (rng.int(below: 3) - 1)) }
        for i in 0..<up.bias!.value.count { up.bias!.value.data[i] = Float(rng.int(below: 5) - 2) }
        let x = Tensor(zeros: [s.batch, s.inChannels, s.height, s.width])
        for i in 0..<x.count { x.data[i] = Float(rng.int(below: 5) - 2) }
        return (up, x)
    }

    @Test(arguments: WinogradTransposedConvolutionTests.shapes)
    func isExactWhereBFloat16IsExact(_ s: WinogradTransposedConvolutionTests.Shape) {
        let (up, x) = integerLayer(s, seed: 31)
        let y = up.forward(x, algorithm: .winogradBFloat16).values
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        #expect(expected.map(abs).max()! > 100, "the test data is too small to show a wrong term")
        expectClose(y, expected, atol: 1e-3, rtol: 0, "bfloat16 Winograd \(s.testDescription)")
    }

    /// On values bfloat16 cannot hold, the result is rounded: it differs from the Float path's,
    /// by bfloat16's precision carried through the transforms (they scale by up to 8 and 1/6:
    /// a few percent of the largest output on random data; in a generator, whose BatchNorms
    /// and tanh follow, under a grey level on average, see ModelShapeTests).
    @Test func roundsWhereBFloat16CannotHoldTheValues() {
        let s = WinogradTransposedConvolutionTests.shapes[2]
        let up = layer(s, seed: 35)
        let x = randomTensor([s.batch, s.inChannels, s.height, s.width], seed: 37)
        let reduced = up.forward(x, algorithm: .winogradBFloat16).values
        let full = up.forward(x, algorithm: .winograd).values
        let scale = full.map(abs).max()!
        let error = zip(reduced, full).map { abs($0 - $1) }.max()!
        #expect(error > 0 && error < 0.08 * scale, "error \(error) of \(scale)")
    }

    /// The packed weights are kept between calls: a weight changed in place must be seen.
    @Test func seesWeightsChangedInPlace() {
        let s = WinogradTransposedConvolutionTests.shapes[0]
        let (up, x) = integerLayer(s, seed: 51)
        _ = up.forward(x, algorithm: .winogradBFloat16)
        up.weight.value.data[7] += 36
        let expected = directTransposedConvolution(x, weight: up.weight.value, bias: up.bias!.value, stride: 2, padding: 1)
        expectClose(up.forward(x, algorithm: .winogradBFloat16).values, expected, atol: 1e-3, rtol: 0, "after a weight changed")
    }
}

/// The convolution forward with bfloat16 products (`Conv2d.forward(_:bfloat16:)`, the judge's).
@Suite(.enabled(if: BFloat16GEMM.isAvailable, "this CPU has no AVX512-BF16: the bfloat16 kernel is not used here")) struct BFloat16ConvolutionTests {
    func layer(seed: UInt64, integers: Bool) -> (Conv2d, Tensor) {
        let conv = Conv2d("c", inChannels: 3, outChannels: 22, kernelSize: 4, stride: 2, padding: 1)
        var rng = RandomGenerator(seed: seed)
        let x = Tensor(zeros: [5, 3, 12, 12])
        for tensor in [conv.weight.value, conv.bias!.value, x] {
            for i in 0..<tensor.count {
                tensor.data[i] = integers ? Float(rng.int(below: 9) - 4) : Float(rng.uniform()) * 2 - 1
            }
        }
        return (conv, x)
    }

    /// Small integers are exact in bfloat16 and in Float sums: the same result as Float, bias
    /// included. 22 output channels leave two rows past the kernel's 4-row blocks, and 5 images
    /// of 6x6 outputs (180 columns) a partial last vector.
    @Test func isExactWhereBFloat16IsExact() {
        let (conv, x) = layer(seed: 3, integers: true)
        let reduced = conv.forward(x, bfloat16: true).values
        let full = conv.forward(x).values
        #expect(full.map(abs).max()! > 20)
        #expect(reduced == full)
    }

    /// In a context whose products go to a training kernel (generation's), the judge's
    /// convolutions take it and their columns packed from x (`BFloat16Kernel.multiplyColumns`):
    /// exact again where bfloat16 is (a 16 x 16 input: an 8 x 8 grid the packing takes).
    @Test(.enabled(if: BFloat16Kernel.fastest != nil, "this CPU has no bfloat16 training kernel"))
    func inABFloat16ContextTheColumnsComePackedFromTheImages() {
        let conv = Conv2d("c", inChannels: 3, outChannels: 22, kernelSize: 4, stride: 2, padding: 1)
        var rng = RandomGenerator(seed: 5)
        let x = Tensor(zeros: [5, 3, 16, 16])
        for tensor in [conv.weight.value, conv.bias!.value, x] {
            for i in 0..<tensor.count { tensor.data[i] = Float(rng.int(below: 9) - 4) }
        }
        let full = conv.forward(x).values
        let geometry = ConvGeometry(batch: 5, channels: 3, height: 16, width: 16, kernelHeight: 4, kernelWidth: 4,
                                    stride: 2, padding: 1, gridHeight: 8, gridWidth: 8)
        let reduced = ComputeContext(threads: 2, products: .bfloat16).run {
            #expect(BFloat16Kernel.forColumns(of: geometry, m: 22, transposed: false) != nil)
            return conv.forward(x, bfloat16: true).values
        }
        #expect(full.map(abs).max()! > 20)
        #expect(reduced == full)
    }

    @Test func roundsWhereBFloat16CannotHoldTheValues() {
        let (conv, x) = layer(seed: 4, integers: false)
        let reduced = conv.forward(x, bfloat16: true).values
        let full = conv.forward(x).values
        let error = zip(reduced, full).map { abs($0 - $1) }.max()!
        #expect(error > 0 && error < 0.02 * full.map(abs).max()!, "error \(error)")
    }
}
