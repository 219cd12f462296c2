@testable import Engine
import Testing

/// Which bfloat16 kernel products go to follows the measured speed (`BFloat16Payoff`): on an
/// Intel core with two Float FMAs a cycle the AVX512-BF16 kernels ran at 0.6-0.76x OpenBLAS,
/// and bfloat16 cost speed as well as precision there (2026-12-03).
@Suite struct BFloat16PayoffTests {
    @Test func theRuleTakesTheKernelOnlyWellAboveFloat() {
        #expect(BFloat16Payoff.paysOff(speedup: 2.0), "Zen 4's 1.9-2.2x")
        #expect(!BFloat16Payoff.paysOff(speedup: 0.62), "Emerald Rapids' 0.61-0.76x")
        #expect(!BFloat16Payoff.paysOff(speedup: 1.1), "within a busy machine's noise of Float")
        #expect(BFloat16Payoff.paysOff(speedup: BFloat16Payoff.threshold))
    }

    @Test func theMeasurementIsTakenWhereTheKernelRuns() throws {
        guard BFloat16GEMM.isAvailable else {
            #expect(BFloat16Payoff.speedup == nil && !BFloat16Payoff.dotProductsPayOff)
            return
        }
        let speedup = try #require(BFloat16Payoff.speedup)
        #expect(speedup.isFinite && speedup > 0.1 && speedup < 10, "\(speedup)")
        // A second measurement agrees about the side of the line (the margins are 0.6x and 2x).
        #expect(BFloat16Payoff.paysOff(speedup: BFloat16Payoff.measure()) == BFloat16Payoff.dotProductsPayOff)
    }

    /// Training's kernel and sampling's path follow the measurement; AMX is always taken.
    @Test func theKernelsFollowTheMeasurement() {
        if BFloat16Kernel.amxTiles.isAvailable {
            #expect(BFloat16Kernel.fastest == .amxTiles)
        } else {
            #expect(BFloat16Kernel.fastest == (BFloat16Payoff.dotProductsPayOff ? .dotProducts : nil))
        }
        let sampling = ComputeContext(threads: 1, products: .float32).run { ConvTranspose2d.ForwardAlgorithm.winogradBFloat16.resolved }
        #expect(sampling == (BFloat16Payoff.dotProductsPayOff ? .winogradBFloat16 : .winograd))
        #expect(ConvTranspose2d.ForwardAlgorithm.winograd.resolved == .winograd && ConvTranspose2d.ForwardAlgorithm.columns.resolved == .columns)
    }
}
