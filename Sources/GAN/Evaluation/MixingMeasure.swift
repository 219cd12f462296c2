import Engine

/// The measure users care about: a plain classifier trained on the real images and synthd's
/// output concatenated (the two ImageFolder trees read as one, batches drawn uniformly from
/// all images), against the same classifier trained on the real images alone, both scored on
/// held-out real images. Several classifier seeds, each compared with its own real-alone run
/// (same seed: same initial weights and batch stream), at several amounts of synthetic images.
public struct MixingMeasure {
    /// An amount of synthetic images to mix in: per class, in the class map's order.
    public struct Amount: Sendable, Equatable {
        /// The row's name (how another line refers to it), and what its label adds: the
        /// classes the synthetic folder is short of, if any.
        public let name: String, note: String
        public let perClass: [Int]
        public var label: String { name + note }
        public var total: Int { perClass.reduce(0, +) }

        public init(label: String, perClass: [Int], note: String = "") {
            self.name = label
            self.note = note
            self.perClass = perClass
        }
    }

    /// Real-test accuracies (percent) of one configuration, one per classifier seed.
    public struct Row: Sendable, Equatable {
        public let amount: Amount
        public let accuracies: [Double]
        /// Accuracy minus real alone's, seed by seed.
        public let gains: [Double]
        /// Each class's accuracy minus real alone's, averaged over the seeds (points, in the
        /// class map's order): where the synthetic images help and where they cost.
        public var classGains: [Double] = []
        /// The mistakes the synthetic images made more common, most first (at most three):
        /// where a class's loss went (bags taken for pullovers), which a class's gain alone
        /// does not say.
        public var grownMistakes: [MistakeChange] = []

        public var meanAccuracy: Double { accuracies.reduce(0, +) / Double(max(1, accuracies.count)) }
        public var meanGain: Double { gains.reduce(0, +) / Double(max(1, gains.count)) }
        /// Seeds whose mixed classifier beat its real-alone twin.
        public var seedsHigher: Int { gains.filter { $0 > 0 }.count }
        /// The 95% interval of the mean gain (paired t; nil for one seed): what the seeds can
        /// tell apart from nothing.
        public var gainInterval: ClosedRange<Double>? { meanInterval95(gains) }
    }

    /// Test images of class `actual` taken for `predicted` more often with the synthetic
    /// images than without: the change in points of `actual`'s test images, the mean over the
    /// seeds.
    public struct MistakeChange: Sendable, Equatable {
        public let actual: Int
        public let predicted: Int
        public let points: Double
    }

    /// The `most` mistakes that grew most from `alone` to `mixed` (each seed's confusion matrix,
    /// `[actual][predicted]`, in the same seed order), only those that grew.
    public static func grownMistakes(alone: [[[Int]]], mixed: [[[Int]]], most: Int = 3) -> [MistakeChange] {
        guard let classes = alone.first?.count, alone.count == mixed.count else { return [] }
        var changes: [MistakeChange] = []
        for actual in 0..<classes {
            for predicted in 0..<classes where predicted != actual {
                let points = zip(alone, mixed).map { before, after in
                    100 * Double(after[actual][predicted] - before[actual][predicted]) / Double(max(1, before[actual].reduce(0, +)))
                }.reduce(0, +) / Double(alone.count)
                if points > 0 { changes.append(MistakeChange(actual: actual, predicted: predicted, points: points)) }
            }
        }
        return Array(changes.sorted { $0.points > $1.points }.prefix(most))
    }

    public let real: LabeledImages
    public let synthetic: LabeledImages
    public let test: LabeledImages
    public let classes: Int
    public var seeds: [UInt64] = [0, 1, 2]
    public var epochs = 3
    public var minimumSteps = 600
    public var augmentation: ClassifierAugmentation?

    public init(real: LabeledImages, synthetic: LabeledImages, test: LabeledImages, classes: Int) {
        self.real = real
        self.synthetic = synthetic
        self.test = test
        self.classes = classes
    }

