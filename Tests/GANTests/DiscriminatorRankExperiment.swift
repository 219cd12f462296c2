import Engine
import Foundation
import GAN
import Imaging
import Testing

/// An experiment of issue 17 (docs/quality.md, "The discriminator's choice"), not a check:
/// discriminator rejection sampling (Azadi et al., 2019) as a top-k per class. Each image of a
/// pool that `synthd generate` wrote (class-checked, near-copies dropped) is scored by the
/// model's trained discriminator, in batches of 64 of mixed classes with their own BatchNorm
/// statistics as D was trained; the KEEP highest-scoring images of each class ("lowest": the
/// lowest) are copied into OUT/<class>/.
///
///     SYNTHD_EXPERIMENT_DISCRIMINATOR_RANK="STATE POOL KEEP OUT [lowest]" \
///         .build/release/synthdPackageTests.xctest --testing-library swift-testing --filter keepWhatTheDiscriminatorFindsMostReal
@Suite struct DiscriminatorRankExperiment {
    static let arguments = ProcessInfo.processInfo.environment["SYNTHD_EXPERIMENT_DISCRIMINATOR_RANK"]?
        .split(separator: " ").map(String.init)

    @Test(.enabled(if: (4...5).contains(arguments?.count ?? 0),
                   "an experiment: SYNTHD_EXPERIMENT_DISCRIMINATOR_RANK=\"STATE POOL KEEP OUT [lowest]\" runs it"))
    func keepWhatTheDiscriminatorFindsMostReal() throws {
        let arguments = try #require(Self.arguments)
        let (state, pool, out, lowest) = (arguments[0], arguments[1], arguments[3], arguments.count == 5)
        let keep = try #require(Int(arguments[2]))
        let folder = try StateFolder(state)
        let record = try #require(try folder.readRecord())
        let discriminator = Discriminator(record.configuration)
        try Checkpoint.read(from: folder.checkpointPath).restore(discriminator.stateTensors, path: folder.checkpointPath)
        let set = try TrainingSet.load(pool, classMap: ClassMap(names: record.classes), resolution: record.configuration.resolution,
                                       mode: record.mode)
        let scan = try ImageFolder.scan(pool)
        let paths = scan.classNames.flatMap { scan.files[$0]! }
        try #require(paths.count == set.count && set.rejected.isEmpty, "every file of the pool read, in the scan's order")

        var order = Array(0..<set.count)
        var rng = RandomGenerator(seed: 7)
        rng.shuffle(&order)
        let batch = 64, scoredCount = order.count - order.count % batch
        var logits = [Float](repeating: 0, count: set.count), labels: [Int32] = []
        let images = Tensor(zeros: [batch, set.channels, set.resolution, set.resolution])
        for start in stride(from: 0, to: scoredCount, by: batch) {
            let indices = order[start..<start + batch]
            set.fill(images, labels: &labels, indices: indices)
            let scores = discriminator.forward(images, labels: labels)
            for (row, index) in indices.enumerated() { logits[index] = scores.data[row] }
        }
        let scored = Set(order.prefix(scoredCount))
        for (k, name) in record.classes.enumerated() {
            let members = (0..<set.count).filter { set.labels[$0] == Int32(k) && scored.contains($0) }
                .sorted { lowest ? logits[$0] < logits[$1] : logits[$0] > logits[$1] }
            let kept = Array(members.prefix(keep))
            try FileManager.default.createDirectory(atPath: out + "/" + name, withIntermediateDirectories: true)
            for index in kept {
                try FileManager.default.copyItem(atPath: paths[index],
                                                 toPath: out + "/" + name + "/" + (paths[index] as NSString).lastPathComponent)
            }
            let mean = { (chosen: [Int]) in chosen.map { Double(logits[$0]) }.reduce(0, +) / Double(max(1, chosen.count)) }
            print(String(format: "%@: %d scored, %d kept, mean logit of those kept %.3f, of all %.3f",
                         name, members.count, kept.count, mean(kept), mean(members)))
        }
    }
}
