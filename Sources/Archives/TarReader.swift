/// A tar file's members, read in order from a stream (the file itself, or gzip's output for a
/// `.tar.gz`): POSIX ustar and pax headers (long names, large sizes) and GNU's long names and
/// base-256 sizes, as GNU tar and Python's tarfile write them. Each header's checksum is
/// checked, so a file that is not a tar, or a damaged one, is refused at its first bad header.
public final class TarReader: ArchiveReader {
    public let path: String
    private let stream: any ByteStream
    /// Data of the current member not yet read, and the padding to its 512-byte boundary.
    private var remaining: UInt64 = 0
    private var padding: UInt64 = 0
    private var current: BoundedStream?
    /// The archive's bytes read so far, where they are counted.
    private let counter: CountingStream?

    /// `counter`: counts the archive file's bytes as the stream reads them (for `fractionRead`).
    init(stream: any ByteStream, path: String, counter: CountingStream? = nil) {
        self.stream = stream
        self.path = path
        self.counter = counter
    }

    public var fractionRead: Double? {
        guard let counter, counter.total > 0 else { return nil }
        return min(1, Double(counter.count) / Double(counter.total))
    }

    /// The most bytes a pax or GNU long-name record may take.
    static let maxRecordBytes = 1 << 20

    public func nextEntry() throws(ArchiveError) -> ArchiveEntry? {
        if let current { remaining = current.left }
        current = nil
        guard try stream.skip(remaining + padding) else { throw cutShort() }
        remaining = 0
        padding = 0
        var longName: String?
        var paxPath: String?
        var paxSize: UInt64?
        var header = [UInt8](repeating: 0, count: 512)
        while true {
            let complete = try header.fill(from: stream)
            // The end: two zero blocks (one, or none, from some writers).
            guard complete else { return nil }
            if header.allSatisfy({ $0 == 0 }) { return nil }
            try checkSum(header)
            let type = header[156]
            let size: UInt64
            if let paxSize { size = paxSize } else { size = try number(header[124..<136], field: "size") }
            guard size < 1 << 62 else { throw .malformed(archive: path, reason: "a member's size of \(size) bytes") }
            let padded = (size + 511) / 512 * 512
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "L"):
                guard size <= UInt64(Self.maxRecordBytes) else {
                    throw .malformed(archive: path, reason: "a \(type == UInt8(ascii: "x") ? "pax" : "long-name") record of \(size) bytes")
                }
                var record = [UInt8](repeating: 0, count: Int(padded))
                guard try record.fill(from: stream) else { throw cutShort() }
                let body = Array(record[0..<Int(size)])
                if type == UInt8(ascii: "L") {
                    longName = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                } else {
                    let fields = try paxFields(body)
                    if let value = fields["path"] { paxPath = value }
                    if let value = fields["size"] {
                        guard let parsed = UInt64(value) else { throw .malformed(archive: path, reason: "a pax size of '\(value)'") }
                        paxSize = parsed
                    }
                }
                continue
            case UInt8(ascii: "g"), UInt8(ascii: "K"):
                // Global pax defaults and GNU long link names: nothing synthd uses.
                guard try stream.skip(padded) else { throw cutShort() }
                continue
            default: break
            }
            let name = paxPath ?? longName ?? ustarName(header)
            let kind: ArchiveEntry.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = name.hasSuffix("/") ? .folder : .file
            case UInt8(ascii: "5"): kind = .folder
            case UInt8(ascii: "1"), UInt8(ascii: "2"): kind = .link
            default: kind = .special
            }
            // Links and folders carry no data whatever their size field says (hard links
            // written by some tools do): only what is there is passed over.
            remaining = kind == .file || kind == .special ? size : 0
            padding = kind == .file || kind == .special ? padded - size : 0
            return ArchiveEntry(name: name, kind: kind, size: size)
        }
    }

    public func contents() throws(ArchiveError) -> any ByteStream {
        let bounded = BoundedStream(stream, count: remaining, cutShort: cutShort())
        remaining = 0
        current = bounded
        return bounded
    }

    private func cutShort() -> ArchiveError { .malformed(archive: path, reason: "it ends in the middle of a member") }

    /// The header's checksum: the sum of its bytes with the checksum field read as spaces.
    private func checkSum(_ header: [UInt8]) throws(ArchiveError) {
        let stored = try number(header[148..<156], field: "checksum")
        var sum: UInt64 = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : UInt64(byte) }
        guard stored == sum else {
            throw .malformed(archive: path, reason: "not a tar file, or a damaged one (a header's checksum does not match)")
        }
    }

    /// A numeric field: octal digits (spaces and NULs around them), or GNU's base-256 (the
    /// first byte's high bit set) for sizes of 8 GiB and more.
    private func number(_ field: ArraySlice<UInt8>, field name: String) throws(ArchiveError) -> UInt64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: UInt64 = UInt64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value >> 56 == 0 else { throw .malformed(archive: path, reason: "a \(name) too large to be true") }
                value = value << 8 | UInt64(byte)
            }
            return value
        }
        var value: UInt64 = 0
        var seenDigit = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value >> 60 == 0 else { throw .malformed(archive: path, reason: "a \(name) too large to be true") }
                value = value << 3 | UInt64(byte - UInt8(ascii: "0"))
                seenDigit = true
            case 0, UInt8(ascii: " "):
                if seenDigit { return value }
            default:
                throw .malformed(archive: path, reason: "not a tar file, or a damaged one (a header's \(name) field is not a number)")
            }
        }
        return value
    }

    /// ustar's name: the prefix field, a slash, the name field (each NUL-terminated).
    private func ustarName(_ header: [UInt8]) -> String {
        func text(_ range: Range<Int>) -> String { String(decoding: header[range].prefix { $0 != 0 }, as: UTF8.self) }
        let name = text(0..<100)
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? text(345..<500) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    /// pax records: "<length> <key>=<value>\n", each length counting the whole record.
    private func paxFields(_ body: [UInt8]) throws(ArchiveError) -> [String: String] {
        var fields: [String: String] = [:]
        var at = 0
        while at < body.count {
            guard let space = body[at...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: body[at..<space], as: UTF8.self)), length > 0, at + length <= body.count,
                  let equals = body[(space + 1)..<(at + length)].firstIndex(of: UInt8(ascii: "=")) else {
                throw .malformed(archive: path, reason: "a damaged pax header")
            }
            let key = String(decoding: body[(space + 1)..<equals], as: UTF8.self)
            let value = String(decoding: body[(equals + 1)..<(at + length - 1)], as: UTF8.self)
            fields[key] = value
            at += length
        }
        return fields
    }
}

/// The next `count` bytes of a stream, then its end; a stream that ends first is an error.
final class BoundedStream: ByteStream {
    private let source: any ByteStream
    private(set) var left: UInt64
    private let shortError: ArchiveError

    init(_ source: any ByteStream, count: UInt64, cutShort: ArchiveError) {
        self.source = source
        left = count
        shortError = cutShort
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard left > 0, buffer.count > 0 else { return 0 }
        let want = Int(min(UInt64(buffer.count), left))
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        guard n > 0 else { throw shortError }
        left -= UInt64(n)
        return n
    }
}
