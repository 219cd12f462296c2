/// The archive formats synthd unpacks, told by their names (what a user dropped) and checked
/// by their first bytes when opened.
public enum ArchiveFormat: String, Sendable, CaseIterable {
    case zip, tar, tarGzip = "tar.gz", tarXZ = "tar.xz", tarZstd = "tar.zst", tarBZip2 = "tar.bz2", sevenZip = "7z"

    /// The suffixes of each format, longest first where one ends another.
    static let suffixes: [(String, ArchiveFormat)] = [
        (".tar.gz", .tarGzip), (".tgz", .tarGzip), (".tar.xz", .tarXZ), (".txz", .tarXZ), (".tar.zst", .tarZstd), (".tzst", .tarZstd),
        (".tar.bz2", .tarBZip2), (".tbz2", .tarBZip2), (".tbz", .tarBZip2), (".tar", .tar), (".zip", .zip), (".7z", .sevenZip),
    ]

    /// What `unreadReason` and the log call the formats synthd unpacks.
    public static let unpackedList = ".zip, .7z, .tar, .tar.gz, .tar.xz, .tar.zst and .tar.bz2"

    /// Archive suffixes synthd recognises but does not unpack, with the format's name.
    static let unreadSuffixes: [(String, String)] = [
        (".rar", "RAR"), (".gz", "gzip"), (".xz", "xz"), (".bz2", "bzip2"), (".zst", "Zstandard"),
    ]

    /// The format a file name says, and the name without its suffix (the dataset's name):
    /// `flowers.tar.gz` -> (.tarGzip, "flowers"). nil for other names.
    public static func of(name: String) -> (format: ArchiveFormat, stem: String)? {
        let lower = name.lowercased()
        for (suffix, format) in suffixes where lower.hasSuffix(suffix) && lower.count > suffix.count {
            return (format, String(name.dropLast(suffix.count)))
        }
        return nil
    }

    /// Why a file of this name, an archive by its suffix, is not unpacked; nil for other names.
    public static func unreadReason(name: String) -> String? {
        let lower = name.lowercased()
        guard of(name: name) == nil, let (_, format) = unreadSuffixes.first(where: { lower.hasSuffix($0.0) }) else { return nil }
        return "a \(format) file, which synthd does not unpack (it unpacks \(unpackedList)): unpack it into the spool as a folder"
    }

    /// A reader of the archive at `path`, its format checked by its first bytes (a `.zip`
    /// that is really a tar is read as what it is).
    public static func open(path: String, named format: ArchiveFormat) throws(ArchiveError) -> any ArchiveReader {
        let file = try ArchiveFile(path: path)
        let head = try file.bytes(at: 0, count: Int(min(file.size, 512)), what: "the start")
        if head.count >= 2, head[0] == 0x1F, head[1] == 0x8B {
            // Decompressed on a thread of its own while the caller writes the files.
            let counter = CountingStream(FileRange(file), total: file.size)
            return TarReader(stream: ReadAheadStream(try InflatingStream(counter, wrapper: .gzip, archive: path, entry: nil)), path: path, counter: counter)
        }
        let codec: (any StreamCodec)?
        if head.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) {
            codec = try XZCodec()
        } else if head.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) {
            codec = try ZstdCodec()
        } else if head.starts(with: Array("BZh".utf8)) {
            codec = try BZip2Codec()
        } else {
            codec = nil
        }
        if let codec {
            let counter = CountingStream(FileRange(file), total: file.size)
            return TarReader(stream: ReadAheadStream(DecodingStream(counter, codec: codec, archive: path)), path: path, counter: counter)
        }
        if head.starts(with: SevenZipReader.signature) {
            return try SevenZipReader(file: file)
        }
        if head.count >= 4, head.uint32(at: 0) == 0x0403_4B50 || head.uint32(at: 0) == 0x0605_4B50 {
            return try ZipReader(file: file)
        }
        if head.count >= 262, head[257..<262].elementsEqual("ustar".utf8) {
            return plainTar(file, path: path)
        }
        switch format {
        case .zip: return try ZipReader(file: file)  // self-extracting zips start with a program
        case .tar: return plainTar(file, path: path)
        case .tarGzip, .tarXZ, .tarZstd, .tarBZip2, .sevenZip:
            throw .malformed(archive: path, reason: "not \(format.rawValue) data (it does not start as one does)")
        }
    }

    private static func plainTar(_ file: ArchiveFile, path: String) -> TarReader {
        let counter = CountingStream(FileRange(file), total: file.size)
        return TarReader(stream: counter, path: path, counter: counter)
    }
}
