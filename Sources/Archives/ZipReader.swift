import CZlib

/// A zip file's members, read from its central directory (the record at the end of the file
/// that lists every member with its sizes, CRC and offset), as unzip does. Zip64 (more than
/// 65,535 members or 4 GiB) is read; members stored, deflated, or compressed by bzip2 or LZMA
/// (as 7-Zip and Python's zipfile can write them) are unpacked, each checked against its CRC
/// and size. Split zips and encrypted members are refused with a reason.
public final class ZipReader: ArchiveReader {
    public var path: String { file.path }
    let file: ArchiveFile
    private let members: [Member]
    private var index = -1

    struct Member {
        let entry: ArchiveEntry
        let flags: UInt16
        let method: UInt16
        let crc: UInt32
        let compressedSize: UInt64
        let localHeaderOffset: UInt64
    }

    /// The most members a zip may list, and the most bytes its directory may take: both are
    /// held in memory (about 100 bytes a member), so a directory that claims more is refused
    /// before it is read.
    public static let maxMembers = 2_000_000
    public static let maxDirectoryBytes: UInt64 = 256 << 20

    public convenience init(path: String) throws(ArchiveError) {
        try self.init(file: ArchiveFile(path: path))
    }

    init(file: ArchiveFile) throws(ArchiveError) {
        self.file = file
        members = try Self.readDirectory(file)
    }

    /// How many members the directory lists (folders included).
    public var memberCount: Int { members.count }

    /// Members are read in the directory's order, which is (nearly always) the file's: the
    /// share of the file before the current member.
    public var fractionRead: Double? {
        guard index >= 0, index < members.count, file.size > 0 else { return nil }
        return min(1, Double(members[index].localHeaderOffset) / Double(file.size))
    }

    public func nextEntry() throws(ArchiveError) -> ArchiveEntry? {
        index += 1
        return index < members.count ? members[index].entry : nil
    }

    public func contents() throws(ArchiveError) -> any ByteStream {
        let member = members[index]
        let name = member.entry.name
        if member.flags & 0x41 != 0 || member.method == 99 {
            throw .unsupported(archive: path, entry: name, reason: "encrypted (password-protected)")
        }
        let header = try file.bytes(at: member.localHeaderOffset, count: 30, what: "\(name)'s local header")
        guard header.uint32(at: 0) == 0x0403_4B50 else {
            throw .malformed(archive: path, reason: "\(name)'s local header is not where the directory says")
        }
        let start = member.localHeaderOffset + 30 + UInt64(header.uint16(at: 26)) + UInt64(header.uint16(at: 28))
        guard start <= file.size, member.compressedSize <= file.size - start else {
            throw .malformed(archive: path, reason: "\(name)'s data runs past the end of the file")
        }
        let raw = FileRange(file, from: start, count: member.compressedSize)
        let data: any ByteStream
        switch member.method {
        case 0:
            guard member.compressedSize == member.entry.size else {
                throw .damagedEntry(archive: path, entry: name, reason: "stored with \(member.compressedSize) bytes where its size is \(member.entry.size)")
            }
            data = raw
        case 8: data = try InflatingStream(raw, wrapper: .raw, archive: path, entry: name)
        case 12: data = DecodingStream(raw, codec: try BZip2Codec(), archive: path, entry: name)
        case 14:
            // Version (2 bytes), the properties' length (2: always 5), the properties, then the data.
            guard member.compressedSize >= 9 else { throw .damagedEntry(archive: path, entry: name, reason: "its LZMA header ends early") }
            let head = try file.bytes(at: start, count: 9, what: "\(name)'s LZMA header")
            guard head.uint16(at: 2) == 5 else {
                throw .damagedEntry(archive: path, entry: name, reason: "its LZMA header is not one of 5 property bytes")
            }
            let lzma = FileRange(file, from: start + 9, count: member.compressedSize - 9)
            do { data = DecodingStream(lzma, codec: try RawLZMACodec(properties: Array(head[4..<9]), size: member.entry.size), archive: path, entry: name) }
            catch { throw .damagedEntry(archive: path, entry: name, reason: "its LZMA header: \(error.reason)") }
        default:
            throw .unsupported(archive: path, entry: name, reason: "compressed by \(Self.methodName(member.method)), which synthd does not unpack "
                + "(it reads stored, deflated, bzip2 and LZMA members; `unzip` then `zip -r` repacks it deflated)")
        }
        return CheckedStream(data, size: member.entry.size, crc: member.crc, archive: path, entry: name)
    }

