import Engine
@testable import GAN
import Testing

@Suite struct EvaluationTests {
    func gaussian(_ count: Int, dimension: Int, mean: Float, scale: Float, seed: UInt64) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        return (0..<(count * dimension)).map { _ in mean + scale * rng.normal() }
    }

    @Test func frechetDistanceOfKnownGaussians() {
        // Same distribution: ~0. Means shifted by 1 in each of 4 dimensions: ~4. Scale 2 vs 1
        // (covariances I and 4I): tr(I + 4I - 2 * 2I) = 4 * 1 = 4.
        let a = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 1, seed: 1), dimension: 4)
        let b = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 1, seed: 2), dimension: 4)
        let shifted = FeatureStatistics(gaussian(20000, dimension: 4, mean: 1, scale: 1, seed: 3), dimension: 4)
        let wide = FeatureStatistics(gaussian(20000, dimension: 4, mean: 0, scale: 2, seed: 4), dimension: 4)
        #expect(frechetDistance(a, b) < 0.01)
        #expect(abs(frechetDistance(a, shifted) - 4) < 0.15)
        #expect(abs(frechetDistance(a, wide) - 4) < 0.3)
    }

    @Test func classifierLearnsASeparableProblem() {
        let data = brightnessImages(256, swapped: false, seed: 5)
        let model = Classifier.train(on: data, classes: 2, epochs: 3, seed: 1, minimumSteps: 0)
        let (predictions, features) = model.evaluate(data)
        let accuracy = Double(zip(predictions, data.labels).filter { $0 == Int($1) }.count) / Double(data.count)
        #expect(accuracy > 0.95, "accuracy \(accuracy)")
        #expect(features.count == 256 * Classifier.featureSize)
    }

    /// With shifted training images the classifier still learns the problem (brightness does
    /// not move with a shift), and training saw other images than without: its weights differ.
    @Test func classifierTrainsOnShiftedImages() {
        let data = brightnessImages(256, swapped: false, seed: 5)
        let plain = Classifier.train(on: data, classes: 2, epochs: 3, seed: 1, minimumSteps: 0)
        let shifted = Classifier.train(on: data, classes: 2, epochs: 3, seed: 1, minimumSteps: 0,
                                       augmentation: ClassifierAugmentation(maxShift: 2))
        let again = Classifier.train(on: data, classes: 2, epochs: 3, seed: 1, minimumSteps: 0,
                                     augmentation: ClassifierAugmentation(maxShift: 2))
        #expect(classifierAccuracy(shifted, on: data) > 0.95)
        #expect(shifted.parameters[0].value.values != plain.parameters[0].value.values)
        #expect(shifted.parameters[0].value.values == again.parameters[0].value.values, "reproducible from the seed")
    }
}

/// Dark (label 0) and bright (label 1) noisy 32x32 images; `swapped` gives them the other label.
func brightnessImages(_ count: Int, swapped: Bool, seed: UInt64) -> LabeledImages {
    var rng = RandomGenerator(seed: seed)
    var pixels: [UInt8] = [], labels: [Int32] = []
    for i in 0..<count {
        let label = Int32(i % 2)
        labels.append(swapped ? 1 - label : label)
        for _ in 0..<(32 * 32) { pixels.append(UInt8(max(0, min(255, (label == 0 ? 60 : 190) + rng.normal() * 30)))) }
    }
    return LabeledImages(pixels: pixels, labels: labels, channels: 1, resolution: 32)
}

/// The share of `data` that `model` labels as `data` does.
func classifierAccuracy(_ model: Classifier, on data: LabeledImages) -> Double {
    Double(zip(model.evaluate(data).predictions, data.labels).filter { $0 == Int($1) }.count) / Double(data.count)
}

@Suite struct BatchOrderTests {
    @Test func oneGroupVisitsEveryImageOncePerPass() {
        var order = BatchOrder(count: 10, batchSize: 5)
        var rng = RandomGenerator(seed: 3)
        let pass = order.next(&rng) + order.next(&rng)
        #expect(pass.sorted() == Array(0..<10))
        let next = order.next(&rng) + order.next(&rng)
        #expect(next.sorted() == Array(0..<10))
        #expect(next != pass, "reshuffled for the second pass")
    }

