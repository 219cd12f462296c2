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

    /// A long history is thinned to the limit: the newest half step by step, older steps
    /// averaged in pairs (at the later step), the order and the last step kept; a short one
    /// is left alone.
    @Test func aLongHistoryIsThinnedToTheLimitOldestFirst() {
        let history = (1...10_000).map { LossPoint(step: $0, discriminator: Float($0 % 2), generator: Float($0), augmentationProbability: 0.5) }
        #expect(LossPoint.thinned(history, toAtMost: 10_000) == history)
        let thinned = LossPoint.thinned(history, toAtMost: 1_000)
        #expect(thinned.count <= 1_000 && thinned.count > 500, "\(thinned.count)")
        #expect(Array(thinned.suffix(500)) == Array(history.suffix(500)), "the newest half as it was")
        #expect(zip(thinned, thinned.dropFirst()).allSatisfy { $0.step < $1.step } && thinned.last?.step == 10_000)
        // 9,500 older steps in at most 500 points: 19 or more steps a point, averaged.
        let first = thinned[0]
        #expect(first.step >= 16 && first.discriminator == 0.5 && first.augmentationProbability == 0.5, "\(first)")
        #expect(first.generator == Float(1 + first.step) / 2, "the mean of steps 1...\(first.step): \(first.generator)")
        // A million steps (a GPU's twenty minutes) come down to the limit.
        let million = (1...1_000_000).map { LossPoint(step: $0, discriminator: 1, generator: 2) }
        let kept = LossPoint.thinned(million, toAtMost: LossPoint.historyLimit)
        #expect(kept.count <= LossPoint.historyLimit && kept.last?.step == 1_000_000 && kept.allSatisfy { $0.discriminator == 1 })
    }

    @Test func aFewResumedStepsAreAveragedWithTheStepsBeforeThem() {
        // 1,000 steps at loss 1, then 3 at loss 10: the last window is 8 steps, not 3.
        let windows = LossCurve.smoothingWindows(count: 1_003)
        #expect(windows.last == 995..<1_003)
    }
}

/// losses.csv's optional columns: written only when some point has them, read back by the
/// header's names (a file of an older synthd, with the probability as the fourth column or
/// none, reads as it did), and drawn.
@Suite struct LossHistoryColumnsTests {
    @Test func optionalColumnsRoundTripByTheirNames() throws {
        let folder = NSTemporaryDirectory() + "synthd-history-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let state = try StateFolder(folder)
        let kinds: [[LossPoint]] = [
            (1...5).map { LossPoint(step: $0, discriminator: 1, generator: 2) },
            (1...5).map { LossPoint(step: $0, discriminator: 1, generator: 2, augmentationProbability: Float($0) / 10) },
            (1...5).map { LossPoint(step: $0, discriminator: 1, generator: 2, pairSpread: 0.25 + Float($0)) },
            (1...5).map { LossPoint(step: $0, discriminator: 1, generator: 2, augmentationProbability: 0.5, pairSpread: Float($0)) },
        ]
        for history in kinds {
            try state.writeHistory(history)
            #expect(state.readHistory() == history)
            #expect(LossCurve.render(history).width > 0)
        }
        let header = { try String(contentsOfFile: state.historyPath, encoding: .utf8).prefix { $0 != "\n" } }
        #expect(try header() == "step,discriminator_loss,generator_loss,augmentation_probability,pair_spread")
        try state.writeHistory(kinds[2])
        #expect(try header() == "step,discriminator_loss,generator_loss,pair_spread")
        // As an older synthd wrote them.
        try Data("step,discriminator_loss,generator_loss,augmentation_probability\n1,0.5,1.5,0.25\n2,0.5,1.5,\n".utf8)
            .write(to: URL(fileURLWithPath: state.historyPath))
        #expect(state.readHistory() == [LossPoint(step: 1, discriminator: 0.5, generator: 1.5, augmentationProbability: 0.25),
                                        LossPoint(step: 2, discriminator: 0.5, generator: 1.5)])
        try Data("step,discriminator_loss,generator_loss\n1,0.5,1.5\n2,0.5,1.5,9\n".utf8).write(to: URL(fileURLWithPath: state.historyPath))
        #expect(state.readHistory() == [LossPoint(step: 1, discriminator: 0.5, generator: 1.5)], "a row wider than the header is not read")
    }

    /// Thinning averages the pair spread as it does the probability.
    @Test func thinningAveragesThePairSpread() {
        let history = (1...100).map { LossPoint(step: $0, discriminator: 1, generator: 2, pairSpread: Float($0 % 2)) }
        let thinned = LossPoint.thinned(history, toAtMost: 60)
        #expect(thinned.first?.pairSpread == 0.5 && thinned.last == history.last)
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
