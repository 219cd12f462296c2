import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

/// An experiment of issue 17 (docs/quality.md, "Samples labelled by a stronger teacher"), not a
/// check: a classifier trained longer on shifted real images knows more than the one the user
/// trains (81% against 79% from 50 a class), and synthetic images are a way to hand what it
/// knows to the user's classifier. TEACHERS such classifiers (width 32, 3,000 steps, shifts of
/// 2) are trained on the real folder REAL and scored on TEST, alone and as an ensemble (mean
/// probabilities). Every image of POOL (written by `synthd generate --no-class-check`) gets
/// the ensemble's probabilities; then, for each mode,
/// - `agree`: a sample is kept in its own class when the ensemble's most likely class is it,
///   with probability CONF at least (the class check, by a stronger judge);
/// - `relabel`: a sample goes to the ensemble's most likely class when that has probability
///   CONF at least, whatever class it was drawn for;
/// and KEEP images a class, drawn at random from those, are copied into OUT/<mode>/<class>/.
///
///     SYNTHD_EXPERIMENT_TEACHER_LABELS="STATE REAL TEST POOL OUT TEACHERS KEEP CONF" \
///         .build/release/synthdPackageTests.xctest --testing-library swift-testing --filter labelSamplesByAStrongerTeacher
@Suite struct TeacherLabelExperiment {
    static let arguments = ProcessInfo.processInfo.environment["SYNTHD_EXPERIMENT_TEACHER_LABELS"]?
        .split(separator: " ").map(String.init)

    @Test(.enabled(if: Self.arguments?.count == 8,
                   "an experiment: SYNTHD_EXPERIMENT_TEACHER_LABELS=\"STATE REAL TEST POOL OUT TEACHERS KEEP CONF\" runs it"))
    func labelSamplesByAStrongerTeacher() throws {
        let arguments = try #require(Self.arguments)
        let (state, real, test, pool, out) = (arguments[0], arguments[1], arguments[2], arguments[3], arguments[4])
        let teachers = try #require(Int(arguments[5])), keep = try #require(Int(arguments[6]))
        let confidence = try #require(Float(arguments[7]))
        let record = try #require(try StateFolder(state).readRecord())
        let classMap = ClassMap(names: record.classes)
        let realSet = try TrainingSet.load(real, classMap: classMap, resolution: record.configuration.resolution, mode: record.mode)
        let testSet = LabeledImages(try TrainingSet.load(test, classMap: classMap, resolution: realSet.resolution, mode: record.mode))
        try #require(realSet.channels == 1, "grey datasets only")
        // The pool's files, each fitted to the model's resolution as training data is.
        var files: [String] = [], pixels: [UInt8] = [], labels: [Int32] = []
        for (c, name) in record.classes.enumerated() {
            for file in try FileManager.default.contentsOfDirectory(atPath: pool + "/" + name).filter({ $0.hasSuffix(".png") }).sorted() {
                let path = pool + "/" + name + "/" + file
                files.append(path)
                pixels += Resampling.fit(Resampling.grey(try PNG.read(path: path)), resolution: realSet.resolution).pixels
                labels.append(Int32(c))
            }
        }
        let poolSet = LabeledImages(pixels: pixels, labels: labels, channels: 1, resolution: realSet.resolution)
        let classes = record.classes.count
        let recipe = Judge.Recipe(width: 32, minimumSteps: 3000, augmentation: ClassifierAugmentation(maxShift: 2))
        var testSum = [Float](repeating: 0, count: testSet.count * classes)
        var poolSum = [Float](repeating: 0, count: poolSet.count * classes)
        for t in 0..<teachers {
            let teacher = try #require(Judge.train(on: realSet, seed: 7000 &+ UInt64(t), recipe: recipe)).classifier
            let onTest = probabilities(teacher, testSet, classes: classes)
            add(onTest, to: &testSum)
            add(probabilities(teacher, poolSet, classes: classes), to: &poolSum)
            print(String(format: "teacher %d: %.1f%%; ensemble of %d: %.1f%%", t + 1,
                         accuracy(onTest, testSet.labels, classes: classes), t + 1, accuracy(testSum, testSet.labels, classes: classes)))
        }
        // Each pool image's most likely class and its mean probability.
        let verdicts = (0..<poolSet.count).map { row -> (label: Int, probability: Float) in
            let best = mostLikely(poolSum, row: row, classes: classes)
            return (best, poolSum[row * classes + best] / Float(teachers))
        }
        let drawnFor = poolSet.labels.map(Int.init)
        let agreeing = verdicts.indices.filter { verdicts[$0].label == drawnFor[$0] && verdicts[$0].probability >= confidence }
        print(String(format: "pool of %d: the ensemble agrees with the drawn class on %.1f%% (%.1f%% at probability %.2f or more)",
                     poolSet.count, 100 * Double(verdicts.indices.filter { verdicts[$0].label == drawnFor[$0] }.count) / Double(poolSet.count),
                     100 * Double(agreeing.count) / Double(poolSet.count), confidence))
        var moved = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        for row in verdicts.indices where verdicts[row].probability >= confidence { moved[drawnFor[row]][verdicts[row].label] += 1 }
        let movedMost = (0..<classes).flatMap { a in (0..<classes).filter { $0 != a }.map { (a, $0, moved[a][$0]) } }
            .sorted { $0.2 > $1.2 }.prefix(5).map { "\(record.classes[$0.0]) -> \(record.classes[$0.1]) \($0.2)" }
        print("relabelled most (drawn for -> put in): " + movedMost.joined(separator: ", "))

        var rng = RandomGenerator(seed: 13)
        for mode in ["agree", "relabel"] {
            var rows = [[Int]](repeating: [], count: classes)
            for row in verdicts.indices where verdicts[row].probability >= confidence {
                if mode == "agree" && verdicts[row].label != drawnFor[row] { continue }
                rows[verdicts[row].label].append(row)
            }
            for (c, name) in record.classes.enumerated() {
                rng.shuffle(&rows[c])
                let kept = rows[c].prefix(keep)
                let folder = out + "/" + mode + "/" + name
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                for (index, row) in kept.enumerated() {
                    try FileManager.default.copyItem(atPath: files[row], toPath: folder + "/\(index).png")
                }
                if kept.count < keep { print("\(mode) \(name): only \(kept.count) of \(keep)") }
            }
        }
    }

