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
///
/// Under either policy a class the model knows but the dataset no longer has (its folder
/// removed or emptied since: the class map only grows) gets nothing: the output tree is to be
/// read beside the real one, and a class folder only one of the two trees has shifts the
/// class indices of the other (two ImageFolders index their sorted folder names).
public struct GenerationPlan: Equatable, Sendable {
    /// Images to write per class, in the model's class order.
    public let counts: [Int]
    /// The rule in words, for the log and `synthd status`.
    public let rule: String

    public var total: Int { counts.reduce(0, +) }

    /// `real`: readable images per class at the last training (the model's class order).
    public init(settings: Configuration, real: [Int]) {
        let absent = real.filter { $0 == 0 }.count
        let leftOut = absent == 0 ? "" : "; \(absent) of \(real.count) classes left out: no real images now"
        switch settings.policy {
        case .perClass:
            counts = real.map { $0 == 0 ? 0 : settings.perClass }
            rule = "per-class: \(settings.perClass) images of every class" + leftOut
        case .balance:
            let largest = real.max() ?? 0
            let target = settings.balanceTo > 0 ? settings.balanceTo : largest
            let extra = Int((Double(target) * settings.enlarge).rounded(.up))
            let uncapped = real.map { max(0, target - $0) + extra }
            // Rounded down, so that no class goes beyond the cap (rounded up, a class of 5 real
            // images got 3 at 0.5, and status then showed 0.60 synthetic per real image).
            let cap = settings.maxSyntheticPerReal
            counts = zip(uncapped, real).map { count, real in
                real == 0 ? 0 : cap > 0 ? min(count, Int((Double(real) * cap + 1e-9).rounded(.down))) : count
            }
            let to = settings.balanceTo > 0 ? "balance_to \(target)" : "the largest class (\(target))"
            let capped = zip(zip(counts, uncapped), real).filter { $0.0 < $0.1 && $1 > 0 }.count
            rule = "balance: every class topped up to \(to)"
                + (extra > 0 ? ", then \(extra) more each (enlarge \(Self.format(settings.enlarge)) x \(target))" : "")
                + (capped > 0 ? "; \(capped) of \(real.count) classes capped at \(Self.format(cap)) per real image (max_synthetic_per_real)" : "")
                + leftOut
        }
    }

    /// The plan for a trained model by its classes' real image counts
    /// (`StateFolder.realImageCounts`). Without them (a dataset that cannot be listed) every
    /// class counts as present: balance has nothing to go by, and `per_class` writes every class.
    public init(settings: Configuration, record: ModelRecord, real: [Int]?) {
        if let real {
            self.init(settings: settings, real: real)
        } else if settings.policy == .perClass {
            self.init(settings: settings, real: Array(repeating: 1, count: record.classes.count))  // present, count unknown
        } else {
            self.init(counts: Array(repeating: 0, count: record.classes.count),
                      rule: "balance: no image counts from the last training; nothing to top up")
        }
    }

    init(counts: [Int], rule: String) {
        self.counts = counts
        self.rule = rule
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}
