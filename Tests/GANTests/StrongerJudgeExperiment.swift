import Engine
import Foundation
import Imaging
import GAN
import Testing

/// An experiment of issue 17 (docs/quality.md, "A judge that knows more than the classifier"),
/// not a check: the class check's judge is a narrow classifier trained as `synthd eval`'s are,
/// on the same real images, so it accepts what the measured classifier already believes. This
/// trains a judge of width WIDTH for at least STEPS steps (batches of up to 128), with shifts of
/// up to SHIFT pixels (0: none), on the real folder REAL, prints its accuracy on TEST, and saves it in
/// the state folder STATE (a copy of a model's: `synthd generate` then judges with it).
///
///     SYNTHD_EXPERIMENT_STRONGER_JUDGE="REAL TEST STATE WIDTH STEPS SHIFT" \
///         .build/release/synthdPackageTests.xctest --testing-library swift-testing --filter trainAStrongerJudge
@Suite struct StrongerJudgeExperiment {
    static let arguments = ProcessInfo.processInfo.environment["SYNTHD_EXPERIMENT_STRONGER_JUDGE"]?
        .split(separator: " ").map(String.init)

    @Test(.enabled(if: Self.arguments?.count == 6,
                   "an experiment: SYNTHD_EXPERIMENT_STRONGER_JUDGE=\"REAL TEST STATE WIDTH STEPS SHIFT\" runs it"))
    func trainAStrongerJudge() throws {
        let arguments = try #require(Self.arguments)
        let (real, test, state) = (arguments[0], arguments[1], arguments[2])
        let width = try #require(Int(arguments[3])), steps = try #require(Int(arguments[4])), shift = try #require(Int(arguments[5]))
        let folder = try StateFolder(state)
        let record = try #require(try folder.readRecord())
        let set = try TrainingSet.load(real, classMap: ClassMap(names: record.classes), resolution: record.configuration.resolution,
                                       mode: record.mode)
        let judge = try #require(Judge.train(on: set, seed: 6000, recipe: Judge.Recipe(
            width: width, minimumSteps: steps, augmentation: shift > 0 ? ClassifierAugmentation(maxShift: shift) : nil)))
        let testSet = try TrainingSet.load(test, classMap: set.classMap, resolution: set.resolution, mode: set.mode)
        let data = LabeledImages(testSet)
        let predictions = judge.classifier.evaluate(data).predictions
        let right = zip(predictions, data.labels).filter { $0 == Int($1) }.count
        print(String(format: "judge of width %d, %d steps at least, shifts %d: %.1f%% of %d test images", width, steps, shift,
                     100 * Double(right) / Double(data.count), data.count))
        try judge.save(in: folder)
    }
}
