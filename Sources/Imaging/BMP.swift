/// Windows bitmaps, which PyTorch's ImageFolder reads (older datasets come as BMP): the
/// uncompressed kinds, 1, 4 and 8 bits with a palette, 16, 24 and 32 bits with or without
/// bit-field masks, rows bottom-up or top-down; alpha (a mask for it) dropped as for PNG
/// (`Transparency`); RLE8 and RLE4 as Pillow decodes them (`RunLengthBitmap`). Embedded
/// JPEG/PNG bitmaps are refused with what to do.
/// Every field is checked against the file's size before it is used: a header is user data.
public enum BMP {
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == UInt8(ascii: "B") && bytes[1] == UInt8(ascii: "M")
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeFile(bytes, path: path, limits: limits).image
    }

    /// `decode`, with what Pillow would read otherwise (`DecodedFile`).
    public static func decodeFile(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard)
        throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else { throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes) }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        func bad(_ reason: String) -> ImageError { .unreadable(path: path, reason: "BMP: " + reason) }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        func s32(_ at: Int) -> Int { Int(Int32(truncatingIfNeeded: u32(at))) }
        guard bytes.count >= 26 else { throw bad("truncated header") }
        let dataOffset = u32(10), headerSize = u32(14)
        guard [12, 40, 52, 56, 64, 108, 124].contains(headerSize), 14 + headerSize <= bytes.count else {
            throw bad("unknown header (\(headerSize) bytes) or truncated file")
        }
        let core = headerSize == 12
        let width = core ? u16(18) : s32(18)
        let rawHeight = core ? u16(20) : s32(22)
        let bits = core ? u16(24) : u16(28)
        let compression = core ? 0 : u32(30)
        let height = abs(rawHeight), topDown = rawHeight < 0
        guard width > 0, height > 0 else { throw bad("an image of \(width)x\(height) pixels") }
        guard width <= 1 << 20, height <= 1 << 20, width * height <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: width, height: height, limit: limits.maxPixels)
        }
        guard [0, 1, 2, 3, 6].contains(compression) else {
            let kind = [4: "JPEG-embedding", 5: "PNG-embedding"][compression] ?? "compression \(compression)"
            throw bad("a \(kind) bitmap is not read; convert it to PNG")
        }
        guard compression != 1 || bits == 8, compression != 2 || bits == 4 else {
            throw bad("RLE\(compression == 1 ? 8 : 4) compression with \(bits) bits a pixel")
        }
        guard [1, 4, 8, 16, 24, 32].contains(bits) else { throw bad("\(bits) bits a pixel") }

        // Channel masks: given after an INFO header (BITFIELDS), inside a larger header, or the
        // defaults (16 bits: 5-5-5; 32 bits: 8-8-8 with the top byte unused).
        var masks = bits == 16 ? [0x7C00, 0x03E0, 0x001F, 0] : [0xFF0000, 0x00FF00, 0x0000FF, 0]
        var paletteStart = 14 + headerSize
        if compression == 3 || compression == 6 {
            guard bits == 16 || bits == 32 else { throw bad("bit-field masks with \(bits) bits a pixel") }
            let count = compression == 6 ? 4 : 3
            let at = headerSize >= 52 ? 54 : 14 + headerSize
            guard at + 4 * count <= bytes.count else { throw bad("truncated masks") }
            masks = (0..<4).map { $0 < count ? u32(at + 4 * $0) : 0 }
            if headerSize >= 56 { masks[3] = u32(66) }
            if headerSize == 40 { paletteStart += 4 * count }
        } else if headerSize >= 108, bits == 32, u32(66) != 0 {
            masks[3] = u32(66)
        }

        var palette: [[UInt8]] = []
        if bits <= 8 {
            let entry = core ? 3 : 4
            let used = core ? 0 : u32(46)
            let count = used == 0 ? 1 << bits : min(used, 1 << bits)
            guard paletteStart + count * entry <= bytes.count else { throw bad("truncated palette") }
            palette = (0..<count).map { i in
                let at = paletteStart + i * entry
                return [bytes[at + 2], bytes[at + 1], bytes[at]]
            }
        }

        if compression == 1 || compression == 2 {
            guard dataOffset >= 14 + headerSize, dataOffset <= bytes.count else { throw bad("pixel data outside the file") }
            guard let indices = RunLengthBitmap.indices(bytes, from: dataOffset, width: width, height: height, fourBit: compression == 2) else {
                throw bad("the run-length data ends before the image is complete (Pillow, and so PyTorch, refuses it too)")
            }
            var samples = [UInt8](repeating: 0, count: width * height * 3)
            for row in 0..<height {
                let source = (topDown ? row : height - 1 - row) * width
                for x in 0..<width {
                    let index = Int(indices[source + x])
                    guard index < palette.count else { throw bad("a pixel's colour \(index) beyond the palette's \(palette.count)") }
                    for c in 0..<3 { samples[(row * width + x) * 3 + c] = palette[index][c] }
                }
            }
            return DecodedFile(image: Image(width: width, height: height, mode: .rgb, pixels: samples))
        }

        let rowBytes = (width * bits + 31) / 32 * 4
        guard dataOffset >= 14 + headerSize, dataOffset <= bytes.count, rowBytes * height <= bytes.count - dataOffset else {
            throw bad("truncated pixel data (\(height) rows of \(rowBytes) bytes from byte \(dataOffset) of \(bytes.count))")
        }
        let hasAlpha = masks[3] != 0
        let stored = hasAlpha ? 4 : 3
        var samples = [UInt8](repeating: 0, count: width * height * stored)
        let fields = masks.map(MaskField.init)
        for row in 0..<height {
            let source = dataOffset + (topDown ? row : height - 1 - row) * rowBytes
            for x in 0..<width {
                let out = (row * width + x) * stored
                switch bits {
                case 1, 4, 8:
                    let bit = x * bits
                    let index = Int(bytes[source + bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1)
                    guard index < palette.count else { throw bad("a pixel's colour \(index) beyond the palette's \(palette.count)") }
                    for c in 0..<3 { samples[out + c] = palette[index][c] }
                case 24:
                    for c in 0..<3 { samples[out + c] = bytes[source + 3 * x + 2 - c] }
                default:
                    let value = bits == 16 ? u16(source + 2 * x) : u32(source + 4 * x)
                    for c in 0..<stored { samples[out + c] = fields[c].read(value) }
                }
            }
        }
        guard hasAlpha else { return DecodedFile(image: Image(width: width, height: height, mode: .rgb, pixels: samples)) }
        return Transparency.dropped(width: width, height: height, mode: .rgb, samplesWithAlpha: samples)
    }

    /// A channel's bits in a 16- or 32-bit pixel, scaled to 0...255.
    struct MaskField {
        let shift: Int, maximum: Int
        init(_ mask: Int) {
            guard mask != 0 else { (shift, maximum) = (0, 0); return }
            shift = mask.trailingZeroBitCount
            maximum = mask >> shift  // a contiguous run of ones, in every file seen
        }
        func read(_ value: Int) -> UInt8 {
            maximum == 0 ? 0 : UInt8(((value >> shift) & maximum) * 255 / maximum)
        }
    }
}
