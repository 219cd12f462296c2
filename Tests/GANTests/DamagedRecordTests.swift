import Engine
import FileTestSupport
import Foundation
import GAN
import Imaging
import Testing

/// A damaged model.json (a number changed by hand or by the disk) is refused by name where it
/// is read, before any of it sizes a network, an allocation or a loop: every number in it set
/// to each boundary value, and byte-level damage, through everything that reads a record
/// (resuming a training, loading the generator, sampling and writing images at its size).
@Suite final class DamagedRecordTests {
    let data: DatasetFolder
    let folder = NSTemporaryDirectory() + "synthd-record-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: folder) }

    init() throws {
        data = try DatasetFolder()
        try data.addImages("a", count: 12, value: 20)
        try data.addImages("b", count: 12, value: 140)
    }

    func options() -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = 8
        options.baseChannels = 8
        options.checkpointSeconds = 1e9
        return options
    }

    /// Every numeric (and boolean) leaf of a JSON value, as paths of keys and indices.
    func numericPaths(_ value: Any, _ path: [Any] = []) -> [[Any]] {
        if let dictionary = value as? [String: Any] { return dictionary.keys.sorted().flatMap { numericPaths(dictionary[$0]!, path + [$0]) } }
        if let array = value as? [Any] { return array.indices.flatMap { numericPaths(array[$0], path + [$0]) } }
        if value is NSNumber || value is Bool { return [path] }  // booleans too: a number there is refused as well
        return []
    }

    func replacing(_ value: Any, at path: ArraySlice<Any>, with leaf: Any) -> Any {
        guard let key = path.first else { return leaf }
        if var dictionary = value as? [String: Any], let key = key as? String {
            dictionary[key] = replacing(dictionary[key]!, at: path.dropFirst(), with: leaf)
            return dictionary
        }
        var array = value as! [Any]
        array[key as! Int] = replacing(array[key as! Int], at: path.dropFirst(), with: leaf)
        return array
    }

    /// Reads the state as the daemon's jobs do; true when it was accepted.
    func readEverything(_ state: StateFolder, _ what: String) -> Bool {
        do {
            let (generator, record) = try SavedGenerator.load(state)
            let images = try Sampler(generator: generator, record: record).sample(labels: [0, 1], seed: 1)
            // At the dataset's size (an older model's: square, the shorter side, where it is larger than the model's).
            #expect(images.allSatisfy { (1...record.imageWidth).contains($0.width) && (1...record.imageHeight).contains($0.height) }, "\(what)")
            let set = try Trainer.loadDataset(data.root, state: state, resolution: 32, memory: nil)
            _ = try Trainer(set: set, state: state, options: options())
            return true
        } catch {
            #expect("\(error)".contains(state.path), "\(what): \(error)")
            return false
        }
    }

    @Test func everyNumberOfTheRecordAtItsBoundariesIsReadOrRefusedByName() throws {
        let state = try StateFolder(folder)
        let trainer = try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32, memory: nil), state: state, options: options())
        try trainer.train(.steps(1))
        let original = try Data(contentsOf: URL(fileURLWithPath: state.recordPath))
        let json = try JSONSerialization.jsonObject(with: original)
        let paths = numericPaths(json)
        #expect(paths.count >= 10, "\(paths.count) numbers in model.json")
        let boundaries: [Any] = [0, -1, 1, 3, 33, 100_000, Int.max, Int.min, 1e300, -0.5]
        var accepted = 0
        for path in paths {
            for value in boundaries {
                let damaged = replacing(json, at: path[...], with: value)
                try JSONSerialization.data(withJSONObject: damaged).write(to: URL(fileURLWithPath: state.recordPath))
                if readEverything(state, "\(path) = \(value)") { accepted += 1 }
            }
        }
        try original.write(to: URL(fileURLWithPath: state.recordPath))
        #expect(readEverything(state, "the record as written"))
        #expect(accepted > 0 && accepted < paths.count * boundaries.count, "\(accepted) accepted")
    }

    @Test func byteDamageIsReadOrRefusedByName() throws {
        let state = try StateFolder(folder)
        let trainer = try Trainer(set: Trainer.loadDataset(data.root, state: state, resolution: 32, memory: nil), state: state, options: options())
        try trainer.train(.steps(1))
        let original = try Array(Data(contentsOf: URL(fileURLWithPath: state.recordPath)))
        for (i, bytes) in Mutations(of: original, count: 300, seed: 600).enumerated() {
            try Data(bytes).write(to: URL(fileURLWithPath: state.recordPath))
            _ = readEverything(state, "mutant \(i)")
        }
    }
}