    @Test func twoGroupsGiveTheirShareOfEveryBatch() {
        // 4 "real" images (0..<4) beside 40 "synthetic" ones: 2 of each batch of 6 are real,
        // however many synthetic images there are; each group is walked without repeats.
        var order = BatchOrder([.init(indices: 0..<4, perBatch: 2), .init(indices: 4..<44, perBatch: 4)])
        #expect(order.batchSize == 6)
        var rng = RandomGenerator(seed: 4)
        var synthetic: [Int] = []
        for _ in 0..<10 {
            let batch = order.next(&rng)
            let real = batch.filter { $0 < 4 }
            #expect(batch.count == 6 && real.count == 2 && Array(batch.prefix(2)) == real)
            #expect(Set(real).count == 2)
            synthetic += batch.dropFirst(2)
        }
        #expect(synthetic.sorted() == Array(4..<44), "ten batches of 4 are one pass over the 40")
    }

    @Test func aRealShareKeepsScarceRealImagesInCharge() {
        // 512 correctly labelled images (dark = 0, bright = 1) beside 2,048 with the labels
        // swapped: mixed by count, the classifier learns the swapped labels; with 90% of each
        // batch from the first set, the right ones. (With only 64 right images in every batch it
        // memorised those and learnt the swapped rule for all others: hence sets this large.)
        let right = brightnessImages(512, swapped: false, seed: 1), wrong = brightnessImages(2048, swapped: true, seed: 2)
        let test = brightnessImages(64, swapped: false, seed: 3)
        let byCount = Classifier.train(on: right + wrong, classes: 2, epochs: 1, seed: 1, minimumSteps: 0)
        let byShare = Classifier.train(on: right, and: wrong, firstShare: 0.9, classes: 2, epochs: 1, seed: 1, minimumSteps: 0)
        #expect(classifierAccuracy(byCount, on: test) < 0.2, "by count: \(classifierAccuracy(byCount, on: test))")
        #expect(classifierAccuracy(byShare, on: test) > 0.9, "by share: \(classifierAccuracy(byShare, on: test))")
    }
}

@Suite struct PretrainingTests {
    @Test func fineTuningStartsFromThePretrainedClassifier() {
        // Pretrained on 2,048 images with the labels swapped, then one step on two correctly
        // labelled ones: it still answers as pretrained, where that one step from scratch
        // already teaches this easy problem.
        let many = brightnessImages(2048, swapped: true, seed: 1), two = brightnessImages(2, swapped: false, seed: 2)
        let test = brightnessImages(256, swapped: false, seed: 3)
        let pretrained = Classifier.train(on: two, after: many, classes: 2, epochs: 1, seed: 1, minimumSteps: 0)
        let scratch = Classifier.train(on: two, classes: 2, epochs: 1, seed: 1, minimumSteps: 0)
        #expect(classifierAccuracy(pretrained, on: test) < 0.2, "pretrained: \(classifierAccuracy(pretrained, on: test))")
        #expect(classifierAccuracy(scratch, on: test) > 0.9, "from scratch: \(classifierAccuracy(scratch, on: test))")
    }

    @Test func fineTuningOverridesWhatPretrainingTaught() {
        let wrong = brightnessImages(2048, swapped: true, seed: 1), right = brightnessImages(1024, swapped: false, seed: 2)
        let test = brightnessImages(256, swapped: false, seed: 3)
        let model = Classifier.train(on: right, after: wrong, classes: 2, epochs: 2, seed: 1, minimumSteps: 0)
        #expect(classifierAccuracy(model, on: test) > 0.9, "\(classifierAccuracy(model, on: test))")
    }
}