    /// Images per class of `data`.
    public static func counts(_ data: LabeledImages, classes: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: classes)
        for label in data.labels { counts[Int(label)] += 1 }
        return counts
    }

    /// A multiple of the real count that no row measures, and why.
    public struct Unmeasured: Sendable, Equatable {
        public let multiple: Double
        public let reason: String
    }

    /// The amounts to measure: `default` (what the daemon writes by default, if given), then
    /// each of `alternatives` (other policies' amounts, such as an imbalanced set's uncapped
    /// top-up) that differs from the rows before it, is not nothing and can be filled, then each
    /// multiple of the real count per class. Where the synthetic set has fewer images of a class
    /// than the default or a multiple asks (a class the class check rejected, a folder smaller
    /// than 5x), the row takes what there is and its label names the classes short: users mix
    /// the folder they have. A multiple that would repeat a row before it, or mix nothing, is
    /// named in `unmeasured` with the reason. With `wholeFolder`, the synthetic folder as it is
    /// (what users mix when they point a training at both trees) is a row too: the row that
    /// already mixes every image says so, else a row of its own follows the policies' rows.
    public func amounts(multiples: [Double], default daemonDefault: [Int]?, alternatives: [Amount] = [],
                        classNames: [String]? = nil, wholeFolder: Bool = false) -> (amounts: [Amount], unmeasured: [Unmeasured]) {
        let realCounts = Self.counts(real, classes: classes), available = Self.counts(synthetic, classes: classes)
        let names = classNames ?? (0..<classes).map { "class \($0)" }
        var amounts: [Amount] = []
        let share = { (counts: [Int]) in Self.format(Double(counts.reduce(0, +)) / Double(max(1, realCounts.reduce(0, +)))) }
        let fits = { (counts: [Int]) in zip(counts, available).allSatisfy { $0 <= $1 } }
        /// `wanted` limited to what each class has, and the label's note of the classes short.
        func taken(_ wanted: [Int]) -> (perClass: [Int], shortNote: String) {
            let perClass = zip(wanted, available).map { min($0, $1) }
            let short = (0..<classes).filter { perClass[$0] < wanted[$0] }
            guard !short.isEmpty else { return (perClass, "") }
            let listed = short.prefix(3).map { "\(names[$0]) \(available[$0]) of \(wanted[$0])" }.joined(separator: ", ")
            let more = short.count > 3 ? " and \(short.count - 3) more" : ""
            return (perClass, ", short in \(short.count) class\(short.count == 1 ? "" : "es") (\(listed)\(more))")
        }
        if let daemonDefault {
            let (perClass, note) = taken(daemonDefault)
            if perClass.contains(where: { $0 > 0 }) {
                amounts.append(Amount(label: "daemon default (\(share(perClass))x)", perClass: perClass, note: note))
            }
        }
        for other in alternatives where other.perClass.contains(where: { $0 > 0 }) && fits(other.perClass)
            && !amounts.contains(where: { $0.perClass == other.perClass }) {
            amounts.append(Amount(label: "\(other.label) (\(share(other.perClass))x)", perClass: other.perClass))
        }
        let policyRows = amounts.count
        var unmeasured: [Unmeasured] = []
        for multiple in multiples {
            let wanted = realCounts.map { Int((Double($0) * multiple).rounded()) }
            let (perClass, note) = taken(wanted)
            let label = "\(Self.format(multiple))x real"
            if let index = amounts.firstIndex(where: { $0.perClass == perClass }) {
                if index == 0 && wanted == daemonDefault {   // (the default's row is the first, when there is one)
                    // The daemon's default is this multiple: one row, named both ways.
                    amounts[index] = Amount(label: label, perClass: perClass, note: ", the daemon's default" + note)
                } else {
                    let row = amounts[index].name
                    unmeasured.append(Unmeasured(multiple: multiple, reason: perClass == wanted
                        ? "the same images as the row \"\(row)\""
                        : "the synthetic folder has no more images than the row \"\(row)\" mixes"))
                }
            } else if !perClass.contains(where: { $0 > 0 }) {
                unmeasured.append(Unmeasured(multiple: multiple, reason: "no synthetic images to mix"))
            } else {
                amounts.append(Amount(label: perClass == wanted ? label : "\(label) (\(share(perClass))x)", perClass: perClass, note: note))
            }
        }
        if wholeFolder, available.contains(where: { $0 > 0 }) {
            if let index = amounts.firstIndex(where: { $0.perClass == available }) {
                let row = amounts[index]
                amounts[index] = Amount(label: row.name, perClass: row.perClass, note: row.note + ", the whole synthetic folder")
            } else {
                amounts.insert(Amount(label: "the whole synthetic folder (\(share(available))x)", perClass: available),
                               at: policyRows)
            }
        }
        return (amounts, unmeasured)
    }

    /// Real alone, then each amount; `progress(done, total)` after every classifier.
    public func run(_ amounts: [Amount], progress: (Int, Int) -> Void = { _, _ in }) -> (realAlone: [Double], rows: [Row]) {
        let total = seeds.count * (amounts.count + 1)
        var done = 0
        func score(_ data: LabeledImages, seed: UInt64) -> [[Int]] {
            let model = Classifier.train(on: data, classes: classes, epochs: epochs, seed: seed, minimumSteps: minimumSteps,
                                         augmentation: augmentation)
            done += 1
            progress(done, total)
            return model.confusion(on: test, classes: classes)
        }
        let aloneConfusions = seeds.map { score(real, seed: $0) }
        let realAlone = aloneConfusions.map(Classifier.accuracies)
        let rows = amounts.map { amount in
            let mixedConfusions = seeds.map { seed in score(real + Self.select(amount.perClass, from: synthetic, seed: seed &+ 1000), seed: seed) }
            let mixed = mixedConfusions.map(Classifier.accuracies)
            let accuracies = mixed.map(\.all)
            var row = Row(amount: amount, accuracies: accuracies, gains: zip(accuracies, realAlone.map(\.all)).map { $0 - $1 })
            row.classGains = (0..<classes).map { k in
                zip(mixed, realAlone).map { $0.perClass[k] - $1.perClass[k] }.reduce(0, +) / Double(max(1, seeds.count))
            }
            row.grownMistakes = Self.grownMistakes(alone: aloneConfusions, mixed: mixedConfusions)
            return row
        }
        return (realAlone.map(\.all), rows)
    }

    /// `counts[k]` images of each class k of `data`, chosen at random from the seed.
    static func select(_ counts: [Int], from data: LabeledImages, seed: UInt64) -> LabeledImages {
        var order = Array(0..<data.count)
        var rng = RandomGenerator(seed: seed)
        rng.shuffle(&order)
        var left = counts, chosen: [Int] = []
        for index in order where left[Int(data.labels[index])] > 0 {
            left[Int(data.labels[index])] -= 1
            chosen.append(index)
        }
        return data.select(chosen.sorted())
    }

    /// A multiple as a person writes it: 0.5, 1, 2.25 (two decimals at most).
    public static func format(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let whole = hundredths / 100, fraction = hundredths % 100
        if fraction == 0 { return "\(whole)" }
        return fraction % 10 == 0 ? "\(whole).\(fraction / 10)" : "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
