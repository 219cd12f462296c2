@testable import GAN
import Testing

/// The loss curve's smoothing windows: every step in exactly one window, in order, none
/// shorter than the rest (a short last window drew a spike at the right edge after a run
/// resumed for a few steps).
@Suite struct LossCurveTests {
    @Test(arguments: [0, 1, 199, 200, 401, 1_000, 1_003, 1_199, 20_031])
    func windowsCoverEveryStepOnceWithNoneShort(count: Int) {
        let windows = LossCurve.smoothingWindows(count: count)
        let window = max(1, count / 200)
        #expect(windows.first?.lowerBound ?? 0 == 0)
        #expect(windows.last?.upperBound ?? 0 == count)
        for (a, b) in zip(windows, windows.dropFirst()) { #expect(a.upperBound == b.lowerBound) }
        for range in windows {
            #expect(range.count >= window && range.count < 2 * window || window == 1 && range.count == 1)
        }
        #expect(count == 0 || (200...400).contains(windows.count) || count < 200 && windows.count == count)
    }

    @Test func aFewResumedStepsAreAveragedWithTheStepsBeforeThem() {
        // 1,000 steps at loss 1, then 3 at loss 10: the last window is 8 steps, not 3.
        let windows = LossCurve.smoothingWindows(count: 1_003)
        #expect(windows.last == 995..<1_003)
    }
}
