import Imaging

/// The loss-curve picture: D's loss red, G's blue (and adaptive augmentation's probability
/// green, the mode-seeking term's pair spread purple, where the model has them), smoothed by
/// a moving average so that a long run's trend shows through the step-to-step noise; the
/// steps where training went on with other data (`ModelRecord.dataChanges`) marked orange.
public enum LossCurve {
    public static func render(_ history: [LossPoint], dataChanges: [Int] = []) -> Image {
        let windows = smoothingWindows(count: history.count)
        func smoothed(_ values: [Float]) -> [Float] {
            windows.map { values[$0].reduce(0, +) / Float($0.count) }
        }
        // Each smoothed point at its window's last step, so the chart ends at the last step.
        let steps = windows.map { history[$0.upperBound - 1].step }
        var series: [LineChart.Series] = [
            .init(values: smoothed(history.map(\.discriminator)), colour: (220, 40, 40), name: "D loss"),
            .init(values: smoothed(history.map(\.generator)), colour: (40, 80, 220), name: "G loss"),
        ]
        let probabilities = history.compactMap(\.augmentationProbability)
        if probabilities.count == history.count && !history.isEmpty {
            series.append(.init(values: smoothed(probabilities), colour: (30, 160, 60), name: "augmentation p"))
        }
        let spreads = history.compactMap(\.pairSpread)
        if spreads.count == history.count && !history.isEmpty {
            series.append(.init(values: smoothed(spreads), colour: (150, 60, 190), name: "pair spread"))
        }
        // Each change at the first point at or after it.
        let marks = dataChanges.compactMap { change in steps.firstIndex { $0 >= change } }
        return LineChart.render(series, x: steps, marks: marks, markColour: (240, 140, 20), markName: "new data")
    }

    /// About 200 windows of equal length over `count` points. A remainder shorter than a
    /// window joins the last one: alone, a few steps' average (a run resumed for a few steps
    /// after a long one) drew a spike at the chart's right edge, where the eye looks first.
    static func smoothingWindows(count: Int) -> [Range<Int>] {
        let window = max(1, count / 200)
        var windows = stride(from: 0, to: count, by: window).map { $0..<min(count, $0 + window) }
        if windows.count > 1, let last = windows.last, last.count < window {
            windows.removeLast()
            windows[windows.count - 1] = windows[windows.count - 1].lowerBound..<count
        }
        return windows
    }
}
