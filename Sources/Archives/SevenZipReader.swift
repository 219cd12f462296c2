/// A 7z archive's members, read from its header at the end (compressed or not), as 7-Zip
/// reads it. A 7z file keeps its data in folders: streams each compressed as one (a solid
/// archive puts every file in one), the files of a folder one after another in it. Folders
/// compressed by LZMA2 (7-Zip's default), LZMA, Deflate or bzip2, or stored, are unpacked, and
/// LZMA2 or LZMA after x86 BCJ (py7zr's default); each file checked against its CRC and size.
/// Encrypted archives, other filters and coders (PPMd, BCJ2) are refused with the reason.
public final class SevenZipReader: ArchiveReader {
    public var path: String { file.path }
    let file: ArchiveFile
    private let folders: [Folder]
    private let members: [Member]
    private var index = -1
    /// The folder being unpacked, and how far: a solid folder is read once, front to back,
    /// whatever members the caller passes over.
    private var cursor: FolderCursor?
    private let readAheadBytes: UInt64

    public static let signature: [UInt8] = [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]
    /// The most members, and the most bytes the header may take once unpacked: both are held
    /// in memory, so a header that claims more is refused before it is read.
    public static let maxMembers = ZipReader.maxMembers
    public static let maxHeaderBytes: UInt64 = 256 << 20

    struct Coder: Equatable {
        let id: [UInt8]
        let properties: [UInt8]
    }

    struct Folder {
        /// Its coders from its output back to its packed stream (x86 BCJ, then LZMA2); nil:
        /// a folder synthd does not unpack, and why (`refusal`).
        let chain: [Coder]?
        let refusal: String?
        let packOffset: UInt64, packSize: UInt64
        let unpackSize: UInt64
        let crc: UInt32?
    }

    struct Member {
        let entry: ArchiveEntry
        /// The folder holding its bytes, and where in the folder's output they start.
        let folder: Int?
        let offset: UInt64
        let crc: UInt32?
    }

    public convenience init(path: String) throws(ArchiveError) {
        try self.init(file: ArchiveFile(path: path))
    }

    /// `readAheadBytes`: folders that unpack to this much or more are decoded ahead on a
    /// thread of their own.
    init(file: ArchiveFile, readAheadBytes: UInt64 = 4 << 20) throws(ArchiveError) {
        self.file = file
        self.readAheadBytes = readAheadBytes
        (folders, members) = try Self.readHeader(file)
    }

    public var memberCount: Int { members.count }

    public var fractionRead: Double? {
        guard index >= 0, file.size > 0 else { return nil }
        return min(1, Double(cursor.map { folders[$0.folder].packOffset + $0.counter.count } ?? 0) / Double(file.size))
    }

    public func nextEntry() throws(ArchiveError) -> ArchiveEntry? {
        index += 1
        return index < members.count ? members[index].entry : nil
    }

    public func contents() throws(ArchiveError) -> any ByteStream {
        let member = members[index]
        let name = member.entry.name
        guard let f = member.folder, member.entry.size > 0 else { return EmptyStream() }
        let folder = folders[f]
        guard let chain = folder.chain else { throw .unsupported(archive: path, entry: name, reason: folder.refusal ?? "not unpacked") }
        if cursor == nil || cursor!.folder != f || cursor!.position > member.offset {
            let counter = CountingStream(FileRange(file, from: folder.packOffset, count: folder.packSize), total: folder.packSize)
            let decoded = try Self.decoder(chain, counter, size: folder.unpackSize, archive: path, entry: name)
            // A large folder (a solid archive's one) is decoded on a thread of its own while
            // its files are written, as a compressed tar is; a folder of one small file is not
            // worth a thread.
            let stream = folder.unpackSize >= readAheadBytes ? ReadAheadStream(decoded) : decoded
            cursor = FolderCursor(folder: f, stream: stream, counter: counter, size: folder.unpackSize)
        }
        let cursor = cursor!
        try cursor.skip(to: member.offset, archive: path, entry: name)
        let slice = FolderSlice(cursor, count: member.entry.size, archive: path, entry: name)
        guard let crc = member.crc else { return slice }
        return CheckedStream(slice, size: member.entry.size, crc: crc, archive: path, entry: name)
    }

