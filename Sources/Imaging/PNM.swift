/// Netpbm grey and colour maps (PGM and PPM, binary and plain text), which PyTorch's
/// ImageFolder reads: P5 and P6 with 8- or 16-bit samples, P2 and P3 as text; samples scaled
/// from the file's maximum to 0...255. Bitmaps (PBM) and PAM are refused with what to do.
public enum PNM {
    /// "P" then the kind's digit, then whitespace.
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == UInt8(ascii: "P") && (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(bytes[1])
            && [0x20, 0x09, 0x0A, 0x0D].contains(bytes[2])
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeFile(bytes, path: path, limits: limits).image
    }

    /// `decode`, with what Pillow would read otherwise (`DecodedFile`: a grey map of more than
    /// 8 bits is one Pillow clips).
    public static func decodeFile(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else { throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes) }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        func bad(_ reason: String) -> ImageError { .unreadable(path: path, reason: "PNM: " + reason) }
        let kind = bytes[1] - UInt8(ascii: "0")
        guard [2, 3, 5, 6].contains(kind) else {
            throw bad("a \(kind == 7 ? "PAM" : "PBM bitmap") (P\(kind)) is not read; convert it to PNG")
        }
        var position = 2
        /// The next whitespace-separated decimal number, comments (`#` to the end of the line) skipped.
        func number() throws(ImageError) -> Int {
            while position < bytes.count {
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count, bytes[position] != 0x0A, bytes[position] != 0x0D { position += 1 }
                } else if [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(bytes[position]) {
                    position += 1
                } else { break }
            }
            var value = 0, digits = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                value = value * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                digits += 1
                position += 1
                guard value <= 1 << 24 else { throw bad("a number too large in the header or data") }
            }
            guard digits > 0 else { throw bad(position >= bytes.count ? "truncated file" : "expected a number at byte \(position)") }
            return value
        }
        let width = try number(), height = try number(), maximum = try number()
        guard width > 0, height > 0 else { throw bad("an image of \(width)x\(height) pixels") }
        guard width * height <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: width, height: height, limit: limits.maxPixels)
        }
        guard (1...65535).contains(maximum) else { throw bad("maximum value \(maximum), not in 1...65535") }
        let mode: Image.Mode = kind == 2 || kind == 5 ? .grey : .rgb
        let count = width * height * mode.channels
        var pixels = [UInt8](repeating: 0, count: count)
        func scaled(_ value: Int) throws(ImageError) -> UInt8 {
            guard value <= maximum else { throw bad("a sample of \(value) above the maximum \(maximum)") }
            return UInt8((value * 255 + maximum / 2) / maximum)
        }
        if kind == 5 || kind == 6 {
            position += 1  // the single whitespace after the maximum
            let size = maximum > 255 ? 2 : 1
            guard position <= bytes.count, bytes.count - position >= count * size else {
                throw bad("truncated pixel data (\(count * size) bytes expected)")
            }
            for i in 0..<count {
                let at = position + i * size
                pixels[i] = try scaled(size == 2 ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : Int(bytes[at]))
            }
        } else {
            for i in 0..<count { pixels[i] = try scaled(number()) }
        }
        return DecodedFile(image: Image(width: width, height: height, mode: mode, pixels: pixels), deepGrey: mode == .grey && maximum > 255)
    }
}
