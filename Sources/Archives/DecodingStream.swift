import CBZip2
import CLZMA
import CZstd

/// A decompressor that turns some input into some output at a time (xz, Zstandard, bzip2).
protocol StreamCodec: AnyObject {
    /// The format's name, for messages.
    var name: String { get }
    /// Decodes from `input` into `output`: the bytes taken and given, and whether a stream
    /// (a member of several concatenated, for xz and Zstandard frames) ended. A damaged
    /// stream is an error in the codec's words.
    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Result<(taken: Int, given: Int, ended: Bool), CodecFailure>
    /// Ready for another stream after one ended (concatenated streams are read as one file).
    func restart() -> Bool
}

struct CodecFailure: Error { let reason: String }

/// A whole compressed tar (`.tar.xz`, `.tar.zst`, `.tar.bz2`), or a compressed zip member,
/// read through its codec; streams concatenated one after another are read as one, as xz(1),
/// zstd(1) and bzip2(1) read them.
final class DecodingStream: ByteStream {
    private let source: any ByteStream
    private let codec: any StreamCodec
    private let archive: String
    /// The member being decoded, for messages (nil for a whole compressed tar).
    private let entry: String?
    private var input = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0, end = 0
    private var sourceEnded = false, finished = false

    init(_ source: any ByteStream, codec: any StreamCodec, archive: String, entry: String? = nil) {
        (self.source, self.codec, self.archive, self.entry) = (source, codec, archive, entry)
    }

    private func damaged(_ reason: String) -> ArchiveError {
        entry.map { .damagedEntry(archive: archive, entry: $0, reason: reason) } ?? .malformed(archive: archive, reason: reason)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        while true {
            if start == end && !sourceEnded {
                end = try input.read(from: source)
                start = 0
                if end == 0 { sourceEnded = true }
            }
            let result = input.withUnsafeBytes { raw in
                codec.decode(UnsafeRawBufferPointer(rebasing: raw[start..<end]), into: buffer)
            }
            switch result {
            case .failure(let failure):
                throw damaged("its \(codec.name) data is damaged (\(failure.reason))")
            case .success(let step):
                start += step.taken
                if step.ended {
                    if start == end && !sourceEnded {
                        end = try input.read(from: source)
                        start = 0
                        if end == 0 { sourceEnded = true }
                    }
                    // Another stream follows unless only the end (or zero padding) is left.
                    if start < end, input[start..<end].contains(where: { $0 != 0 }), codec.restart() {
                        if step.given > 0 { return step.given }
                        continue
                    }
                    finished = true
                    return step.given
                }
                if step.given > 0 { return step.given }
                if sourceEnded && start == end { throw damaged("its \(codec.name) data ends early") }
            }
        }
    }
}

/// xz through liblzma (the .xz container; concatenated streams).
final class XZCodec: StreamCodec {
    let name = "xz"
    private var stream = lzma_stream()

    init() throws(ArchiveError) {
        guard Self.start(&stream) else { throw .unreadable(archive: "", reason: "liblzma could not start (out of memory?)") }
    }

    private static func start(_ stream: inout lzma_stream) -> Bool {
        // 1 GiB: more than any xz preset's dictionary (-9e: 64 MiB), less than a bomb would ask.
        lzma_stream_decoder(&stream, 1 << 30, 0) == LZMA_OK
    }

    deinit { lzma_end(&stream) }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Result<(taken: Int, given: Int, ended: Bool), CodecFailure> {
        let (code, step) = lzmaStep(&stream, input, output, action: input.isEmpty ? LZMA_FINISH : LZMA_RUN)
        switch code {
        case LZMA_OK, LZMA_STREAM_END, LZMA_BUF_ERROR: return .success(step)
        case LZMA_MEMLIMIT_ERROR: return .failure(CodecFailure(reason: "it asks for more than 1 GiB to decode"))
        case LZMA_FORMAT_ERROR: return .failure(CodecFailure(reason: "not xz data"))
        default: return .failure(CodecFailure(reason: "liblzma error \(code.rawValue)"))
        }
    }

    func restart() -> Bool {
        lzma_end(&stream)
        stream = lzma_stream()
        return Self.start(&stream)
    }
}

/// Raw LZMA or LZMA2 (no container: a zip member of method 14, a 7z folder) through liblzma.
/// LZMA ends at the size it unpacks to, with or without an end marker
/// (`synthd_lzma_raw_decoder`); LZMA2 at its own end marker.
final class RawLZMACodec: StreamCodec {
    let name: String
    private var stream = lzma_stream()

