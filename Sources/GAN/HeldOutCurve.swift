import Imaging

/// The held-out picture (`heldout.png`): each checkpoint's kernel distance to the held-out
/// images black, two standard errors either side grey, the checkpoint generation uses marked
/// green; one point per checkpoint. Where the black line turns up while training goes on, the
/// model has started to overfit and the mark stays behind.
public enum HeldOutCurve {
    public static func render(_ scores: [HeldOutScore], chosenStep: Int?) -> Image {
        let band: (UInt8, UInt8, UInt8) = (170, 170, 170)
        return LineChart.render([
            .init(values: scores.map { Float($0.distance + 2 * $0.standardError) }, colour: band, name: "2 standard errors"),
            .init(values: scores.map { Float($0.distance - 2 * $0.standardError) }, colour: band),
            .init(values: scores.map { Float($0.distance) }, colour: (0, 0, 0), name: "distance to held-out images"),
        ], x: scores.map(\.step), marks: chosenStep.flatMap { step in scores.firstIndex { $0.step == step } }.map { [$0] } ?? [],
           markName: "generated from")
    }
}