    /// The coder ids `decoder` knows (7-Zip's Methods.txt).
    static let copy: [UInt8] = [0x00], lzma2: [UInt8] = [0x21], lzma: [UInt8] = [0x03, 0x01, 0x01], deflate: [UInt8] = [0x04, 0x01, 0x08],
               bzip2: [UInt8] = [0x04, 0x02, 0x02], x86: [UInt8] = [0x03, 0x03, 0x01, 0x03]

    /// The stream of a folder's output from its packed bytes (`isUnpacked(chain)`).
    static func decoder(_ chain: [Coder], _ packed: any ByteStream, size: UInt64, archive: String, entry: String) throws(ArchiveError) -> any ByteStream {
        let coder = chain[chain.count - 1]
        do {
            if chain.count == 2 {  // x86 BCJ after LZMA or LZMA2, in liblzma's chain
                let codec = try RawLZMACodec(properties: coder.properties, size: size, lzma2: coder.id == lzma2, x86: true)
                return DecodingStream(packed, codec: codec, archive: archive, entry: entry)
            }
            switch coder.id {
            case copy: return packed
            case lzma2, lzma:
                let codec = try RawLZMACodec(properties: coder.properties, size: size, lzma2: coder.id == lzma2)
                return DecodingStream(packed, codec: codec, archive: archive, entry: entry)
            case deflate: return try InflatingStream(packed, wrapper: .raw, archive: archive, entry: entry)
            case bzip2: return DecodingStream(packed, codec: try BZip2Codec(), archive: archive, entry: entry)
            default: throw ArchiveError.unsupported(archive: archive, entry: entry, reason: "compressed by \(coderName(coder.id))")
            }
        } catch let failure as CodecFailure {
            throw .damagedEntry(archive: archive, entry: entry, reason: "its \(coderName(coder.id)) properties: \(failure.reason)")
        } catch let error as ArchiveError {
            throw error
        } catch {
            throw .unreadable(archive: archive, reason: "\(error)")
        }
    }

    /// Whether `decoder` unpacks a folder of this chain: one coder it knows, or x86 BCJ (no
    /// properties) after LZMA or LZMA2.
    static func isUnpacked(_ chain: [Coder]) -> Bool {
        if chain.count == 2 { return chain[0] == Coder(id: x86, properties: []) && [lzma, lzma2].contains(chain[1].id) }
        return chain.count == 1 && [copy, lzma2, lzma, deflate, bzip2].contains(chain[0].id)
    }

    static func coderName(_ id: [UInt8]) -> String {
        switch id {
        case [0x00]: return "nothing (stored)"
        case [0x21]: return "LZMA2"
        case [0x03, 0x01, 0x01]: return "LZMA"
        case [0x04, 0x01, 0x08]: return "Deflate"
        case [0x04, 0x01, 0x09]: return "Deflate64"
        case [0x04, 0x02, 0x02]: return "bzip2"
        case [0x03, 0x04, 0x01]: return "PPMd"
        case [0x03, 0x03, 0x01, 0x03]: return "BCJ (x86)"
        case [0x03, 0x03, 0x01, 0x1B]: return "BCJ2"
        case [0x03, 0x03, 0x05, 0x01]: return "BCJ (ARM)"
        case [0x03, 0x03, 0x07, 0x01]: return "BCJ (ARM Thumb)"
        case [0x03, 0x03, 0x02, 0x05]: return "BCJ (PowerPC)"
        case [0x03, 0x03, 0x08, 0x05]: return "BCJ (SPARC)"
        case [0x03, 0x03, 0x04, 0x01]: return "BCJ (IA-64)"
        case [0x03]: return "Delta"
        case [0x06, 0xF1, 0x07, 0x01]: return "AES (encrypted)"
        default: return "coder " + id.map { String($0, radix: 16) }.joined()
        }
    }

    // MARK: The header

