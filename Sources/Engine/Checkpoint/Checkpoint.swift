#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A versioned binary snapshot of named tensors plus string metadata (step, RNG state, ...).
///
/// File layout, little-endian:
///
///     "SYNTHDCK"  magic, 8 bytes
///     UInt32      format version
///     UInt64      payload length in bytes
///     payload     UInt32 metadata count, then (UInt32 length, UTF-8 key, UInt32 length, UTF-8 value)...
///                 UInt32 tensor count, then (UInt32 length, UTF-8 name, UInt32 rank,
///                 UInt64 dims x rank, Float32 values x product(dims))...
///     UInt32      CRC-32 of the payload
///
/// The length and checksum let a reader tell a truncated file from a corrupt one before
/// trusting any of it. `write(to:)` is atomic: readers see the old file or the new one.
public struct Checkpoint: Sendable {
    public static let magic: [UInt8] = Array("SYNTHDCK".utf8)
    public static let formatVersion: UInt32 = 1
    static let headerSize = 8 + 4 + 8

    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let values: [Float]
    }

    public private(set) var entries: [Entry] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// At least what `write(to:)` writes: the values, and an over-estimate of every name,
    /// shape and the metadata (for a free-space check before the work that ends in a write).
    public var bytesAtMost: Int {
        Self.bytesAtMost(entries.map { ($0.name, $0.shape) }, metadata: metadata)
    }

    /// The same bound for a checkpoint of `tensors` and `metadata`, without copying their values.
    public static func bytesAtMost(_ tensors: [NamedTensor], metadata: [String: String]) -> Int {
        bytesAtMost(tensors.map { ($0.name, $0.tensor.shape) }, metadata: metadata)
    }

    private static func bytesAtMost(_ tensors: [(name: String, shape: [Int])], metadata: [String: String]) -> Int {
        tensors.reduce(headerSize + 4096) { $0 + 4 * $1.shape.reduce(1, *) + $1.name.utf8.count + 8 * $1.shape.count + 64 }
            + metadata.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 16 }
    }

    /// Adds a copy of `tensor`'s current values. Names must be unique.
    public mutating func add(_ name: String, _ tensor: Tensor) {
        precondition(entry(named: name) == nil, "checkpoint already holds a tensor named \(name)")
        entries.append(Entry(name: name, shape: tensor.shape, values: tensor.values))
    }

    public mutating func add(_ tensors: [NamedTensor]) {
        for named in tensors { add(named.name, named.tensor) }
    }

    /// Copies the saved values into `tensors`, which must all be present with the same shapes.
    /// `path` names the file in errors.
    ///
    /// Tensors named in `growableRows` may have more rows (first dimension) than saved: the
    /// saved rows are restored and the extra rows keep their current values. That is how a
    /// model grows its class-embedding tables when a dataset gains classes.
    public func restore(_ tensors: [NamedTensor], path: String, growableRows: Set<String> = []) throws(CheckpointError) {
        var byName: [String: Entry] = [:]
        for entry in entries { byName[entry.name] = entry }
        // Check everything before changing anything, so a mismatch leaves the model untouched.
        for named in tensors {
            guard let entry = byName[named.name] else { throw .missingTensor(path: path, name: named.name) }
            let shape = named.tensor.shape
            let grows = growableRows.contains(named.name) && entry.shape.count == shape.count && !shape.isEmpty
                && entry.shape.dropFirst() == shape.dropFirst() && entry.shape[0] <= shape[0]
            guard entry.shape == shape || grows else {
                throw .shapeMismatch(path: path, name: named.name, expected: shape, found: entry.shape)
            }
        }
        for named in tensors {
            let values = byName[named.name]!.values
            values.withUnsafeBufferPointer { named.tensor.data.update(from: $0.baseAddress!, count: values.count) }
        }
    }

    // MARK: Encoding

    /// The file's bytes, built in one buffer: the header's length field is filled in once the
    /// payload is there (a checkpoint is tens of megabytes; a second copy would double that).
    public func encoded() -> [UInt8] {
        var file: [UInt8] = Self.magic
        file.reserveCapacity(entries.reduce(Self.headerSize + 68) { $0 + 64 + $1.values.count * 4 })
        file.appendInteger(Self.formatVersion)
        let lengthOffset = file.count
        file.appendInteger(UInt64(0))
        let payloadStart = file.count
        file.appendInteger(UInt32(metadata.count))
        for key in metadata.keys.sorted() {
            file.appendString(key)
            file.appendString(metadata[key]!)
        }
        file.appendInteger(UInt32(entries.count))
        for entry in entries {
            file.appendString(entry.name)
            file.appendInteger(UInt32(entry.shape.count))
            for dim in entry.shape { file.appendInteger(UInt64(dim)) }
            entry.values.withUnsafeBytes { file.append(contentsOf: $0) }
        }
        let length = UInt64(file.count - payloadStart)
        withUnsafeBytes(of: length.littleEndian) { raw in
            for (i, byte) in raw.enumerated() { file[lengthOffset + i] = byte }
        }
        let checksum = file.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[payloadStart...])) }
        file.appendInteger(checksum)
        return file
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(CheckpointError) -> Checkpoint {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw .notACheckpoint(path: path)
        }
        var reader = ByteReader(bytes: bytes, offset: magic.count)
        guard let version = reader.read(UInt32.self), let length = reader.read(UInt64.self) else {
            throw .truncated(path: path, expectedBytes: headerSize, actualBytes: bytes.count)
        }
        guard version == formatVersion else {
            throw .unsupportedVersion(path: path, found: version, supported: formatVersion)
        }
        // Saturating: a damaged length field can say 2^64 - 1.
        let (sum, overflow) = Int(clamping: length).addingReportingOverflow(headerSize + 4)
        let expected = overflow ? Int.max : sum
        guard bytes.count >= expected else {
            throw .truncated(path: path, expectedBytes: expected, actualBytes: bytes.count)
        }
        guard bytes.count == expected else {
            throw .malformed(path: path, reason: "\(bytes.count - expected) unexpected bytes after the checksum")
        }
        let payloadRange = headerSize..<(headerSize + Int(length))
        let computed = bytes.withUnsafeBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[payloadRange])) }
        var trailer = ByteReader(bytes: bytes, offset: payloadRange.upperBound)
        let stored = trailer.read(UInt32.self)!
        guard stored == computed else { throw .checksumMismatch(path: path, stored: stored, computed: computed) }

        // The checksum matched, so what follows failing means a writer bug, not damage.
        func malformed(_ reason: String) -> CheckpointError { .malformed(path: path, reason: reason) }
        var checkpoint = Checkpoint()
        guard let metadataCount = reader.read(UInt32.self) else { throw malformed("no metadata count") }
        for _ in 0..<metadataCount {
            guard let key = reader.readString(), let value = reader.readString() else {
                throw malformed("metadata entry runs past the payload")
            }
            checkpoint.metadata[key] = value
        }
        guard let tensorCount = reader.read(UInt32.self) else { throw malformed("no tensor count") }
        for _ in 0..<tensorCount {
            guard let name = reader.readString(), let rank = reader.read(UInt32.self), rank <= 8 else {
                throw malformed("tensor header runs past the payload")
            }
            var shape: [Int] = []
            for _ in 0..<rank {
                guard let dim = reader.read(UInt64.self), dim < 1 << 32 else { throw malformed("bad dimension in \(name)") }
                shape.append(Int(dim))
            }
            // Multiplied with a check: eight dimensions under 2^32 can overflow an Int.
            var count = 1
            for dim in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw malformed("tensor \(name)'s shape \(shape) is too large") }
                count = product
            }
            guard let values = reader.readFloats(count) else { throw malformed("tensor \(name) runs past the payload") }
            checkpoint.entries.append(Entry(name: name, shape: shape, values: values))
        }
        guard reader.offset == payloadRange.upperBound else { throw malformed("payload length disagrees with its contents") }
        return checkpoint
    }

    // MARK: Files

    /// Writes atomically: a temporary file in the same folder, fsync, rename over `path`,
    /// fsync of the folder. On any failure the temporary file is removed and `path` is untouched.
    public func write(to path: String) throws(CheckpointError) {
        do {
            try writeFileAtomically(path: path, bytes: encoded())
        } catch {
            throw CheckpointError(error)
        }
    }

    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        let bytes: [UInt8]
        do {
            bytes = try readFile(path: path)
        } catch {
            throw CheckpointError(error)
        }
        return try decode(bytes, path: path)
    }
}

// MARK: - Byte helpers

extension [UInt8] {
    mutating func appendInteger<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ string: String) {
        let utf8 = Array(string.utf8)
        appendInteger(UInt32(utf8.count))
        append(contentsOf: utf8)
    }
}

struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard offset + size <= bytes.count else { return nil }
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        offset += size
        return T(littleEndian: value)
    }

    mutating func readString() -> String? {
        guard let length = read(UInt32.self), offset + Int(length) <= bytes.count else { return nil }
        let string = String(decoding: bytes[offset..<(offset + Int(length))], as: UTF8.self)
        offset += Int(length)
        return string
    }

    mutating func readFloats(_ count: Int) -> [Float]? {
        guard count >= 0, count <= (bytes.count - offset) / 4 else { return nil }
        let start = offset
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: raw[start..<(start + count * 4)]))
            }
            initialized = count
        }
        offset += count * 4
        return values
    }
}
