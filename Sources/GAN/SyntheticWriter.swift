import Engine
import Foundation
import Imaging

/// Writes generated images into `root/<class>/` and records them in `root/manifest.jsonl`.
public struct SyntheticWriter {
    public let generator: Generator
    public let record: ModelRecord
    public let root: String
    /// The standard deviation of the latent vectors (see `Sampler.temperature`).
    public var temperature: Float = Sampler.defaultTemperature

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
        public var temperature: Float
        public var index: Int
        public var checkpoint: String
        public var step: Int
    }

    /// Generates `counts[k]` images of class k. Returns how many files were written.
    ///
    /// Latent vectors come from the seed in class order, so a run is reproducible; files are
    /// named `synth-s<seed>-<checkpoint>-<index>.png`, so another seed or a newer model adds
    /// files next to the old ones. Images are written atomically without an fsync each, flushed
    /// to disk chunk by chunk, and only then does the manifest (also atomic) list them. A file written
    /// again (the same seed and model) replaces its manifest line rather than adding one.
    ///
    /// `shouldStop` is asked between chunks of 8,192 images (about two seconds); when it says
    /// stop, `GenerationStopped` is thrown and the manifest does not list the files written.
    /// `progress` gets the images written so far.
    @discardableResult
    public func write(counts: [Int], seed: UInt64, shouldStop: () -> Bool = { false },
                      progress: (Int) -> Void = { _ in }) throws -> Int {
        precondition(counts.count == record.classes.count, "\(counts.count) counts for \(record.classes.count) classes")
        for name in record.classes { try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true) }
        var labels: [Int32] = []
        for (k, count) in counts.enumerated() { labels += Array(repeating: Int32(k), count: count) }
        guard !labels.isEmpty else { return 0 }

        // Names and manifest lines in class order; sampling in a seeded random order of all
        // requested images, so that every batch mixes classes as in training (see Sampler).
        var names: [String] = [], lines: [ManifestLine] = []
        var perClassIndex = [Int](repeating: 0, count: counts.count)
        for label in labels {
            let k = Int(label)
            let name = "\(record.classes[k])/synth-s\(seed)-\(record.checkpointID)-\(String(format: "%06d", perClassIndex[k])).png"
            names.append(name)
            lines.append(ManifestLine(file: name, class: record.classes[k], classIndex: k, seed: seed,
                                      temperature: temperature, index: perClassIndex[k], checkpoint: record.checkpointID, step: record.steps))
            perClassIndex[k] += 1
        }
        // The manifest's lines are encoded while the images are sampled.
        let encoded = EncodedLines(lines)
        var rng = RandomGenerator(seed: seed)
        var order = Array(labels.indices)
        rng.shuffle(&order)

        var sampler = Sampler(generator: generator, record: record)
        sampler.batchSize = 256
        sampler.temperature = temperature
        // Images are drawn in groups of 2,048, each from its own seed (what fixes the pixels of a
        // seed), and sampled four groups at a time: 32 batches, so that the last batch, which one
        // worker finishes while the other waits, is a small part of the chunk (one group at a
        // time: 176-178% CPU; four: 183-184%). The last group is a chunk of its own, so that
        // writing the last chunk, which nothing overlaps, is short.
        let group = 2048
        let groupStarts = Array(stride(from: 0, to: order.count, by: group))
        var chunks = stride(from: 0, to: groupStarts.count, by: 4).map { Array(groupStarts[$0..<min(groupStarts.count, $0 + 4)]) }
        if let last = chunks.last, last.count > 1 { chunks[chunks.count - 1].removeLast(); chunks.append([last.last!]) }
        // Each chunk is encoded, written and flushed to disk on a background thread while the
        // next one is sampled, so that time file creation spends waiting (on the folder's lock,
        // on a slow disk) is not lost to the sampler, and the flush before the manifest has
        // only the last chunk left to write.
        let background = ChunkWriter()
        var written = 0
        for starts in chunks {
            if shouldStop() {
                try? background.wait()
                throw GenerationStopped()
            }
            let part = starts.flatMap { order[$0..<min(order.count, $0 + group)] }
            let groups = starts.map { start in
                (labels: order[start..<min(order.count, start + group)].map { labels[$0] }, seed: rng.nextUInt64())
            }
            let images = sampler.sample(groups)
            try background.wait()
            if written > 0 { progress(written) }
            background.start(images, paths: part.map { root + "/" + names[$0] })
            written += part.count
        }
        try background.wait()
        progress(written)
        syncFileSystem(containing: root)
        try appendManifest(encoded.wait())
        return labels.count
    }

    /// Adds `lines` (one JSON object each) to the manifest, dropping earlier lines for the same
    /// files. Lines that do not parse (written by someone else) are kept as they are.
    func appendManifest(_ lines: [(file: String, json: String)]) throws {
        let path = root + "/manifest.jsonl"
        let rewritten = Set(lines.map(\.file))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var text = ""
        let old = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        for line in old.split(separator: "\n") {
            if let parsed = try? decoder.decode(FileField.self, from: Data(line.utf8)), rewritten.contains(parsed.file) { continue }
            text += line + "\n"
        }
        for line in lines { text += line.json + "\n" }
        try writeFileAtomically(path: path, bytes: Array(text.utf8))
    }

    /// The one field of a manifest line that says which file it describes.
    private struct FileField: Decodable { var file: String }
}

/// Generation was asked to stop before it finished.
public struct GenerationStopped: Error, CustomStringConvertible {
    public var description: String { "generation stopped before it finished" }
}

/// Encodes and writes one chunk of images at a time on a background thread.
final class ChunkWriter: @unchecked Sendable {
    private let group = DispatchGroup()
    private let failures = ErrorSlot()

    /// Starts writing `images[i]` to `paths[i]`; call `wait` before the next `start`.
    func start(_ images: [Image], paths: [String]) {
        group.enter()
        DispatchQueue.global().async { [failures, group] in
            Parallel.forRanges(images.count, minimumPerChunk: 64) { range in
                for i in range {
                    do {
                        try PNG.write(images[i], to: paths[i], durable: false)
                    } catch {
                        failures.record(error)
                    }
                }
            }
            syncFileSystem(containing: paths.first ?? "/")
            group.leave()
        }
    }

    /// Waits for the chunk in flight; throws the first error any chunk met.
    func wait() throws {
        group.wait()
        if let error = failures.first { throw error }
    }
}

/// Manifest lines encoded as JSON on a background thread (60,000 take ~0.4 s: too long to
/// wait for at the end).
final class EncodedLines: @unchecked Sendable {
    private let group = DispatchGroup()
    private var encoded: Result<[(file: String, json: String)], any Error> = .success([])

    init(_ lines: [SyntheticWriter.ManifestLine]) {
        group.enter()
        DispatchQueue.global().async { [self] in
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoded = Result { try lines.map { ($0.file, String(decoding: try encoder.encode($0), as: UTF8.self)) } }
            group.leave()
        }
    }

    func wait() throws -> [(file: String, json: String)] {
        group.wait()
        return try encoded.get()
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