/// The headline measure of `synthd eval`: real alone against real + synthetic concatenated.
@Suite struct MixingMeasureTests {
    @Test func amountsAreTheDaemonsDefaultAndMultiplesOfTheRealCount() {
        let measure = MixingMeasure(real: brightnessImages(8, swapped: false, seed: 1), synthetic: brightnessImages(40, swapped: false, seed: 2),
                                    test: brightnessImages(8, swapped: false, seed: 3), classes: 2)
        let (amounts, unmeasured) = measure.amounts(multiples: [0.5, 1, 5, 10], default: [3, 1])
        #expect(amounts.map(\.label) == ["daemon default (0.5x)", "0.5x real", "1x real", "5x real"])
        #expect(amounts.map(\.perClass) == [[3, 1], [2, 2], [4, 4], [20, 20]])
        let same = measure.amounts(multiples: [0.5, 1], default: [2, 2]).amounts
        #expect(same.map(\.label) == ["0.5x real, the daemon's default", "1x real"], "one row when the default is a multiple")
        #expect(unmeasured == [.init(multiple: 10, reason: "the synthetic folder has no more images than the row \"5x real\" mixes")],
                "20 synthetic images per class cannot make 10x of 4, and are all 5x mixes")
        // An imbalanced set: other policies' amounts are rows of their own where they differ
        // from the rows before them and are not nothing.
        let alternatives = [MixingMeasure.Amount(label: "no cap", perClass: [5, 3]), MixingMeasure.Amount(label: "top-up", perClass: [2, 0]),
                            MixingMeasure.Amount(label: "same again", perClass: [2, 0]), MixingMeasure.Amount(label: "none", perClass: [0, 0]),
                            MixingMeasure.Amount(label: "too many", perClass: [21, 0])]
        let topUp = measure.amounts(multiples: [1], default: [1, 3], alternatives: alternatives).amounts
        #expect(topUp.map(\.label) == ["daemon default (0.5x)", "no cap (1x)", "top-up (0.25x)", "1x real"],
                "another policy's amount the folder cannot fill is not that policy: left out")
        #expect(topUp[2].perClass == [2, 0])
        #expect(measure.amounts(multiples: [1], default: [2, 2], alternatives: [.init(label: "x", perClass: [2, 2])]).amounts.count == 2)
    }

    /// Users mix the folder they have: a class the class check rejected every draw of, or fewer
    /// images than a multiple asks, is a row that takes what there is and says which classes are
    /// short, not a row left out (a default the folder could not fill used to vanish from the
    /// headline, and an empty class folder left out every multiple).
    @Test func aFolderShortOfAClassIsMeasuredWithWhatItHas() {
        let synthetic = brightnessImages(40, swapped: false, seed: 2)
        let onlyDark = synthetic.select((0..<synthetic.count).filter { synthetic.labels[$0] == 0 })
        let measure = MixingMeasure(real: brightnessImages(8, swapped: false, seed: 1), synthetic: onlyDark,
                                    test: brightnessImages(8, swapped: false, seed: 3), classes: 2)
        let (amounts, unmeasured) = measure.amounts(multiples: [0.5, 1, 10], default: [2, 2], classNames: ["dark", "light"])
        #expect(amounts.map(\.label) == ["0.5x real, the daemon's default, short in 1 class (light 0 of 2)",
                                         "1x real (0.5x), short in 1 class (light 0 of 4)",
                                         "10x real (2.5x), short in 2 classes (dark 20 of 40, light 0 of 40)"])
        #expect(amounts.map(\.perClass) == [[2, 0], [4, 0], [20, 0]])
        #expect(unmeasured.isEmpty)
        // A multiple whose images a row before it already mixes is named with that row, by its
        // name without notes (here an imbalanced set's policy, whose name has a comma of its own).
        let policy = measure.amounts(multiples: [1], default: nil, alternatives: [.init(label: "balance, no cap", perClass: [4, 0])],
                                     classNames: ["dark", "light"])
        #expect(policy.amounts.map(\.label) == ["balance, no cap (0.5x)"])
        #expect(policy.unmeasured == [.init(multiple: 1, reason: "the synthetic folder has no more images than the row \"balance, no cap (0.5x)\" mixes")])
        let none = MixingMeasure(real: measure.real, synthetic: synthetic.select([]), test: measure.test, classes: 2)
        let nothing = none.amounts(multiples: [1], default: [2, 2])
        #expect(nothing.amounts.isEmpty)
        #expect(nothing.unmeasured == [.init(multiple: 1, reason: "no synthetic images to mix")])
    }

    /// Users point their training at both trees: the synthetic folder as it is is a row, named
    /// on the row that already mixes all of it, else a row of its own after the policies' rows.
    @Test func theWholeSyntheticFolderIsMeasuredAsItIs() {
        let synthetic = brightnessImages(40, swapped: false, seed: 2)
        let measure = MixingMeasure(real: brightnessImages(8, swapped: false, seed: 1), synthetic: synthetic,
                                    test: brightnessImages(8, swapped: false, seed: 3), classes: 2)
        let own = measure.amounts(multiples: [0.5, 1], default: [3, 1], wholeFolder: true)
        #expect(own.amounts.map(\.label) == ["daemon default (0.5x)", "the whole synthetic folder (5x)", "0.5x real", "1x real"])
        #expect(own.amounts[1].perClass == [20, 20])
        let named = measure.amounts(multiples: [0.5, 5, 10], default: [3, 1], wholeFolder: true)
        #expect(named.amounts.map(\.label) == ["daemon default (0.5x)", "0.5x real", "5x real, the whole synthetic folder"])
        #expect(named.unmeasured.map(\.multiple) == [10])
        #expect(measure.amounts(multiples: [0.5], default: [3, 1]).amounts.count == 2, "only when asked")
        // A folder short of a class: the row that takes everything it has is the whole folder.
        let onlyDark = MixingMeasure(real: measure.real, synthetic: synthetic.select((0..<synthetic.count).filter { synthetic.labels[$0] == 0 }),
                                     test: measure.test, classes: 2)
        let short = onlyDark.amounts(multiples: [10], default: [2, 2], classNames: ["dark", "light"], wholeFolder: true)
        #expect(short.amounts.map(\.label) == ["daemon default (0.25x), short in 1 class (light 0 of 2)",
                                              "10x real (2.5x), short in 2 classes (dark 20 of 40, light 0 of 40), the whole synthetic folder"])
        let empty = MixingMeasure(real: measure.real, synthetic: synthetic.select([]), test: measure.test, classes: 2)
        #expect(empty.amounts(multiples: [1], default: [2, 2], wholeFolder: true).amounts.isEmpty)
    }

    /// Synthetic images that carry the wrong class (here every label swapped) pull a mixed
    /// classifier down on every seed; faithful ones leave a solved problem solved. Gains are
    /// taken seed by seed against the real-alone classifier of the same seed.
    @Test func itSeesHarmfulAndHarmlessSyntheticImages() {
        let real = brightnessImages(16, swapped: false, seed: 1), test = brightnessImages(64, swapped: false, seed: 3)
        func measure(_ synthetic: LabeledImages) -> (realAlone: [Double], rows: [MixingMeasure.Row]) {
            var measure = MixingMeasure(real: real, synthetic: synthetic, test: test, classes: 2)
            measure.seeds = [0, 1]
            measure.epochs = 1
            measure.minimumSteps = 40
            return measure.run([MixingMeasure.Amount(label: "5x real", perClass: [40, 40])])
        }
        let harmful = measure(brightnessImages(80, swapped: true, seed: 4))
        let faithful = measure(brightnessImages(80, swapped: false, seed: 4))
        #expect(harmful.realAlone == faithful.realAlone, "real alone depends on the seed only")
        #expect(harmful.realAlone.allSatisfy { $0 > 90 }, "\(harmful.realAlone)")
        let bad = harmful.rows[0], good = faithful.rows[0]
        #expect(bad.gains == zip(bad.accuracies, harmful.realAlone).map { $0 - $1 })
        #expect(bad.gains.allSatisfy { $0 < -40 } && bad.seedsHigher == 0, "\(bad.gains)")
        #expect(good.gains.allSatisfy { abs($0) <= 5 }, "\(good.gains)")
        #expect(abs(bad.meanGain - bad.gains.reduce(0, +) / 2) < 1e-9)
        #expect(bad.gainInterval == meanInterval95(bad.gains))
        // Each class's mean gain: the swapped labels cost both classes; each seed's overall gain
        // is the mean of its classes' gains here (the test set is balanced).
        #expect(bad.classGains.count == 2 && bad.classGains.allSatisfy { $0 < -40 }, "\(bad.classGains)")
        #expect(abs(bad.classGains.reduce(0, +) / 2 - bad.meanGain) < 1e-9, "\(bad.classGains) against \(bad.meanGain)")
        #expect(good.classGains.allSatisfy { abs($0) <= 5 }, "\(good.classGains)")
        // Where the loss went: each class taken for the other.
        #expect(Set(bad.grownMistakes.map { [$0.actual, $0.predicted] }) == [[0, 1], [1, 0]], "\(bad.grownMistakes)")
        #expect(bad.grownMistakes.allSatisfy { $0.points > 40 }, "\(bad.grownMistakes)")
    }

    /// The mistakes that grew: off the diagonal only, in points of the actual class's test
    /// images, averaged over the seeds, most first, those that shrank left out.
    @Test func theMistakesThatGrewMost() {
        // Seed by seed, [actual][predicted]: class 0 has 10 test images, class 1 20, class 2 50.
        let alone: [[[Int]]] = [[[8, 2, 0], [0, 20, 0], [5, 0, 45]],
                                [[9, 1, 0], [1, 19, 0], [5, 0, 45]]]
        let mixed: [[[Int]]] = [[[6, 4, 0], [0, 18, 2], [0, 0, 50]],   // 0->1 +20, 1->2 +10, 2->0 -10
                                [[7, 3, 0], [1, 19, 0], [5, 1, 44]]]   // 0->1 +20, 2->1 +2
        let grown = MixingMeasure.grownMistakes(alone: alone, mixed: mixed)
        #expect(grown == [.init(actual: 0, predicted: 1, points: 20), .init(actual: 1, predicted: 2, points: 5),
                          .init(actual: 2, predicted: 1, points: 1)])
        #expect(MixingMeasure.grownMistakes(alone: alone, mixed: mixed, most: 1).count == 1)
        #expect(MixingMeasure.grownMistakes(alone: alone, mixed: alone).isEmpty, "nothing grew")
        #expect(Classifier.accuracies(alone[0]).all == 91.25 && Classifier.accuracies(alone[0]).perClass == [80, 100, 90])
    }

    /// The paired t interval of a mean: checked against values worked by hand from the
    /// t tables (t(2) = 4.303, t(5) = 2.571) and the large-sample limit.
    @Test func theMeanGainsInterval() throws {
        #expect(meanInterval95([0.4]) == nil, "one seed says nothing about the spread")
        let three = try #require(meanInterval95([1, 2, 3]))  // mean 2, s = 1, se = 1 / sqrt(3)
        #expect(abs(three.lowerBound - (2 - 4.303 / 3.0.squareRoot())) < 1e-9 && abs(three.upperBound - (2 + 2.484_339)) < 1e-5)
        let six = try #require(meanInterval95([-0.6, 0.4, 0.1, -0.2, 0.3, 0.0]))  // mean 0, s = sqrt(0.66 / 5)
        #expect(abs(six.upperBound - 2.571 * (0.132 / 6).squareRoot()) < 1e-9 && abs(six.lowerBound + six.upperBound) < 1e-12)
        #expect(meanInterval95([5, 5, 5]) == 5...5)
        #expect(abs(studentT975(degreesOfFreedom: 30) - 2.042) < 1e-12)
        #expect(abs(studentT975(degreesOfFreedom: 120) - 1.980) < 2e-3, "past the table, within the true quantile's third decimal")
        #expect(abs(studentT975(degreesOfFreedom: 1_000_000) - 1.96) < 1e-3)
    }
}