    private static func readHeader(_ file: ArchiveFile) throws(ArchiveError) -> ([Folder], [Member]) {
        let path = file.path
        let start = try file.bytes(at: 0, count: Int(min(file.size, 32)), what: "the signature header")
        guard start.count == 32, start.starts(with: signature) else { throw .malformed(archive: path, reason: "not a 7z file (no 7z signature)") }
        guard start[6] == 0 else { throw .unsupported(archive: path, entry: "the archive", reason: "7z format version \(start[6]).\(start[7])") }
        guard zipCRC32(Array(start[12..<32])) == start.uint32(at: 8) else { throw .malformed(archive: path, reason: "its start header's CRC does not match") }
        let nextOffset = start.uint64(at: 12), nextSize = start.uint64(at: 20)
        if nextSize == 0 { return ([], []) }  // an empty archive
        guard nextSize <= maxHeaderBytes, nextOffset <= file.size, nextSize <= file.size - 32, nextOffset <= file.size - 32 - nextSize else {
            throw .malformed(archive: path, reason: "its header lies past the end of the file (a partial copy?)")
        }
        var header = try file.bytes(at: 32 + nextOffset, count: Int(nextSize), what: "the header")
        guard zipCRC32(header) == start.uint32(at: 28) else { throw .malformed(archive: path, reason: "its header's CRC does not match (damaged, or a partial copy)") }
        // An encoded header: the real one is the output of a folder described here.
        for _ in 0..<4 {
            var reader = HeaderReader(bytes: header, path: path)
            guard try reader.byte() == Property.encodedHeader else { break }
            let streams = try reader.streamsInfo()
            guard let folder = streams.folders.first, streams.folders.count == 1, let chain = folder.chain else {
                throw .unsupported(archive: path, entry: "the header", reason: streams.folders.first?.refusal ?? "an encoded header of no folder")
            }
            guard folder.unpackSize <= maxHeaderBytes, folder.packSize <= file.size - 32, folder.packOffset <= file.size - 32 - folder.packSize else {
                throw .malformed(archive: path, reason: "its encoded header lies past the end of the file or is too large")
            }
            let packed = FileRange(file, from: 32 + folder.packOffset, count: folder.packSize)
            let decoder = try decoder(chain, packed, size: folder.unpackSize, archive: path, entry: "the header")
            guard let bytes = try readBytes(decoder, count: Int(folder.unpackSize)) else {
                throw .malformed(archive: path, reason: "its encoded header ends early")
            }
            if let crc = folder.crc, zipCRC32(bytes) != crc { throw .malformed(archive: path, reason: "its encoded header's CRC does not match") }
            header = bytes
        }
        var reader = HeaderReader(bytes: header, path: path)
        guard try reader.byte() == Property.header else { throw .malformed(archive: path, reason: "no header where its start header says") }
        return try reader.header(archiveSize: file.size)
    }
}

/// 7z's property ids (7zFormat.txt).
enum Property {
    static let end: UInt8 = 0x00, header: UInt8 = 0x01, archiveProperties: UInt8 = 0x02, additionalStreams: UInt8 = 0x03
    static let mainStreams: UInt8 = 0x04, filesInfo: UInt8 = 0x05, packInfo: UInt8 = 0x06, unpackInfo: UInt8 = 0x07
    static let subStreamsInfo: UInt8 = 0x08, size: UInt8 = 0x09, crc: UInt8 = 0x0A, folder: UInt8 = 0x0B
    static let codersUnpackSize: UInt8 = 0x0C, numUnpackStream: UInt8 = 0x0D, emptyStream: UInt8 = 0x0E, emptyFile: UInt8 = 0x0F
    static let anti: UInt8 = 0x10, name: UInt8 = 0x11, winAttributes: UInt8 = 0x15, encodedHeader: UInt8 = 0x17, dummy: UInt8 = 0x19
}

/// Reads a 7z header's bytes; every read is bounds-checked, and a header that runs out is
/// malformed (a damaged or hostile one cannot make it read past its bytes or trap).
struct HeaderReader {
    let bytes: [UInt8]
    let path: String
    var at = 0

    init(bytes: [UInt8], path: String) {
        (self.bytes, self.path) = (bytes, path)
    }

    func malformed(_ reason: String) -> ArchiveError { .malformed(archive: path, reason: "its header: \(reason)") }

    mutating func byte() throws(ArchiveError) -> UInt8 {
        guard at < bytes.count else { throw malformed("ends early") }
        at += 1
        return bytes[at - 1]
    }

    mutating func take(_ count: UInt64) throws(ArchiveError) -> ArraySlice<UInt8> {
        guard count <= UInt64(bytes.count - at) else { throw malformed("ends early") }
        at += Int(count)
        return bytes[(at - Int(count))..<at]
    }

    mutating func uint32() throws(ArchiveError) -> UInt32 { Array(try take(4)).uint32(at: 0) }

