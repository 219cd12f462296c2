import Imaging

/// The loss-curve picture: D's loss red, G's blue (and adaptive augmentation's probability
/// green, where the model has it), smoothed by a moving average so that a long
/// run's trend shows through the step-to-step noise.
public enum LossCurve {
    public static func render(_ history: [LossPoint]) -> Image {
        let window = max(1, history.count / 200)
        let starts = Array(stride(from: 0, to: history.count, by: window))
        func smoothed(_ values: [Float]) -> [Float] {
            guard window > 1 else { return values }
            return starts.map { start in
                let slice = values[start..<min(values.count, start + window)]
                return slice.reduce(0, +) / Float(slice.count)
            }
        }
        // Each smoothed point at its window's last step, so the chart ends at the last step.
        let steps = starts.map { history[min(history.count, $0 + window) - 1].step }
        var series: [LineChart.Series] = [
            .init(values: smoothed(history.map(\.discriminator)), colour: (220, 40, 40), name: "D loss"),
            .init(values: smoothed(history.map(\.generator)), colour: (40, 80, 220), name: "G loss"),
        ]
        let probabilities = history.compactMap(\.augmentationProbability)
        if probabilities.count == history.count && !history.isEmpty {
            series.append(.init(values: smoothed(probabilities), colour: (30, 160, 60), name: "augmentation p"))
        }
        return LineChart.render(series, x: steps)
    }
}
