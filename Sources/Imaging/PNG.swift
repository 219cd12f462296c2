import CPNG
import CPNGEncoder
import Engine
#if canImport(Glibc)
import Glibc
#endif

/// PNG decoding through libpng's simplified API (`png_image_*`), which reports errors as return
/// codes and messages, and encoding through a C function around its full API: either way
/// libpng's longjmp never crosses into Swift.
///
/// Decoding rules:
/// - grey, grey+alpha and palettes without colour decode to `.grey`; colour types to `.rgb`;
/// - alpha is dropped, the colours under it read as stored, as PyTorch and Keras read them
///   (`Transparency`; libpng's 8-bit output with alpha is not premultiplied);
/// - 16-bit samples are scaled to 8 bits (v * 255 / 65535, rounded) without gamma conversion,
///   as PIL and most Python pipelines read them;
/// - a colour-space chunk (gAMA, cHRM, sRGB, iCCP) changes nothing, as in Pillow: the samples
///   are read as stored (`withoutColourSpaceChunks`).
public enum PNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Whether `bytes` start with the PNG signature.
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 8 && Array(bytes[0..<8]) == signature
    }

    public static func read(path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decode(readImageFile(path: path, limits: limits), path: path, limits: limits)
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeFile(bytes, path: path, limits: limits).image
    }

    /// `decode`, with what Pillow would read otherwise (`DecodedFile`).
    public static func decodeFile(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard)
        throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else {
            throw bytes.isEmpty ? .unreadable(path: path, reason: "empty file") : .notAnImage(path: path)
        }
        // libpng reads from the buffer until the image is finished: one closure keeps it valid.
        let read = (withoutColourSpaceChunks(bytes) ?? bytes).withUnsafeBytes { buffer in
            Result { () throws(ImageError) -> DecodedFile in try decode(buffer, path: path, limits: limits) }
        }
        return try read.get()
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer, path: String, limits: ImageLimits)
        throws(ImageError) -> DecodedFile {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count)
        guard begun != 0 else { throw .unreadable(path: path, reason: message(of: &image)) }
        let width = Int(image.width), height = Int(image.height)
        // Refuse before allocating: the header alone can announce 100000 x 100000 pixels.
        guard width > 0, height > 0, width.multipliedReportingOverflow(by: height).partialValue <= limits.maxPixels,
              width <= limits.maxPixels, height <= limits.maxPixels else {
            png_image_free(&image)
            throw .tooManyPixels(path: path, width: width, height: height, limit: limits.maxPixels)
        }
        let colour = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        let sixteenBit = image.format & UInt32(PNG_FORMAT_FLAG_LINEAR) != 0 && !alpha
        let mode: Image.Mode = colour ? .rgb : .grey
        if sixteenBit {
            // 16-bit without alpha: read the samples as stored and scale them ourselves.
            image.format = (colour ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | UInt32(PNG_FORMAT_FLAG_LINEAR)
            var wide = [UInt16](repeating: 0, count: width * height * mode.channels)
            let finished = wide.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard finished != 0 else { throw .unreadable(path: path, reason: message(of: &image)) }
            let image = Image(width: width, height: height, mode: mode, pixels: wide.map { UInt8((UInt32($0) * 255 + 32767) / 65535) })
            return DecodedFile(image: image, deepGrey: mode == .grey)
        }
        // 8-bit sRGB, with alpha when the file has it (16-bit with alpha is reduced by libpng,
        // told that its samples are sRGB already: else it would take them for linear light).
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        image.format = (colour ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
        let stored = mode.channels + (alpha ? 1 : 0)
        var samples = [UInt8](repeating: 0, count: width * height * stored)
        let finished = samples.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw .unreadable(path: path, reason: message(of: &image)) }
        guard alpha else { return DecodedFile(image: Image(width: width, height: height, mode: mode, pixels: samples)) }
        return Transparency.dropped(width: width, height: height, mode: mode, samplesWithAlpha: samples)
    }

    /// The chunks that tell libpng a file's colour space (gamma, chromaticities, an sRGB
    /// intent, an ICC profile). Pillow, and so PyTorch, reads the stored samples whatever they
    /// say, where libpng's simplified API converts a gamma other than sRGB's (an old Mac's
    /// 1/1.8, a linear 1.0) to sRGB and 16-bit sRGB to linear light.
    static let colourSpaceChunks: Set<String> = ["gAMA", "cHRM", "sRGB", "iCCP"]

    /// `bytes` without the colour-space chunks before the first IDAT, so that libpng converts
    /// nothing; nil when there are none (or the chunk list is damaged: libpng then says how).
    static func withoutColourSpaceChunks(_ bytes: [UInt8]) -> [UInt8]? {
        var kept: [Range<Int>] = [0..<8], at = 8, found = false
        while at + 12 <= bytes.count {
            let length = bytes[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard length <= bytes.count - at - 12 else { return nil }
            let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
            if type == "IDAT" { break }
            if colourSpaceChunks.contains(type) { found = true } else { kept.append(at..<(at + 12 + length)) }
            at += 12 + length
        }
        guard found else { return nil }
        kept.append(at..<bytes.count)
        return kept.flatMap { bytes[$0] }
    }

    /// The PNG file for `image` (8-bit grey or RGB), without row filters.
    ///
    /// An image whose file fits in one 4 KiB file-system block either way (a 28x28 grey one:
    /// ~880 bytes stored, ~390 deflated) is stored without compression: it takes the same disk
    /// space, and deflate cost ~30 us an image (7% of generation's CPU) against ~2 us. Larger
    /// images are deflated at zlib's fastest level. Either way zlib's memory level is sized to
    /// the image: at its default, deflate clears a 64 KiB hash table for every stream, most of
    /// the time for a small one.
    ///
    /// Through libpng's full API (`CPNGEncoder`, which keeps libpng's longjmp in C): the
    /// simplified API sets neither level.
    public static func encode(_ image: Image) throws(ImageError) -> [UInt8] {
        let raw = image.pixels.count + image.height   // a filter byte per row
        let stored = raw + storedOverhead <= blockSize
        let sizeBits = Int.bitWidth - raw.leadingZeroBitCount   // log2 of the data, rounded up
        let memoryLevel = stored ? 1 : Swift.min(8, Swift.max(1, sizeBits - 5))
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let encoded = image.pixels.withUnsafeBufferPointer { pixels in
            synthd_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.mode.channels),
                              stored ? 0 : 1, Int32(memoryLevel), &out, &size, &message, message.count)
        }
        guard encoded != 0, let out else {
            let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .unwritable(path: "<memory>", reason: reason.isEmpty ? "libpng failed" : reason)
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// The file-system block that `encode` fills before it compresses, and the bytes a stored
    /// PNG adds to its pixels (signature, chunks, zlib's block headers).
    static let blockSize = 4096, storedOverhead = 128

    /// Writes `image` to `path` atomically: readers see no file or the whole file.
    /// `durable: false` leaves the fsync to the caller (see `writeFileAtomically`).
    public static func write(_ image: Image, to path: String, durable: Bool = true) throws(ImageError) {
        let bytes = try encode(image)
        do {
            try writeFileAtomically(path: path, bytes: bytes, durable: durable)
        } catch {
            throw .unwritable(path: path, reason: error.description)
        }
    }

    /// libpng's message: a fixed char array, read up to its first 0.
    static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return bytes.isEmpty ? "unknown libpng error" : String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// Reads a whole image file after checking its size against the limit.
func readImageFile(path: String, limits: ImageLimits) throws(ImageError) -> [UInt8] {
    do {
        return try readFile(path: path, maxBytes: limits.maxFileBytes)
    } catch {
        switch error {
        case .tooLarge(_, let bytes, let limit): throw .fileTooLarge(path: path, bytes: bytes, limit: limit)
        case .notRegular(_, let kind): throw .notRegularFile(path: path, kind: kind)
        case .io: throw .unreadable(path: path, reason: error.description)
        }
    }
}
