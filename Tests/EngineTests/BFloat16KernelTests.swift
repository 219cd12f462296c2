@testable import Engine
import Foundation
import NumericTestSupport
import Testing

/// The two bfloat16 training kernels (Sources/CBFloat16/AMXGEMM.c, DotProductGEMM.c, on the
/// packing of BFloat16Tiles.c) and `BLAS`'s choice of them.
///
/// Their contract is exact, as the sampling kernel's: operands rounded to bfloat16, products
/// summed in Float. So each is checked against a Double sum of operands rounded here by bit
/// arithmetic (`BFloat16GEMMTests.bfloat16`), to Float summation's accuracy; a wrong tile,
/// pair order, transpose or edge is off by whole terms. On a CPU without a kernel its tests
/// are skipped with the reason; nothing takes the kernel there (`BLASTests` covers OpenBLAS).
/// A CPU with AMX has AVX512-BF16 too, so there both kernels are checked.
@Suite struct BFloat16KernelTests {
    static let noAMX = "this CPU has no AMX (or Linux did not grant its tiles): the AMX kernel is not used here"
    static let noDotProducts = "this CPU has no AVX512-BF16: the dot-product kernel is not used here"
    static let noKernel = "this CPU has no bfloat16 kernel: products stay Float here"
    static let noKernelToTest = "this CPU runs neither bfloat16 kernel (AMX tiles, AVX512-BF16)"
    /// The kernels this CPU runs, whichever its contexts choose (`BFloat16Payoff`): the tests of
    /// a kernel itself run each, where the tests of a context's choice need `fastest`.
    static var available: [BFloat16Kernel] { BFloat16Kernel.allCases.filter(\.isAvailable) }

    struct Case: Sendable, CustomTestStringConvertible {
        var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, alpha: Float, beta: Float
        var testDescription: String {
            "\(transA ? "T" : "N")\(transB ? "T" : "N") \(m)x\(n)x\(k) alpha \(alpha) beta \(beta)"
        }
    }

    /// Every edge: partial row, column and k blocks (16, 16, 32), one tile, 2 x 2 tiles with
    /// and without remainders; every transpose; beta 0, 1 (c's whole tiles loaded into the
    /// accumulators) and other scalings (through the edge path).
    static let cases: [Case] = {
        let shapes = [(1, 1, 1), (16, 16, 32), (17, 33, 65), (32, 32, 64), (64, 48, 96), (33, 16, 31),
                      (5, 70, 200), (128, 100, 300)]
        var cases: [Case] = []
        for (index, (m, n, k)) in shapes.enumerated() {
            for transA in [false, true] {
                for transB in [false, true] {
                    let scaling: [(Float, Float)] = [(1, 0), (1, 1), (0.5, -2)]
                    let (alpha, beta) = scaling[(index + (transA ? 1 : 0) + (transB ? 2 : 0)) % 3]
                    cases.append(Case(m: m, n: n, k: k, transA: transA, transB: transB, alpha: alpha, beta: beta))
                }
            }
        }
        return cases
    }()

    /// c as `BLAS.gemm` would leave it with the operands rounded to bfloat16, in Double; and the
    /// size of its terms (for the tolerance).
    static func reference(_ s: Case, a: Tensor, lda: Int, b: Tensor, ldb: Int, c: [Float], ldc: Int,
                          i: Int, j: Int) -> (value: Double, size: Double) {
        var sum = 0.0, size = 0.0
        for p in 0..<s.k {
            let x = BFloat16GEMMTests.bfloat16(s.transA ? a[p * lda + i] : a[i * lda + p])
            let y = BFloat16GEMMTests.bfloat16(s.transB ? b[j * ldb + p] : b[p * ldb + j])
            let term = Double(x) * Double(y)
            sum += term
            size += abs(term)
        }
        let old = Double(c[i * ldc + j])
        return (Double(s.alpha) * sum + Double(s.beta) * old, abs(Double(s.alpha)) * size + abs(Double(s.beta) * old))
    }

    @Test(.enabled(if: BFloat16Kernel.amxTiles.isAvailable, Comment(rawValue: noAMX)), arguments: cases)
    func amxTilesMultiplyRoundedOperandsExactly(_ s: Case) {
        expectExact(.amxTiles, s)
    }

    @Test(.enabled(if: BFloat16Kernel.dotProducts.isAvailable, Comment(rawValue: noDotProducts)), arguments: cases + wideCases)
    func dotProductsMultiplyRoundedOperandsExactly(_ s: Case) {
        expectExact(.dotProducts, s)
    }

    /// The dot-product kernel's own edges: micro-tiles of 8 rows (the second half of a row
    /// block, rows past m in it) by 3 column blocks, with remainders of 1 and 2 blocks.
    static let wideCases: [Case] = [
        Case(m: 8, n: 48, k: 64, transA: false, transB: false, alpha: 1, beta: 0),
        Case(m: 24, n: 80, k: 33, transA: false, transB: true, alpha: 1, beta: 1),
        Case(m: 41, n: 97, k: 130, transA: true, transB: false, alpha: -0.5, beta: 2),
        Case(m: 9, n: 113, k: 2, transA: true, transB: true, alpha: 1, beta: 0),
    ]