    /// Softmax probabilities of `data` (count x classes) by `classifier` in inference mode.
    private func probabilities(_ classifier: Classifier, _ data: LabeledImages, classes: Int) -> [Float] {
        classifier.setTraining(false)
        var out: [Float] = [], labels: [Int32] = []
        for start in stride(from: 0, to: data.count, by: 256) {
            let n = min(256, data.count - start)
            let x = Tensor(zeros: [n, data.channels, data.resolution, data.resolution])
            data.fill(x, labels: &labels, indices: Array(start..<(start + n))[...])
            let logits = classifier.forward(x).values
            for row in 0..<n {
                let z = logits[(row * classes)..<((row + 1) * classes)]
                let top = z.max()!
                let e = z.map { exp($0 - top) }, total = e.reduce(0, +)
                out += e.map { $0 / total }
            }
        }
        return out
    }

    private func add(_ values: [Float], to sum: inout [Float]) {
        for i in values.indices { sum[i] += values[i] }
    }

    private func accuracy(_ probabilities: [Float], _ labels: [Int32], classes: Int) -> Double {
        let right = labels.indices.filter { mostLikely(probabilities, row: $0, classes: classes) == Int(labels[$0]) }.count
        return 100 * Double(right) / Double(labels.count)
    }

    /// The class of `row`'s largest value in `values` (rows of `classes`).
    private func mostLikely(_ values: [Float], row: Int, classes: Int) -> Int {
        let p = values[(row * classes)..<((row + 1) * classes)]
        return p.indices.max { p[$0] < p[$1] }! - row * classes
    }
}