    /// 7z's variable-length number: the first byte's high bits say how many bytes follow.
    mutating func number() throws(ArchiveError) -> UInt64 {
        let first = try byte()
        var mask: UInt8 = 0x80, value: UInt64 = 0
        for i in 0..<8 {
            if first & mask == 0 { return value | UInt64(first & (mask &- 1)) << (8 * UInt64(i)) }
            value |= UInt64(try byte()) << (8 * UInt64(i))
            mask >>= 1
        }
        return value
    }

    /// A number used as a count of things held in memory: at most `limit`.
    mutating func count(_ limit: Int, _ what: String) throws(ArchiveError) -> Int {
        let value = try number()
        guard value <= UInt64(limit) else { throw .overLimit(archive: path, reason: "its header lists \(value) \(what), over the \(limit) synthd reads") }
        return Int(value)
    }

    mutating func bits(_ count: Int) throws(ArchiveError) -> [Bool] {
        let packed = try take(UInt64((count + 7) / 8))
        return (0..<count).map { packed[packed.startIndex + $0 / 8] & (0x80 >> UInt8($0 % 8)) != 0 }
    }

    /// "All defined" or a bit vector, then a CRC for each defined one.
    mutating func digests(_ count: Int) throws(ArchiveError) -> [UInt32?] {
        let defined = try byte() != 0 ? Array(repeating: true, count: count) : try bits(count)
        var result: [UInt32?] = []
        for isDefined in defined { result.append(isDefined ? try uint32() : nil) }
        return result
    }

    mutating func expect(_ property: UInt8, _ what: String) throws(ArchiveError) {
        guard try byte() == property else { throw malformed("\(what) expected") }
    }

    struct Streams {
        var folders: [SevenZipReader.Folder] = []
        /// Files per folder, with their sizes and CRCs (where known).
        var substreams: [[(size: UInt64, crc: UInt32?)]] = []
    }

