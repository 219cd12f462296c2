import Imaging

/// The loss-curve picture: D's loss red, G's blue (and adaptive augmentation's probability
/// green, where the model has it), smoothed by a moving average so that a long
/// run's trend shows through the step-to-step noise.
public enum LossCurve {
    public static func render(_ history: [LossPoint]) -> Image {
        let window = max(1, history.count / 200)
        func smoothed(_ values: [Float]) -> [Float] {
            guard window > 1 else { return values }
            return stride(from: 0, to: values.count, by: window).map { start in
                let slice = values[start..<min(values.count, start + window)]
                return slice.reduce(0, +) / Float(slice.count)
            }
        }
        var series: [LineChart.Series] = [
            .init(values: smoothed(history.map(\.discriminator)), colour: (220, 40, 40)),
            .init(values: smoothed(history.map(\.generator)), colour: (40, 80, 220)),
        ]
        let probabilities = history.compactMap(\.augmentationProbability)
        if probabilities.count == history.count && !history.isEmpty {
            series.append(.init(values: smoothed(probabilities), colour: (30, 160, 60)))
        }
        return LineChart.render(series)
    }
}

/// The held-out picture (`heldout.png`): each checkpoint's kernel distance to the held-out
/// images black, two standard errors either side grey, the checkpoint generation uses marked
/// green; one point per checkpoint. Where the black line turns up while training goes on, the
/// model has started to overfit and the mark stays behind.
public enum HeldOutCurve {
    public static func render(_ scores: [HeldOutScore], chosenStep: Int?) -> Image {
        let band: (UInt8, UInt8, UInt8) = (170, 170, 170)
        return LineChart.render([
            .init(values: scores.map { Float($0.distance + 2 * $0.standardError) }, colour: band),
            .init(values: scores.map { Float($0.distance - 2 * $0.standardError) }, colour: band),
            .init(values: scores.map { Float($0.distance) }, colour: (0, 0, 0)),
        ], mark: chosenStep.flatMap { step in scores.firstIndex { $0.step == step } })
    }
}
