import FileTestSupport
import Foundation
@testable import GAN
import Imaging
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

/// Damaged losses.csv and heldout.csv files (read back at every resumed run, and drawn):
/// each is read and drawn, never a crash.
@Suite struct DamagedHistoryTests {
    @Test func damagedHistoriesAreReadAndDrawn() throws {
        let folder = NSTemporaryDirectory() + "synthd-history-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let state = try StateFolder(folder)
        try state.writeHistory((1...300).map { LossPoint(step: $0, discriminator: 1 + Float($0 % 7) / 10, generator: 0.5,
                                                            augmentationProbability: Float($0) / 300) })
        try state.writeHeldOutScores((1...12).map { HeldOutScore(step: $0 * 250, .init(distance: 2 - Double($0) / 10, standardError: 0.05)) },
                                     chosenStep: 2_500)
        let history = try Array(Data(contentsOf: URL(fileURLWithPath: state.historyPath)))
        let scores = try Array(Data(contentsOf: URL(fileURLWithPath: state.heldOutScoresPath)))
        var points = 0
        for (i, (losses, heldOut)) in zip(Mutations(of: history, count: 300, seed: 500), Mutations(of: scores, count: 300, seed: 501)).enumerated() {
            try Data(losses).write(to: URL(fileURLWithPath: state.historyPath))
            try Data(heldOut).write(to: URL(fileURLWithPath: state.heldOutScoresPath))
            let read = state.readHistory()
            points += read.count
            let picture = LossCurve.render(read)
            let curve = HeldOutCurve.render(state.readHeldOutScores(), chosenStep: 2_500)
            #expect(picture.width > 0 && curve.width > 0, "mutant \(i)")
        }
        #expect(points > 300 * 100, "rows survive a damage elsewhere in the file (truncations aside; \(points) read)")
    }
}