    /// PackInfo, CodersInfo and SubStreamsInfo, to their end.
    mutating func streamsInfo() throws(ArchiveError) -> Streams {
        var packPosition: UInt64 = 0, packSizes: [UInt64] = []
        var folderCoders: [(chain: [SevenZipReader.Coder]?, packedStreams: Int, unpackSizes: [UInt64], output: Int, refusal: String?)] = []
        var folderCRCs: [UInt32?] = []
        var streams = Streams()
        var property = try byte()
        if property == Property.packInfo {
            packPosition = try number()
            let count = try count(SevenZipReader.maxMembers, "packed streams")
            property = try byte()
            while property != Property.end {
                if property == Property.size { packSizes = []; for _ in 0..<count { packSizes.append(try number()) } }
                else if property == Property.crc { _ = try digests(count) }
                else { throw malformed("property \(property) in its pack information") }
                property = try byte()
            }
            guard packSizes.count == count else { throw malformed("no sizes of its packed streams") }
            property = try byte()
        }
        if property == Property.unpackInfo {
            try expect(Property.folder, "folders")
            let count = try count(SevenZipReader.maxMembers, "folders")
            guard try byte() == 0 else { throw malformed("folders kept elsewhere (external)") }
            for _ in 0..<count { folderCoders.append(try folder()) }
            try expect(Property.codersUnpackSize, "unpacked sizes")
            for f in folderCoders.indices {
                for k in folderCoders[f].unpackSizes.indices { folderCoders[f].unpackSizes[k] = try number() }
            }
            folderCRCs = Array(repeating: nil, count: count)
            property = try byte()
            while property != Property.end {
                guard property == Property.crc else { throw malformed("property \(property) in its folders") }
                folderCRCs = try digests(count)
                property = try byte()
            }
            property = try byte()
        }
        // Each folder's packed streams follow one another from the pack position.
        var offset = packPosition, packIndex = 0
        for (f, folder) in folderCoders.enumerated() {
            guard packIndex + folder.packedStreams <= packSizes.count else { throw malformed("more packed streams used than listed") }
            let sizes = packSizes[packIndex..<(packIndex + folder.packedStreams)]
            let size = sizes.reduce(UInt64(0)) { $0 &+ $1 }
            // The folder's output is its first coder's in the chain (the one no other reads).
            streams.folders.append(SevenZipReader.Folder(
                chain: folder.chain, refusal: folder.refusal, packOffset: offset, packSize: size,
                unpackSize: folder.unpackSizes[folder.output], crc: folderCRCs[f]))
            let (next, overflow) = offset.addingReportingOverflow(size)
            guard !overflow else { throw malformed("packed sizes past any file") }
            offset = next
            packIndex += folder.packedStreams
        }
        // Files per folder: one each unless said; their sizes; the CRCs not known otherwise.
        var perFolder = Array(repeating: 1, count: folderCoders.count)
        var sizes: [[UInt64]] = streams.folders.map { [$0.unpackSize] }
        var crcs: [[UInt32?]] = streams.folders.map { [$0.crc] }
        if property == Property.subStreamsInfo {
            property = try byte()
            if property == Property.numUnpackStream {
                var total = 0
                for f in perFolder.indices {
                    perFolder[f] = try count(SevenZipReader.maxMembers, "files in a folder")
                    total += perFolder[f]
                    guard total <= SevenZipReader.maxMembers else { throw .overLimit(archive: path, reason: "its header lists over \(SevenZipReader.maxMembers) files") }
                }
                property = try byte()
            }
            sizes = []
            for (f, folder) in streams.folders.enumerated() {
                var these: [UInt64] = []
                if perFolder[f] > 0 {
                    var sum: UInt64 = 0
                    if property == Property.size {
                        for _ in 1..<perFolder[f] {
                            let size = try number()
                            these.append(size)
                            sum = sum.addingReportingOverflow(size).partialValue
                            guard sum <= folder.unpackSize else { throw malformed("files larger than their folder") }
                        }
                    } else if perFolder[f] > 1 {
                        throw malformed("no sizes of a folder's files")
                    }
                    these.append(folder.unpackSize - sum)
                }
                sizes.append(these)
            }
            if property == Property.size { property = try byte() }
            // CRCs of the files whose folder's CRC does not stand for them.
            let unknown = streams.folders.indices.reduce(0) { $0 + (perFolder[$1] == 1 && streams.folders[$1].crc != nil ? 0 : perFolder[$1]) }
            crcs = streams.folders.indices.map { f in perFolder[f] == 1 && streams.folders[f].crc != nil ? [streams.folders[f].crc] : Array(repeating: nil, count: perFolder[f]) }
            while property != Property.end {
                guard property == Property.crc else { throw malformed("property \(property) in its files' streams") }
                let digests = try digests(unknown)
                var next = 0
                for f in crcs.indices where !(perFolder[f] == 1 && streams.folders[f].crc != nil) {
                    for k in crcs[f].indices { crcs[f][k] = digests[next]; next += 1 }
                }
                property = try byte()
            }
            property = try byte()
        }
        streams.substreams = zip(sizes, crcs).map { sizes, crcs in zip(sizes, crcs).map { ($0, $1) } }
        guard property == Property.end else { throw malformed("property \(property) after its streams") }
        return streams
    }