    /// LZMA: `properties` are the 5 bytes of lc/lp/pb and dictionary size; LZMA2 (`two`): the
    /// one byte of its dictionary size. `size`: the bytes it unpacks to. `x86`: x86 BCJ after it.
    init(properties: [UInt8], size: UInt64, lzma2 two: Bool = false, x86: Bool = false) throws(CodecFailure) {
        name = (x86 ? "BCJ and " : "") + (two ? "LZMA2" : "LZMA")
        let code = properties.withUnsafeBufferPointer {
            synthd_lzma_raw_decoder(&stream, two ? 1 : 0, x86 ? 1 : 0, $0.baseAddress, $0.count, size)
        }
        switch code {
        case LZMA_OK: return
        case LZMA_OPTIONS_ERROR: throw CodecFailure(reason: "properties liblzma does not take")
        case LZMA_MEM_ERROR: throw CodecFailure(reason: "out of memory")
        default: throw CodecFailure(reason: "liblzma error \(code.rawValue)")
        }
    }

    deinit { lzma_end(&stream) }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Result<(taken: Int, given: Int, ended: Bool), CodecFailure> {
        let (code, step) = lzmaStep(&stream, input, output, action: LZMA_RUN)
        switch code {
        case LZMA_OK, LZMA_STREAM_END, LZMA_BUF_ERROR: return .success(step)
        case LZMA_DATA_ERROR: return .failure(CodecFailure(reason: "invalid data"))
        default: return .failure(CodecFailure(reason: "liblzma error \(code.rawValue)"))
        }
    }

    /// One stream only: what follows it is not LZMA.
    func restart() -> Bool { false }
}

/// One `lzma_code` call of `stream` from `input` into `output`: its code, the bytes taken and
/// given, and whether the stream ended.
private func lzmaStep(_ stream: inout lzma_stream, _ input: UnsafeRawBufferPointer, _ output: UnsafeMutableRawBufferPointer,
                      action: lzma_action) -> (lzma_ret, (taken: Int, given: Int, ended: Bool)) {
    stream.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.avail_in = input.count
    stream.next_out = output.baseAddress!.assumingMemoryBound(to: UInt8.self)
    stream.avail_out = output.count
    let code = lzma_code(&stream, action)
    return (code, (taken: input.count - stream.avail_in, given: output.count - stream.avail_out, ended: code == LZMA_STREAM_END))
}

/// Zstandard frames through libzstd.
final class ZstdCodec: StreamCodec {
    let name = "Zstandard"
    private let context: OpaquePointer

    init() throws(ArchiveError) {
        guard let context = ZSTD_createDCtx() else { throw .unreadable(archive: "", reason: "libzstd could not start (out of memory?)") }
        self.context = context
        // 2^27 bytes (128 MiB): zstd's own default limit for a frame's window; larger ones
        // (--long=31) are refused rather than allocated.
        ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, 27)
    }

    deinit { ZSTD_freeDCtx(context) }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Result<(taken: Int, given: Int, ended: Bool), CodecFailure> {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let code = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
        if ZSTD_isError(code) != 0 { return .failure(CodecFailure(reason: String(cString: ZSTD_getErrorName(code)))) }
        // 0: a frame is complete and flushed. The next one, if any, starts on the same context.
        return .success((inBuffer.pos, outBuffer.pos, code == 0))
    }

    func restart() -> Bool { true }
}

/// bzip2 through libbz2 (concatenated streams, as pbzip2 writes them).
final class BZip2Codec: StreamCodec {
    let name = "bzip2"
    private var stream = bz_stream()

    init() throws(ArchiveError) {
        guard BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK else { throw .unreadable(archive: "", reason: "libbz2 could not start (out of memory?)") }
    }

    deinit { BZ2_bzDecompressEnd(&stream) }

    func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Result<(taken: Int, given: Int, ended: Bool), CodecFailure> {
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: CChar.self))
        stream.avail_in = UInt32(input.count)
        stream.next_out = output.baseAddress!.assumingMemoryBound(to: CChar.self)
        stream.avail_out = UInt32(output.count)
        let code = BZ2_bzDecompress(&stream)
        let step = (taken: input.count - Int(stream.avail_in), given: output.count - Int(stream.avail_out), ended: code == BZ_STREAM_END)
        switch code {
        case BZ_OK, BZ_STREAM_END: return .success(step)
        case BZ_DATA_ERROR, BZ_DATA_ERROR_MAGIC: return .failure(CodecFailure(reason: "invalid data"))
        case BZ_MEM_ERROR: return .failure(CodecFailure(reason: "out of memory"))
        default: return .failure(CodecFailure(reason: "libbz2 error \(code)"))
        }
    }

    func restart() -> Bool {
        BZ2_bzDecompressEnd(&stream)
        stream = bz_stream()
        return BZ2_bzDecompressInit(&stream, 0, 0) == BZ_OK
    }
}
