import CPNG
import Engine

/// PNG decoding and encoding through libpng's simplified API (`png_image_*`), which reports
/// errors as return codes and messages: libpng's longjmp never crosses into Swift.
///
/// Decoding rules:
/// - grey, grey+alpha and palettes without colour decode to `.grey`; colour types to `.rgb`;
/// - alpha is composited over black (the background value of the usual datasets) on the
///   stored values, v * a / 255 rounded, as image editors do (libpng's own compositing works
///   in linear light and makes a half-transparent 200 into 146 instead of 100);
/// - 16-bit samples are scaled to 8 bits (v * 255 / 65535, rounded) without gamma conversion,
///   as PIL and most Python pipelines read them.
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
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else {
            throw bytes.isEmpty ? .unreadable(path: path, reason: "empty file") : .notAnImage(path: path)
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
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
            return Image(width: width, height: height, mode: mode, pixels: wide.map { UInt8((UInt32($0) * 255 + 32767) / 65535) })
        }
        // 8-bit sRGB, with alpha when the file has it (16-bit with alpha is reduced by libpng).
        image.format = (colour ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | (alpha ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0)
        let stored = mode.channels + (alpha ? 1 : 0)
        var samples = [UInt8](repeating: 0, count: width * height * stored)
        let finished = samples.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw .unreadable(path: path, reason: message(of: &image)) }
        guard alpha else { return Image(width: width, height: height, mode: mode, pixels: samples) }
        var pixels = [UInt8](repeating: 0, count: width * height * mode.channels)
        for p in 0..<(width * height) {
            let a = UInt32(samples[p * stored + mode.channels])
            for c in 0..<mode.channels {
                pixels[p * mode.channels + c] = UInt8((UInt32(samples[p * stored + c]) * a + 127) / 255)
            }
        }
        return Image(width: width, height: height, mode: mode, pixels: pixels)
    }

    /// The PNG file for `image` (8-bit grey or RGB).
    ///
    /// Compresses once into a buffer sized by zlib's bound (libpng's own size-query call
    /// compresses the whole image to count the bytes: generation spent 8% of its time in zlib,
    /// half of it on that count). A buffer that proves too small is retried at the size libpng
    /// reports. `PNG_IMAGE_FLAG_FAST` (no row filters, a faster zlib level) encodes a 28x28
    /// image 1.4x faster for ~14% more bytes (~750 instead of ~660, inside one 4 KiB block).
    public static func encode(_ image: Image) throws(ImageError) -> [UInt8] {
        let raw = image.pixels.count + image.height   // a filter byte per row
        var capacity = raw + raw / 8 + raw / 64 + 1024  // deflate's worst case, and the chunks around it
        for _ in 0..<2 {
            var png = png_image()
            png.version = UInt32(PNG_IMAGE_VERSION)
            png.width = UInt32(image.width)
            png.height = UInt32(image.height)
            png.format = image.mode == .rgb ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
            png.flags = UInt32(PNG_IMAGE_FLAG_FAST)
            var bytes = [UInt8](repeating: 0, count: capacity)
            var size = capacity
            let written = bytes.withUnsafeMutableBytes { out in
                image.pixels.withUnsafeBytes { png_image_write_to_memory(&png, out.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
            }
            if written != 0 {
                bytes.removeLast(capacity - size)
                return bytes
            }
            guard size > capacity else { throw .unwritable(path: "<memory>", reason: message(of: &png)) }
            capacity = size
        }
        throw .unwritable(path: "<memory>", reason: "libpng asked for ever more memory")
    }

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
        case .io: throw .unreadable(path: path, reason: error.description)
        }
    }
}