    /// One folder: the chain of its coders from its output back to its packed stream where it
    /// is one synthd unpacks (else nil and why), how many packed streams it reads, and a slot
    /// for each output's size (filled from the sizes that follow the folders).
    mutating func folder() throws(ArchiveError) -> (chain: [SevenZipReader.Coder]?, packedStreams: Int, unpackSizes: [UInt64], output: Int, refusal: String?) {
        let count = try count(32, "coders in a folder")
        guard count > 0 else { throw malformed("a folder of no coders") }
        var coders: [SevenZipReader.Coder] = [], inTotal = 0, outTotal = 0, simple = true
        for _ in 0..<count {
            let flags = try byte()
            guard flags & 0x80 == 0 else { throw malformed("alternative coders") }
            let id = Array(try take(UInt64(flags & 0x0F)))
            var ins = 1, outs = 1
            if flags & 0x10 != 0 { ins = try self.count(32, "coder inputs"); outs = try self.count(32, "coder outputs") }
            let properties = flags & 0x20 != 0 ? Array(try take(try number())) : []
            coders.append(SevenZipReader.Coder(id: id, properties: properties))
            simple = simple && ins == 1 && outs == 1
            inTotal += ins
            outTotal += outs
        }
        guard outTotal > 0 else { throw malformed("a folder of no outputs") }
        var bound: [(input: UInt64, output: UInt64)] = []
        for _ in 0..<(outTotal - 1) { bound.append((try number(), try number())) }
        let packed = inTotal - (outTotal - 1)
        guard packed >= 1 else { throw malformed("a folder that reads no packed stream") }
        if packed > 1 { for _ in 0..<packed { _ = try number() } }
        let sizes = Array(repeating: UInt64.max, count: outTotal)
        // The folder's output: the one no bind pair reads.
        let output = (0..<outTotal).first { o in !bound.contains { $0.output == UInt64(o) } } ?? 0
        if coders.contains(where: { $0.id == [0x06, 0xF1, 0x07, 0x01] }) { return (nil, packed, sizes, output, "encrypted (password-protected)") }
        // Coders of one input and one output each, as a line: from the one whose output no
        // other reads, each to the one its input is bound to.
        var chain: [SevenZipReader.Coder] = []
        if simple, packed == 1, var at = (0..<count).first(where: { c in !bound.contains { $0.output == UInt64(c) } }) {
            while chain.count <= count {
                chain.append(coders[at])
                guard let next = bound.first(where: { $0.input == UInt64(at) }) else { break }
                at = Int(min(next.output, UInt64(count)))
                guard at < count else { break }
            }
        }
        guard chain.count == count, SevenZipReader.isUnpacked(chain) else {
            let names = (chain.count == count ? chain : coders).map { SevenZipReader.coderName($0.id) }.joined(separator: " and ")
            let what = count == 1 ? "compressed by \(names)" : simple ? "a chain of \(names)" : "coders of several streams each (\(names))"
            return (nil, packed, sizes, output, what + ", which synthd does not unpack (it reads LZMA2, LZMA, Deflate, bzip2 and stored 7z folders, "
                + "and x86 BCJ before LZMA2 or LZMA)")
        }
        return (chain, packed, sizes, output, nil)
    }

    /// The header after its kHeader byte: streams and files, as members in the archive's order.
    mutating func header(archiveSize: UInt64) throws(ArchiveError) -> ([SevenZipReader.Folder], [SevenZipReader.Member]) {
        var property = try byte()
        if property == Property.archiveProperties {
            while try byte() != Property.end { _ = try take(try number()) }
            property = try byte()
        }
        if property == Property.additionalStreams { _ = try streamsInfo(); property = try byte() }
        var streams = Streams()
        if property == Property.mainStreams { streams = try streamsInfo(); property = try byte() }
        // Packed data lies after the 32-byte start header.
        streams.folders = try streams.folders.map { folder throws(ArchiveError) in
            guard folder.packSize <= archiveSize - 32, folder.packOffset <= archiveSize - 32 - folder.packSize else {
                throw malformed("a folder lies past the end of the file (a partial copy?)")
            }
            return SevenZipReader.Folder(chain: folder.chain, refusal: folder.refusal, packOffset: 32 + folder.packOffset, packSize: folder.packSize,
                                         unpackSize: folder.unpackSize, crc: folder.crc)
        }
        guard property == Property.filesInfo else {
            guard property == Property.end else { throw malformed("property \(property) where its files were expected") }
            return (streams.folders, [])
        }
        let count = try count(SevenZipReader.maxMembers, "files")
        var emptyStream = Array(repeating: false, count: count), emptyFile: [Bool] = [], anti: [Bool] = []
        var names: [String] = [], attributes: [UInt32?] = Array(repeating: nil, count: count)
        property = try byte()
        while property != Property.end {
            let size = try number()
            var body = HeaderReader(bytes: Array(try take(size)), path: path)
            switch property {
            case Property.emptyStream: emptyStream = try body.bits(count)
            case Property.emptyFile: emptyFile = try body.bits(emptyStream.filter { $0 }.count)
            case Property.anti: anti = try body.bits(emptyStream.filter { $0 }.count)
            case Property.name:
                guard try body.byte() == 0 else { throw malformed("names kept elsewhere (external)") }
                names = try body.names(count)
            case Property.winAttributes:
                let defined = try body.byte() != 0 ? Array(repeating: true, count: count) : try body.bits(count)
                guard try body.byte() == 0 else { throw malformed("attributes kept elsewhere (external)") }
                for (k, isDefined) in defined.enumerated() where isDefined { attributes[k] = try body.uint32() }
            default: break  // times, start positions, padding: not needed
            }
            property = try byte()
        }
        guard names.count == count else { throw malformed("\(names.count) names for \(count) files") }
        // Files with data take the folders' streams in order.
        var streamQueue: [(folder: Int, offset: UInt64, size: UInt64, crc: UInt32?)] = []
        for (f, files) in streams.substreams.enumerated() {
            var offset: UInt64 = 0
            for file in files { streamQueue.append((f, offset, file.size, file.crc)); offset += file.size }
        }
        var members: [SevenZipReader.Member] = [], next = 0, empty = 0
        for k in 0..<count {
            // A Unix mode in the high half where 0x8000 says so (p7zip, 7-Zip on Linux).
            let mode = attributes[k].flatMap { $0 & 0x8000 != 0 ? $0 >> 16 : nil }
            let kindBits = mode.map { $0 & 0o170000 }
            if !emptyStream[k] {
                guard next < streamQueue.count else { throw malformed("more files with data than streams") }
                let stream = streamQueue[next]
                next += 1
                let kind: ArchiveEntry.Kind = kindBits == 0o120000 ? .link : kindBits.map { $0 == 0o100000 ? .file : .special } ?? .file
                members.append(.init(entry: ArchiveEntry(name: names[k], kind: kind, size: stream.size), folder: stream.folder, offset: stream.offset, crc: stream.crc))
            } else {
                let isFile = empty < emptyFile.count && emptyFile[empty]
                let isAnti = empty < anti.count && anti[empty]
                empty += 1
                let folderBit = attributes[k].map { $0 & 0x10 != 0 } ?? !isFile
                let kind: ArchiveEntry.Kind = isAnti ? .special : folderBit || kindBits == 0o040000 ? .folder : kindBits == 0o120000 ? .link : .file
                members.append(.init(entry: ArchiveEntry(name: names[k], kind: kind, size: 0), folder: nil, offset: 0, crc: nil))
            }
        }
        return (streams.folders, members)
    }

