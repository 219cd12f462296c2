/// One member of an archive, as its directory (zip) or header (tar) describes it.
public struct ArchiveEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file
        case folder
        /// A symbolic or hard link: never followed or made (a link could point anywhere).
        case link
        /// A device, FIFO or anything else that is not data.
        case special
    }

    /// The member's name as stored, decoded (UTF-8; a zip's legacy names as code page 437).
    public let name: String
    public let kind: Kind
    /// The size it declares once unpacked.
    public let size: UInt64

    public init(name: String, kind: Kind, size: UInt64) {
        self.name = name
        self.kind = kind
        self.size = size
    }
}

/// Reads an archive's members one after another, each one's data at most once.
public protocol ArchiveReader: AnyObject {
    /// The archive's path, for messages.
    var path: String { get }
    /// The next member; nil after the last. Whatever of the previous member's data was not
    /// read is passed over.
    func nextEntry() throws(ArchiveError) -> ArchiveEntry?
    /// The current member's data: at most its declared size, checked at its end (a zip's CRC).
    func contents() throws(ArchiveError) -> any ByteStream
    /// How much of the archive file has been read, 0-1, where that tells how far the
    /// unpacking has come (a tar's members come in file order); nil where it does not.
    var fractionRead: Double? { get }
}

extension ArchiveReader {
    public var fractionRead: Double? { nil }
}

/// Bytes read in order. `read` returns 0 at the end only.
public protocol ByteStream: AnyObject {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int
}

extension ByteStream {
    /// Fills `buffer` completely; false when the stream ended first.
    func readExactly(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Bool {
        var filled = 0
        while filled < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if n == 0 { return false }
            filled += n
        }
        return true
    }

    /// Reads and drops `count` bytes; false when the stream ended first.
    func skip(_ count: UInt64) throws(ArchiveError) -> Bool {
        var left = count
        var scratch = [UInt8](repeating: 0, count: 64 << 10)
        while left > 0 {
            let want = Int(min(left, UInt64(scratch.count)))
            let n = try scratch.read(from: self, count: want)
            if n == 0 { return false }
            left -= UInt64(n)
        }
        return true
    }
}

extension Array where Element == UInt8 {
    /// Reads up to `count` bytes (all the array by default) from `stream` into the array's
    /// start; 0 at the stream's end. (A closure given to `withUnsafeMutableBytes` cannot pass
    /// a typed error on: it comes back through a `Result`.)
    mutating func read(from stream: any ByteStream, count: Int? = nil, at offset: Int = 0) throws(ArchiveError) -> Int {
        let end = offset + (count ?? self.count - offset)
        return try withUnsafeMutableBytes { raw in
            Result { () throws(ArchiveError) -> Int in try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<end])) }
        }.get()
    }

    /// Fills the whole array from `stream`; false when the stream ended first.
    mutating func fill(from stream: any ByteStream) throws(ArchiveError) -> Bool {
        try withUnsafeMutableBytes { raw in
            Result { () throws(ArchiveError) -> Bool in try stream.readExactly(into: raw) }
        }.get()
    }
}