    func expectExact(_ kernel: BFloat16Kernel, _ s: Case) {
        for packedFirst in [false, true] {
            let lda = (s.transA ? s.m : s.k) + 3, ldb = (s.transB ? s.k : s.n) + 5, ldc = s.n + 7
            let a = randomTensor([s.transA ? s.k : s.m, lda], seed: 11)
            let b = randomTensor([s.transB ? s.n : s.k, ldb], seed: 12)
            let c = randomTensor([s.m, ldc], seed: 13)
            let before = c.values
            if packedFirst {
                guard BFloat16Kernel.suits(m: s.m, n: 16, k: s.k) else { continue }   // too thin: BLAS reads a itself
                let packed = PackedLeftOperand()
                // For this kernel, whichever this CPU's contexts choose (BFloat16Payoff).
                let matrix = packed.pack(transA: s.transA, m: s.m, k: s.k, a: a.data, lda: lda, for: kernel)
                guard let matrix else {
                    Issue.record("an operand that suits the tiles was not packed")
                    continue
                }
                kernel.multiply(packedA: matrix, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha,
                                b: b.data, ldb: ldb, beta: s.beta, c: c.data, ldc: ldc)
            } else {
                kernel.multiply(transA: s.transA, transB: s.transB, m: s.m, n: s.n, k: s.k, alpha: s.alpha,
                                a: a.data, lda: lda, b: b.data, ldb: ldb, beta: s.beta, c: c.data, ldc: ldc)
            }
            for i in 0..<s.m {
                for j in 0..<ldc {
                    guard j < s.n else {
                        #expect(c[i * ldc + j] == before[i * ldc + j], "(\(i), \(j)) past the last column was written")
                        continue
                    }
                    let (value, size) = Self.reference(s, a: a, lda: lda, b: b, ldb: ldb, c: before, ldc: ldc, i: i, j: j)
                    #expect(abs(Double(c[i * ldc + j]) - value) <= 1e-6 * size + 1e-30,
                            "\(kernel) (\(i), \(j)), packed first \(packedFirst): \(c[i * ldc + j]) vs \(value)")
                }
            }
        }
    }

    /// `BLAS.gemm` takes the fastest kernel only in a context that asks for bfloat16: there its
    /// result is the rounded product's (and differs from the Float one by bfloat16's ~1e-3), in
    /// the default context it is OpenBLAS's Float product.
    @Test(.enabled(if: BFloat16Kernel.fastest != nil, Comment(rawValue: noKernel)))
    func blasUsesTheKernelOnlyWhenTheContextAsksForBFloat16() {
        let (m, n, k) = (64, 96, 256)
        let a = randomTensor([m, k], seed: 21), b = randomTensor([k, n], seed: 22)
        let float = Tensor(zeros: [m, n]), reduced = Tensor(zeros: [m, n]), exact = Tensor(zeros: [m, n])
        BLAS.gemmNaive(m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: exact.data, ldc: n)
        BLAS.gemm(m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: float.data, ldc: n)
        ComputeContext(threads: 2, products: .bfloat16).run {
            #expect(ComputeContext.current.bfloat16Kernel == BFloat16Kernel.fastest)
            BLAS.gemm(m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: reduced.data, ldc: n)
        }
        var floatError: Float = 0, reducedError: Float = 0, scale: Float = 0
        for i in 0..<exact.count {
            floatError = max(floatError, abs(float[i] - exact[i]))
            reducedError = max(reducedError, abs(reduced[i] - exact[i]))
            scale = max(scale, abs(exact[i]))
        }
        #expect(floatError < 1e-5 * scale, "the default context's product is Float's")
        #expect(reducedError > 1e-4 * scale, "a bfloat16 context's product shows bfloat16's rounding")
        #expect(reducedError < 2e-2 * scale, "and no more than bfloat16's rounding")
    }

    /// Each thread keeps its packed operands between products; a thread that ends frees them.
    /// 48 threads, one after another, each packing 8 MB: kept, they would hold 384 MB.
    @Test(.enabled(if: !available.isEmpty, Comment(rawValue: noKernelToTest)))
    func threadsThatEndLeaveNoPackedOperandsBehind() throws {
        let kernel = try #require(Self.available.first)
        let (m, n, k) = (16, 2048, 2048)
        let a = randomTensor([m, k], seed: 31), b = randomTensor([k, n], seed: 32), c = Tensor(zeros: [m, n])
        func residentMegabytes() throws -> Double {
            let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
            return Double(fields[1])! * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
        }
        func productOnAThreadOfItsOwn() {
            let finished = DispatchSemaphore(value: 0)
            let thread = Thread {
                kernel.multiply(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.data, lda: k,
                                b: b.data, ldb: n, beta: 0, c: c.data, ldc: n)
                finished.signal()
            }
            thread.start()
            finished.wait()
            usleep(2_000)   // the thread's own exit (and its destructors) after the signal
        }
        productOnAThreadOfItsOwn()
        let before = try residentMegabytes()
        for _ in 0..<48 { productOnAThreadOfItsOwn() }
        let growth = try residentMegabytes() - before
        #expect(growth < 128, "resident memory grew by \(Int(growth)) MB over 48 threads")
    }
}
