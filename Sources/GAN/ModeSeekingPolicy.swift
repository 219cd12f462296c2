/// How much of the mode-seeking term (`ModeSeekingRegularization`) a new model trains with:
/// `auto` gives it to datasets under `AugmentationPolicy.autoThreshold` images, where it was
/// measured (docs/quality.md, "A mode-seeking term in G's loss": at 50 images a class the
/// mixed classifier gained 0.1 to 0.5 points at the default amount over the same training
/// without it, on each of four training seeds, and the samples spread as new real images do), and none to
/// larger ones, where it is unmeasured and its lower own-class share could cost the
/// synthetic-only classifier; or a weight given (0: off).
public enum ModeSeekingPolicy: Sendable, Equatable, CustomStringConvertible {
    case auto
    case weight(Float)

    /// The weight `auto` gives a small dataset (weight 3 went too far: docs/quality.md).
    public static let smallDatasetWeight: Float = 1
    /// The largest weight a user may ask for.
    public static let largestWeight: Float = 100

    public func weight(forImages count: Int) -> Float {
        switch self {
        case .auto: count < AugmentationPolicy.autoThreshold ? Self.smallDatasetWeight : 0
        case .weight(let weight): weight
        }
    }

    /// "auto" or a weight in 0...`largestWeight`; nil otherwise.
    public init?(_ text: String) {
        if text == "auto" {
            self = .auto
        } else if let weight = Double(text) {
            self.init(weight: weight)
        } else {
            return nil
        }
    }

    /// A weight in 0...`largestWeight` (not NaN); nil otherwise.
    public init?(weight: Double) {
        guard weight >= 0, weight <= Double(Self.largestWeight) else { return nil }
        self = .weight(Float(weight))
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .weight(let weight): "\(weight)"
        }
    }
}
