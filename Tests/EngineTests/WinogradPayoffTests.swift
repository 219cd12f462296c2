@testable import Engine
import Testing

/// Where training's 4/2/1 convolutions go by Winograd follows the measured width gain
/// (`WinogradPayoff`): on a Zen 4 in FP32 Winograd made the step 1.17-1.26x the columns path,
/// whose AVX-512 products there run at the AVX2 rate; on an Intel core with two 512-bit FMAs a
/// cycle the columns path won (2026-12-03, 2026-12-04).
@Suite struct WinogradPayoffTests {
    @Test func theRuleTakesWinogradOnlyWhereAVX512GainsLittle() {
        #expect(WinogradPayoff.paysOff(widthGain: 1.0), "Zen 4's 1.0x")
        #expect(WinogradPayoff.paysOff(widthGain: 1.32), "Zen 4 when its AVX2 kernel runs slow")
        #expect(!WinogradPayoff.paysOff(widthGain: 1.6), "an Intel server core's ~1.6x")
        #expect(!WinogradPayoff.paysOff(widthGain: 2.0))
        #expect(!WinogradPayoff.paysOff(widthGain: WinogradPayoff.threshold))
    }

    @Test func theMeasurementIsTakenWhereBothKernelsRun() throws {
        guard PanelKernel.avx512.isAvailable && PanelKernel.avx2.isAvailable else {
            #expect(WinogradPayoff.widthGain == nil)
            return
        }
        let gain = try #require(WinogradPayoff.widthGain)
        #expect(gain.isFinite && gain > 0.3 && gain < 4, "\(gain)")
    }

    /// The context's default follows the CPU: AVX2 only (or no panel kernel) takes Winograd;
    /// half-precision products keep the columns; otherwise the measurement decides.
    @Test func theDefaultFollowsTheCPU() {
        let expected: Bool
        if !PanelKernel.avx512.isAvailable {
            expected = true
        } else if PanelKernel.avx512Half.isAvailable {
            expected = false
        } else {
            expected = WinogradPayoff.paysOff(widthGain: WinogradPayoff.widthGain!)
        }
        #expect(ComputeContext.winogradPaysOff == expected)
        let context = ComputeContext(threads: 1, products: .bfloat16)
        #expect(context.winogradConvolutions == (BFloat16Kernel.fastest == nil && expected))
        #expect(!ComputeContext(threads: 1, products: .float32).winogradConvolutions, "--fp32 keeps the columns path")
    }
}
