import Engine
import Foundation
@testable import GAN
import Imaging
import Testing

/// An experiment of issue 17 (docs/quality.md, "Whose ground a sample stands on"), not a
/// check: the class check asks the judge's softmax, which extrapolates past the real images;
/// this asks the real images themselves. Each image of a pool that `synthd generate` wrote
/// (class-checked, near-copies dropped) gets, in the judge's features, its squared distance to
/// the nearest real image of every class; its score is the distance to its own class over the
/// distance to the nearest other class (under 1: nearest to a real image of its own class).
/// The KEEP images of each class with the lowest scores ("inside"), the highest ("outside"),
/// or drawn at random ("random") are copied into OUT/<class>/.
///
///     SYNTHD_EXPERIMENT_NEIGHBOUR_CLASS="STATE POOL KEEP OUT inside|random|outside" \
///         .build/release/synthdPackageTests.xctest --testing-library swift-testing --filter keepWhatStandsOnItsOwnClassesGround
@Suite struct NeighbourClassExperiment {
    static let arguments = ProcessInfo.processInfo.environment["SYNTHD_EXPERIMENT_NEIGHBOUR_CLASS"]?
        .split(separator: " ").map(String.init)

    @Test(.enabled(if: Self.arguments?.count == 5,
                   "an experiment: SYNTHD_EXPERIMENT_NEIGHBOUR_CLASS=\"STATE POOL KEEP OUT inside|random|outside\" runs it"))
    func keepWhatStandsOnItsOwnClassesGround() throws {
        let arguments = try #require(Self.arguments)
        let (state, pool, out, mode) = (arguments[0], arguments[1], arguments[3], arguments[4])
        let keep = try #require(Int(arguments[2]))
        try #require(["inside", "random", "outside"].contains(mode))
        let folder = try StateFolder(state)
        let record = try #require(try folder.readRecord())
        let judge = try #require(try Judge.load(from: folder))
        let nearCopies = try #require(judge.nearCopies, "the judge keeps its real images' features")
        let norms = nearCopies.real.map(NearCopies.squaredNorms)
        var rng = RandomGenerator(seed: 11)

        for (c, name) in record.classes.enumerated() {
            let files = try FileManager.default.contentsOfDirectory(atPath: pool + "/" + name).filter { $0.hasSuffix(".png") }.sorted()
            let images = try files.map { file throws(ImageError) in try PNG.read(path: pool + "/" + name + "/" + file) }
            let features = judge.features(images)
            // Per class k, each sample's squared distance to the nearest real image of k.
            let distances = nearCopies.real.indices.map { k in
                NearCopies.nearest(features, among: nearCopies.real[k], norms: norms[k], leavingOut: false)
            }
            var scores: [Float] = [], nearestOther = [Int](repeating: 0, count: record.classes.count)
            for row in files.indices {
                let own = distances[c][row]
                let (other, otherDistance) = distances.indices.filter { $0 != c }.map { ($0, distances[$0][row]) }.min { $0.1 < $1.1 }!
                scores.append(own / max(otherDistance, 1e-12))
                if otherDistance < own { nearestOther[other] += 1 }
            }
            var order = Array(files.indices)
            switch mode {
            case "inside": order.sort { scores[$0] < scores[$1] }
            case "outside": order.sort { scores[$0] > scores[$1] }
            default: rng.shuffle(&order)
            }
            let kept = Array(order.prefix(keep))
            try FileManager.default.createDirectory(atPath: out + "/" + name, withIntermediateDirectories: true)
            for row in kept {
                try FileManager.default.copyItem(atPath: pool + "/" + name + "/" + files[row], toPath: out + "/" + name + "/" + files[row])
            }
            let strays = nearestOther.reduce(0, +)
            let mostly = nearestOther.indices.filter { nearestOther[$0] > 0 }.sorted { nearestOther[$0] > nearestOther[$1] }
                .prefix(3).map { "\(record.classes[$0]) \(nearestOther[$0])" }.joined(separator: ", ")
            let mean = { (rows: [Int]) in rows.map { Double(scores[$0]) }.reduce(0, +) / Double(max(1, rows.count)) }
            print(String(format: "%@: %d samples, %d nearer another class's real image (%@); mean score kept %.3f, all %.3f",
                         name, files.count, strays, mostly, mean(kept), mean(Array(files.indices))))
        }
    }
}
