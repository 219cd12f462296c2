import CTIFF
import Foundation

/// TIFF decoding through libtiff (4.5's per-file error handlers: nothing process-wide, nothing
/// printed), read from memory like the other formats. libtiff's RGBA interface converts every
/// layout it knows (strips or tiles; chunky or planar; 1 to 16 bits; grey, palette, RGB,
/// YCbCr, CMYK, LAB; none, LZW, Deflate, PackBits or JPEG compression) to 8-bit RGBA, 16-bit
/// samples scaled to 8 as PNG's are. Grey images decode to `.grey`; alpha dropped as for
/// PNG (`Transparency`). The first page of a multi-page file is read, as Pillow reads it; float
/// samples are refused with what to do.
///
/// PyTorch's ImageFolder reads TIFF through Pillow, which clips 16-bit samples at 255 (a
/// microscope's image comes out nearly white) where synthd scales them: the one difference.
/// Like Pillow, synthd shows a TIFF as its Orientation tag says (`ExifOrientation.shown`).
public enum TIFF {
    /// "II*\0" or "MM\0*" (classic), "II+\0" or "MM\0+" (BigTIFF).
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        let little = bytes[0] == 0x49 && bytes[1] == 0x49 && (bytes[2] == 42 || bytes[2] == 43) && bytes[3] == 0
        let big = bytes[0] == 0x4D && bytes[1] == 0x4D && bytes[2] == 0 && (bytes[3] == 42 || bytes[3] == 43)
        return little || big
    }

    /// The most one allocation of libtiff's may take (a strip's or tile's buffer): a damaged
    /// header's claim of gigabytes is refused instead of attempted.
    static let maxAllocation = 256 << 20

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeFile(bytes, path: path, limits: limits).image
    }

    /// `decode`, with what Pillow would read otherwise (`DecodedFile`).
    public static func decodeFile(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard)
        throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        let errors = UnsafeMutablePointer<synthd_tiff_errors>.allocate(capacity: 1)
        errors.initialize(to: synthd_tiff_errors())
        defer { errors.deallocate() }
        func failure(_ what: String) -> ImageError {
            let said = withUnsafeBytes(of: errors.pointee.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            return .unreadable(path: path, reason: "TIFF: " + (said.isEmpty ? what : said))
        }
        guard let options = synthd_tiff_options(errors, tmsize_t(maxAllocation)) else { throw failure("libtiff did not start") }
        defer { TIFFOpenOptionsFree(options) }
        let result = bytes.withUnsafeBytes { buffer -> Result<DecodedFile, ImageError> in
            let source = MemorySource(buffer)
            return withExtendedLifetime(source) {
                // "m": no memory mapping (the bytes are read through `MemorySource`).
                guard let tiff = TIFFClientOpenExt(path, "rm", Unmanaged.passUnretained(source).toOpaque(), MemorySource.read,
                                                   MemorySource.write, MemorySource.seek, MemorySource.close, MemorySource.size,
                                                   MemorySource.map, MemorySource.unmap, options) else {
                    return .failure(failure("not a readable TIFF"))
                }
                defer { TIFFClose(tiff) }
                return Result { () throws(ImageError) -> DecodedFile in
                    try decode(tiff, path: path, limits: limits, failure: failure)
                }
            }
        }
        return try result.get()
    }

    private static func decode(_ tiff: OpaquePointer, path: String, limits: ImageLimits,
                               failure: (String) -> ImageError) throws(ImageError) -> DecodedFile {
        var width: UInt32 = 0, height: UInt32 = 0, photometric: UInt16 = 0, samples: UInt16 = 0, extra: UInt16 = 0
        var firstExtra: UInt16 = 0
        guard synthd_tiff_describe(tiff, &width, &height, &photometric, &samples, &extra, &firstExtra) != 0 else {
            throw failure("no image size")
        }
        guard width > 0, height > 0, Int(width) * Int(height) <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: Int(width), height: Int(height), limit: limits.maxPixels)
        }
        var refusal = [CChar](repeating: 0, count: 1024)
        guard TIFFRGBAImageOK(tiff, &refusal) != 0 else {
            let reason = String(decoding: refusal.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .unreadable(path: path, reason: "a TIFF libtiff cannot convert to RGB (\(reason)); save it as an 8- or 16-bit PNG")
        }
        let count = Int(width) * Int(height)
        var raster = [UInt32](repeating: 0, count: count)
        // Asked for in the file's own orientation, libtiff leaves the rows and columns as
        // stored; `ExifOrientation.shown` then turns them as Pillow does. Asked for top-left,
        // it flipped them for 2-4 but could not swap width and height for 5-8.
        let orientation = Int(synthd_tiff_orientation(tiff))
        // An unassociated alpha's colours are read as stored (see below).
        synthd_tiff_read_alpha_as_associated(tiff)
        let read = raster.withUnsafeMutableBufferPointer {
            TIFFReadRGBAImageOriented(tiff, width, height, $0.baseAddress, Int32(orientation), 1)
        }
        guard read != 0 else { throw failure("damaged or truncated image data") }

        // Each value is A << 24 | B << 16 | G << 8 | R, the colour as stored: an unassociated
        // alpha is read as associated (above), and grey is passed through either way. The
        // alpha is dropped as Pillow drops it (`Transparency`); only a colour premultiplied by
        // an associated alpha is divided back, as Pillow unpacks it. (Pillow cannot convert
        // grey with an associated alpha at all: synthd reads it as stored.)
        let hasAlpha = extra > 0 && firstExtra != UInt16(EXTRASAMPLE_UNSPECIFIED)
        let transparent = hasAlpha && raster.contains { $0 >> 24 != 0xFF }
        let grey = (photometric == UInt16(PHOTOMETRIC_MINISBLACK) || photometric == UInt16(PHOTOMETRIC_MINISWHITE))
            && Int(samples) - Int(extra) == 1
        if grey {
            let pixels = raster.map { UInt8($0 & 0xFF) }
            let image = Image(width: Int(width), height: Int(height), mode: .grey, pixels: pixels)
            return DecodedFile(image: ExifOrientation.shown(image, orientation: orientation), transparent: transparent,
                               deepGrey: synthd_tiff_bits(tiff) == 16)
        }
        let premultiplied = hasAlpha && firstExtra == UInt16(EXTRASAMPLE_ASSOCALPHA)
        var pixels = [UInt8](repeating: 0, count: count * 3)
        for (p, value) in raster.enumerated() {
            let alpha = UInt8(value >> 24)
            for c in 0..<3 {
                let stored = UInt8(value >> (8 * c) & 0xFF)
                pixels[3 * p + c] = premultiplied ? Transparency.unpremultiplied(stored, alpha: alpha) : stored
            }
        }
        let image = Image(width: Int(width), height: Int(height), mode: .rgb, pixels: pixels)
        return DecodedFile(image: ExifOrientation.shown(image, orientation: orientation), transparent: transparent)
    }
}

