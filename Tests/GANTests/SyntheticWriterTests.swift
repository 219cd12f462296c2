import Engine
import Foundation
import GAN
import Imaging
import Testing

@Suite final class SyntheticWriterTests {
    private var folders: [String] = []
    deinit { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }

    /// A tiny model trained for two steps on a tiny dataset of 28x28 grey images.
    func trainedState() throws -> (StateFolder, DatasetFolder) {
        let data = try DatasetFolder()
        try data.addImages("cat", count: 3, value: 40)
        try data.addImages("dog", count: 5, value: 90)
        let path = NSTemporaryDirectory() + "synthd-gen-\(UUID().uuidString)"
        folders.append(path)
        let state = try StateFolder(path)
        var options = TrainingOptions()
        options.batchSize = 4
        let trainer = try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32), state: state, options: options)
        try trainer.train(.steps(2))
        return (state, data)
    }

    func files(_ folder: String) throws -> [String] {
        try FileManager.default.subpathsOfDirectory(atPath: folder).filter { $0.hasSuffix(".png") }.sorted()
    }

    @Test func writesCountsLayoutManifestAndIsReproducible() throws {
        let (state, _) = try trainedState()
        let (generator, record) = try SavedGenerator.load(state)
        let out = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (out as NSString).deletingLastPathComponent) }
        let writer = SyntheticWriter(generator: generator, record: record, root: out)
        #expect(try writer.write(counts: [2, 3], seed: 7) == 5)

        let written = try files(out)
        #expect(written.filter { $0.hasPrefix("cat/") }.count == 2 && written.filter { $0.hasPrefix("dog/") }.count == 3)
        let all = try FileManager.default.subpathsOfDirectory(atPath: out)
        #expect(!all.contains { $0.contains(".tmp") }, "temporary files left behind: \(all)")
        for file in written {
            let image = try PNG.read(path: out + "/" + file)
            #expect(image.width == 28 && image.height == 28 && image.mode == .grey, "\(file) is not a 28x28 grey PNG")
        }
        let manifest = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(manifest.count == 5)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let lines = try manifest.map { try decoder.decode(SyntheticWriter.ManifestLine.self, from: Data($0.utf8)) }
        #expect(Set(lines.map(\.file)) == Set(written))
        #expect(lines.allSatisfy { $0.seed == 7 && $0.step == 2 && $0.checkpoint == "step-2" })

        // The same seed again: the same pixels (files are replaced by identical ones, the
        // manifest gains lines); another seed adds files beside the first ones.
        let again = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)/pets"
        defer { try? FileManager.default.removeItem(atPath: (again as NSString).deletingLastPathComponent) }
        try SyntheticWriter(generator: generator, record: record, root: again).write(counts: [2, 3], seed: 7)
        for file in written {
            #expect(try PNG.read(path: again + "/" + file) == PNG.read(path: out + "/" + file), "\(file) differs for the same seed")
        }
        try writer.write(counts: [1, 1], seed: 8)
        #expect(try files(out).count == 7)
    }
}