    /// `count` names in UTF-16 (little-endian), each ending in a 0; `\` read as `/` (7-Zip on
    /// Windows may store either).
    mutating func names(_ count: Int) throws(ArchiveError) -> [String] {
        var names: [String] = []
        var units: [UInt16] = []
        while names.count < count {
            let low = try byte(), high = try byte()
            let unit = UInt16(low) | UInt16(high) << 8
            if unit == 0 {
                names.append(String(String(decoding: units, as: UTF16.self).map { $0 == "\\" ? "/" : $0 }))
                units.removeAll(keepingCapacity: true)
            } else {
                units.append(unit)
            }
        }
        return names
    }
}

/// A folder's output being read front to back, and how far.
final class FolderCursor {
    let folder: Int
    let stream: any ByteStream
    let counter: CountingStream
    let size: UInt64
    var position: UInt64 = 0

    init(folder: Int, stream: any ByteStream, counter: CountingStream, size: UInt64) {
        (self.folder, self.stream, self.counter, self.size) = (folder, stream, counter, size)
    }

    /// Reads and drops the output up to `offset` (the files passed over in a solid folder).
    func skip(to offset: UInt64, archive: String, entry: String) throws(ArchiveError) {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        while position < offset {
            let want = Int(min(UInt64(scratch.count), offset - position))
            let n = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<want]))
            guard n > 0 else { throw .damagedEntry(archive: archive, entry: entry, reason: "its folder ends before it") }
            position += UInt64(n)
        }
    }
}

/// One file's bytes of a folder's output: exactly `count`, or damaged.
final class FolderSlice: ByteStream {
    private let cursor: FolderCursor
    private let end: UInt64
    private let archive: String, entry: String

    init(_ cursor: FolderCursor, count: UInt64, archive: String, entry: String) {
        (self.cursor, self.end, self.archive, self.entry) = (cursor, cursor.position + count, archive, entry)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard cursor.position < end, buffer.count > 0 else { return 0 }
        let want = Int(min(UInt64(buffer.count), end - cursor.position))
        let n = try cursor.stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        guard n > 0 else { throw .damagedEntry(archive: archive, entry: entry, reason: "its folder ends before it does") }
        cursor.position += UInt64(n)
        return n
    }
}

/// `count` bytes of `stream` in a new array; nil when it ends first.
func readBytes(_ stream: any ByteStream, count: Int) throws(ArchiveError) -> [UInt8]? {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, count), alignment: 16)
    defer { buffer.deallocate() }
    guard try stream.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])) else { return nil }
    return Array(buffer[0..<count])
}

/// No bytes: an empty file.
final class EmptyStream: ByteStream {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int { 0 }
}
