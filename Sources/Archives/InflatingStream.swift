import CZlib

/// zlib's inflate over another stream: a zip member's raw deflate data, or a gzip file (a
/// `.tar.gz`), whose members, when several were concatenated, are read one after another as
/// gzip(1) does.
final class InflatingStream: ByteStream {
    enum Wrapper { case raw, gzip }

    private let source: any ByteStream
    private let wrapper: Wrapper
    private let archive: String
    private let entry: String?
    private var stream = z_stream()
    private var input = [UInt8](repeating: 0, count: 64 << 10)
    /// The unread part of `input`.
    private var inputStart = 0, inputEnd = 0
    private var sourceEnded = false
    private var finished = false

    /// `entry`: the member being inflated, for messages (nil for a whole `.tar.gz`).
    init(_ source: any ByteStream, wrapper: Wrapper, archive: String, entry: String?) throws(ArchiveError) {
        self.source = source
        self.wrapper = wrapper
        self.archive = archive
        self.entry = entry
        // -15: raw deflate (zip); 15 + 16: gzip only.
        let bits: Int32 = wrapper == .raw ? -15 : 15 + 16
        guard inflateInit2_(&stream, bits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .unreadable(archive: archive, reason: "zlib could not start (out of memory?)")
        }
    }

    deinit { inflateEnd(&stream) }

    private func damaged(_ reason: String) -> ArchiveError {
        if let entry { return .damagedEntry(archive: archive, entry: entry, reason: reason) }
        return .malformed(archive: archive, reason: "its gzip data is damaged (\(reason))")
    }

    private func cutShort() -> ArchiveError {
        if let entry { return .damagedEntry(archive: archive, entry: entry, reason: "its compressed data ends early") }
        return .malformed(archive: archive, reason: "its gzip data ends early")
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        while true {
            if inputStart == inputEnd && !sourceEnded { try refill() }
            let (code, produced, consumed) = input.withUnsafeMutableBytes { raw -> (Int32, Int, Int) in
                stream.next_in = raw.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputStart
                stream.avail_in = UInt32(inputEnd - inputStart)
                stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = UInt32(buffer.count)
                let code = CZlib.inflate(&stream, Z_NO_FLUSH)
                return (code, buffer.count - Int(stream.avail_out), inputEnd - inputStart - Int(stream.avail_in))
            }
            inputStart += consumed
            switch code {
            case Z_STREAM_END:
                if wrapper == .gzip, try anotherMemberFollows() {
                    inflateReset(&stream)
                    if produced > 0 { return produced }
                    continue
                }
                finished = true
                return produced
            case Z_OK, Z_BUF_ERROR:
                if produced > 0 { return produced }
                if sourceEnded && inputStart == inputEnd { throw cutShort() }
            case Z_DATA_ERROR:
                throw damaged(stream.msg.map { String(cString: $0) } ?? "invalid data")
            case Z_MEM_ERROR:
                throw .unreadable(archive: archive, reason: "zlib ran out of memory")
            default:
                throw damaged("zlib error \(code)")
            }
        }
    }

    private func refill() throws(ArchiveError) {
        inputEnd = try input.read(from: source)
        inputStart = 0
        if inputEnd == 0 { sourceEnded = true }
    }

    /// After a gzip member's end: whether another member follows (gzip(1) reads concatenated
    /// members as one file). Trailing zero bytes, padding some tools add, end the file.
    private func anotherMemberFollows() throws(ArchiveError) -> Bool {
        if inputStart == inputEnd && !sourceEnded { try refill() }
        return inputStart < inputEnd && input[inputStart] == 0x1F
    }
}