    static func methodName(_ method: UInt16) -> String {
        switch method {
        case 9: return "Deflate64"
        case 12: return "bzip2"
        case 14: return "LZMA"
        case 93: return "Zstandard"
        case 95: return "XZ"
        case 98: return "PPMd"
        default: return "method \(method)"
        }
    }

    // MARK: The central directory

    private static func readDirectory(_ file: ArchiveFile) throws(ArchiveError) -> [Member] {
        let path = file.path
        // The end record: 22 bytes and a comment of up to 65,535, at the very end.
        let tailCount = Int(min(file.size, 22 + 65_535))
        let tail = try file.bytes(at: file.size - UInt64(tailCount), count: tailCount, what: "the end record")
        var at = tailCount - 22
        while at >= 0 && !(tail.uint32(at: at) == 0x0605_4B50 && at + 22 + Int(tail.uint16(at: at + 20)) <= tailCount) { at -= 1 }
        guard at >= 0 else {
            throw .malformed(archive: path, reason: file.size == 0 ? "an empty file" : "no zip end record at its end")
        }
        let endOffset = file.size - UInt64(tailCount - at)
        guard tail.uint16(at: at + 4) == 0, tail.uint16(at: at + 6) == 0 else {
            throw .unsupported(archive: path, entry: "the archive", reason: "a split (multi-part) zip; join its parts (`zip -s 0 in.zip --out whole.zip`)")
        }
        var count = UInt64(tail.uint16(at: at + 10))
        var directorySize = UInt64(tail.uint32(at: at + 12))
        var directoryOffset = UInt64(tail.uint32(at: at + 16))
        // Zip64: a locator 20 bytes before the end record points at the zip64 end record.
        if endOffset >= 20 {
            let locator = try file.bytes(at: endOffset - 20, count: 20, what: "the zip64 locator")
            if locator.uint32(at: 0) == 0x0706_4B50 {
                let record = try file.bytes(at: locator.uint64(at: 8), count: 56, what: "the zip64 end record")
                guard record.uint32(at: 0) == 0x0606_4B50 else { throw .malformed(archive: path, reason: "the zip64 end record is not where its locator says") }
                count = record.uint64(at: 32)
                directorySize = record.uint64(at: 40)
                directoryOffset = record.uint64(at: 48)
            }
        }
        guard count <= UInt64(maxMembers) else {
            throw .overLimit(archive: path, reason: "its directory lists \(count) members, over the \(maxMembers) synthd unpacks")
        }
        guard directoryOffset <= file.size, directorySize <= file.size - directoryOffset else {
            throw .malformed(archive: path, reason: "its directory lies past the end of the file")
        }
        guard directorySize <= maxDirectoryBytes else {
            throw .overLimit(archive: path, reason: "its directory takes \(directorySize >> 20) MiB, over the \(maxDirectoryBytes >> 20) MiB synthd reads")
        }
        let directory = try file.bytes(at: directoryOffset, count: Int(directorySize), what: "the directory")
        var members: [Member] = []
        members.reserveCapacity(Int(count))
        var offset = 0
        for _ in 0..<count {
            guard offset + 46 <= directory.count, directory.uint32(at: offset) == 0x0201_4B50 else {
                throw .malformed(archive: path, reason: "its directory is damaged (member \(members.count + 1) of \(count))")
            }
            let nameLength = Int(directory.uint16(at: offset + 28))
            let extraLength = Int(directory.uint16(at: offset + 30))
            let commentLength = Int(directory.uint16(at: offset + 32))
            let next = offset + 46 + nameLength + extraLength + commentLength
            guard next <= directory.count else { throw .malformed(archive: path, reason: "its directory is cut short") }
            let nameBytes = Array(directory[(offset + 46)..<(offset + 46 + nameLength)])
            let extra = directory[(offset + 46 + nameLength)..<(offset + 46 + nameLength + extraLength)]
            let flags = directory.uint16(at: offset + 8)
            var size = UInt64(directory.uint32(at: offset + 24))
            var compressed = UInt64(directory.uint32(at: offset + 20))
            var local = UInt64(directory.uint32(at: offset + 42))
            var unicodePath: String?
            // Extra fields: the zip64 sizes and offset (those that read 0xFFFFFFFF above, in
            // that order), and the Unicode path.
            var field = extra.startIndex
            while field + 4 <= extra.endIndex {
                let id = extra.uint16(at: field), length = Int(extra.uint16(at: field + 2))
                let body = field + 4
                guard body + length <= extra.endIndex else { break }
                if id == 0x0001 {
                    var at = body
                    for index in 0..<3 {
                        var value = [size, compressed, local][index]
                        guard value == 0xFFFF_FFFF, at + 8 <= body + length else { continue }
                        value = extra.uint64(at: at)
                        at += 8
                        if index == 0 { size = value } else if index == 1 { compressed = value } else { local = value }
                    }
                } else if id == 0x7075 {
                    unicodePath = ZipNames.unicodePath(in: extra[body..<(body + length)], name: nameBytes)
                }
                field = body + length
            }
            // Some Windows tools separate folders by backslashes, which the format forbids.
            let name = String(ZipNames.decode(nameBytes, flaggedUTF8: flags & 0x800 != 0, unicodePath: unicodePath)
                .map { $0 == "\\" ? "/" : $0 })
            let host = directory[offset + 5]
            let external = directory.uint32(at: offset + 38)
            let kind: ArchiveEntry.Kind
            if host == 3, external >> 16 != 0 {  // Unix: the mode in the high half
                switch (external >> 16) & 0o170000 {
                case 0o120000: kind = .link
                case 0o040000: kind = .folder
                // No type bits (Python's zipfile writes permissions alone): as the name says.
                case 0o100000, 0: kind = name.hasSuffix("/") ? .folder : .file
                default: kind = .special
                }
            } else {
                kind = name.hasSuffix("/") || external & 0x10 != 0 ? .folder : .file
            }
            members.append(Member(entry: ArchiveEntry(name: name, kind: kind, size: size), flags: flags,
                                  method: directory.uint16(at: offset + 10), crc: directory.uint32(at: offset + 16),
                                  compressedSize: compressed, localHeaderOffset: local))
            offset = next
        }
        return members
    }
}