/// The bytes libtiff reads, through its client callbacks: a position in a buffer.
private final class MemorySource {
    let bytes: UnsafeRawBufferPointer
    var offset: UInt64 = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static func of(_ handle: thandle_t?) -> MemorySource { Unmanaged<MemorySource>.fromOpaque(handle!).takeUnretainedValue() }

    static let read: TIFFReadWriteProc = { handle, target, size in
        let source = of(handle)
        guard let target, size > 0, source.offset < UInt64(source.bytes.count) else { return 0 }
        let n = min(Int(size), source.bytes.count - Int(source.offset))
        target.copyMemory(from: source.bytes.baseAddress! + Int(source.offset), byteCount: n)
        source.offset += UInt64(n)
        return tmsize_t(n)
    }
    static let write: TIFFReadWriteProc = { _, _, _ in 0 }
    static let seek: TIFFSeekProc = { handle, offset, whence in
        let source = of(handle)
        let base: UInt64
        switch whence {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = source.offset
        case SEEK_END: base = UInt64(source.bytes.count)
        default: return toff_t.max
        }
        let (target, overflow) = base.addingReportingOverflow(offset)
        guard !overflow, target <= UInt64(Int.max) else { return toff_t.max }
        source.offset = target
        return target
    }
    static let close: TIFFCloseProc = { _ in 0 }
    static let size: TIFFSizeProc = { handle in toff_t(of(handle).bytes.count) }
    static let map: TIFFMapFileProc = { _, _, _ in 0 }
    static let unmap: TIFFUnmapFileProc = { _, _, _ in }
}
