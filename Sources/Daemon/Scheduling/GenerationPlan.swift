import GAN

/// How many synthetic images each class gets, and why, by the generation policy.
///
/// `balance` (the default) first tops every class up to the largest class (or `balance_to`),
/// then adds `enlarge` times that balanced size to every class. Without the second part a
/// dataset that is already balanced, the common case, would get nothing, and synthd exists to
/// enlarge training sets. The share is of the balanced size, not of each class, so the result
/// stays balanced, unless a class is so small that its top-up would exceed
/// `max_synthetic_per_real` times its own images: then it gets that many (a class drawn from few
/// images is drawn badly, and mostly synthetic it costs accuracy; docs/quality.md).
/// `per-class` writes `per_class` images of each class (an explicit count: not capped).
public struct GenerationPlan: Equatable, Sendable {
    /// Images to write per class, in the model's class order.
    public let counts: [Int]
    /// The rule in words, for the log and `synthd status`.
    public let rule: String

    public var total: Int { counts.reduce(0, +) }

    /// `real`: readable images per class at the last training (the model's class order).
    public init(settings: Configuration, real: [Int]) {
        switch settings.policy {
        case .perClass:
            counts = Array(repeating: settings.perClass, count: real.count)
            rule = "per-class: \(settings.perClass) images of every class"
        case .balance:
            let largest = real.max() ?? 0
            let target = settings.balanceTo > 0 ? settings.balanceTo : largest
            let extra = Int((Double(target) * settings.enlarge).rounded(.up))
            let uncapped = real.map { max(0, target - $0) + extra }
            let cap = settings.maxSyntheticPerReal
            counts = cap > 0 ? zip(uncapped, real).map { min($0, Int((Double($1) * cap).rounded(.up))) } : uncapped
            let to = settings.balanceTo > 0 ? "balance_to \(target)" : "the largest class (\(target))"
            let capped = zip(counts, uncapped).filter { $0 < $1 }.count
            rule = "balance: every class topped up to \(to)"
                + (extra > 0 ? ", then \(extra) more each (enlarge \(Self.format(settings.enlarge)) x \(target))" : "")
                + (capped > 0 ? "; \(capped) of \(real.count) classes capped at \(Self.format(cap)) per real image (max_synthetic_per_real)" : "")
        }
    }

    /// The plan for a trained model, by the image counts its last training found.
    public init(settings: Configuration, record: ModelRecord, report: DatasetReport?) {
        self.init(settings: settings, real: report?.counts(for: record.classes) ?? Array(repeating: 0, count: record.classes.count))
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