/// A member's data checked as it is read: never more than its declared size (a member that
/// inflates to more is damaged, or a bomb), and at its end exactly that size and its CRC.
final class CheckedStream: ByteStream {
    private let source: any ByteStream
    private let size: UInt64
    private let crc: UInt32
    private let archive: String, entry: String
    private var count: UInt64 = 0
    private var running = CZlib.crc32(0, nil, 0)
    private var ended = false

    init(_ source: any ByteStream, size: UInt64, crc: UInt32, archive: String, entry: String) {
        (self.source, self.size, self.crc, self.archive, self.entry) = (source, size, crc, archive, entry)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard !ended else { return 0 }
        // One byte past the declared size is asked for, to tell a member that is longer.
        let want = Int(min(UInt64(buffer.count), size - count + 1))
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        count += UInt64(n)
        guard count <= size else {
            throw .damagedEntry(archive: archive, entry: entry, reason: "it unpacks to more than its declared \(size) bytes")
        }
        if n > 0 {
            running = CZlib.crc32(running, buffer.baseAddress!.assumingMemoryBound(to: Bytef.self), UInt32(n))
            return n
        }
        ended = true
        guard count == size else {
            throw .damagedEntry(archive: archive, entry: entry, reason: "\(count) bytes where the directory says \(size)")
        }
        guard UInt32(running) == crc else { throw .damagedEntry(archive: archive, entry: entry, reason: "CRC mismatch") }
        return 0
    }
}

/// zlib's CRC-32 of some bytes.
func zipCRC32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { UInt32(CZlib.crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), UInt32($0.count))) }
}

extension Collection where Element == UInt8, Index == Int {
    /// Little-endian integers at an index (zip's byte order).
    func uint16(at i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    func uint32(at i: Int) -> UInt32 { UInt32(uint16(at: i)) | UInt32(uint16(at: i + 2)) << 16 }
    func uint64(at i: Int) -> UInt64 { UInt64(uint32(at: i)) | UInt64(uint32(at: i + 4)) << 32 }
}
