import Engine
import Foundation
import Imaging

/// Writes generated images into `root/<class>/` and records them in `root/manifest.jsonl`.
public struct SyntheticWriter {
    public let generator: Generator
    public let record: ModelRecord
    public let root: String

    public init(generator: Generator, record: ModelRecord, root: String) {
        self.generator = generator
        self.record = record
        self.root = root
    }

    /// One line of the manifest.
    public struct ManifestLine: Codable, Equatable, Sendable {
        public var file: String
        public var `class`: String
        public var classIndex: Int
        public var seed: UInt64
        public var index: Int
        public var checkpoint: String
        public var step: Int
    }

    /// Generates `counts[k]` images of class k. Returns how many files were written.
    ///
    /// Latent vectors come from the seed in class order, so a run is reproducible; files are
    /// named `synth-s<seed>-<checkpoint>-<index>.png`, so another seed or a newer model adds
    /// files next to the old ones. Images are written atomically without an fsync each, then
    /// flushed once, and only then does the manifest (also atomic) list them.
    @discardableResult
    public func write(counts: [Int], seed: UInt64) throws -> Int {
        precondition(counts.count == record.classes.count, "\(counts.count) counts for \(record.classes.count) classes")
        for name in record.classes { try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true) }
        var labels: [Int32] = []
        for (k, count) in counts.enumerated() { labels += Array(repeating: Int32(k), count: count) }
        guard !labels.isEmpty else { return 0 }

        var lines: [ManifestLine] = []
        var perClassIndex = [Int](repeating: 0, count: counts.count)
        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 256
        // Sample and write a chunk at a time to bound memory.
        let chunk = 2048
        var rng = RandomGenerator(seed: seed)
        var offset = 0
        while offset < labels.count {
            let part = Array(labels[offset..<min(labels.count, offset + chunk)])
            let images = sampler.sample(labels: part, seed: rng.nextUInt64())
            var names: [String] = []
            for label in part {
                let k = Int(label)
                names.append("\(record.classes[k])/synth-s\(seed)-\(record.checkpointID)-\(String(format: "%06d", perClassIndex[k])).png")
                lines.append(ManifestLine(file: names.last!, class: record.classes[k], classIndex: k, seed: seed,
                                          index: perClassIndex[k], checkpoint: record.checkpointID, step: record.steps))
                perClassIndex[k] += 1
            }
            let failures = ErrorSlot()
            Parallel.forRanges(images.count, minimumPerChunk: 64) { range in
                for i in range {
                    do {
                        try PNG.write(images[i], to: root + "/" + names[i], durable: false)
                    } catch {
                        failures.record(error)
                    }
                }
            }
            if let error = failures.first { throw error }
            offset += part.count
        }
        syncFileSystem(containing: root)
        try appendManifest(lines)
        return labels.count
    }

    func appendManifest(_ lines: [ManifestLine]) throws {
        let path = root + "/manifest.jsonl"
        var text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for line in lines { text += String(decoding: try encoder.encode(line), as: UTF8.self) + "\n" }
        try writeFileAtomically(path: path, bytes: Array(text.utf8))
    }
}

/// The first error seen by concurrent workers.
final class ErrorSlot: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var first: (any Error)?
    func record(_ error: any Error) {
        lock.lock()
        if first == nil { first = error }
        lock.unlock()
    }
}
