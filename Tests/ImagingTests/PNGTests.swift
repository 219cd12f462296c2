import CPNG
import Engine
import Foundation
import Imaging
import Testing

// Formats that png.h composes from other macros, which Swift does not import.
let formatGreyAlpha: Int32 = 0x01      // PNG_FORMAT_GA = FLAG_ALPHA
let formatRGBA: Int32 = 0x03           // PNG_FORMAT_RGBA = FLAG_COLOR | FLAG_ALPHA
let formatLinearGrey: Int32 = 0x04     // PNG_FORMAT_LINEAR_Y = FLAG_LINEAR (16-bit)
let formatRGBColormap: Int32 = 0x0A    // PNG_FORMAT_RGB_COLORMAP = FLAG_COLOR | FLAG_COLORMAP

/// Encodes raw samples in any simplified-API format, to make the PNG kinds the decoder must read.
func encodePNG(width: Int, height: Int, format: Int32, samples: UnsafeRawBufferPointer,
               colormap: [UInt8]? = nil, colormapEntries: Int = 0) -> [UInt8] {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    image.width = UInt32(width)
    image.height = UInt32(height)
    image.format = UInt32(format)
    image.colormap_entries = UInt32(colormapEntries)
    var size = 0
    let map = colormap ?? []
    _ = map.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, samples.baseAddress, 0, colormap == nil ? nil : $0.baseAddress) }
    var out = [UInt8](repeating: 0, count: size)
    let ok = out.withUnsafeMutableBytes { o in
        map.withUnsafeBytes { png_image_write_to_memory(&image, o.baseAddress, &size, 0, samples.baseAddress, 0, colormap == nil ? nil : $0.baseAddress) }
    }
    precondition(ok != 0, "test encoder failed")
    return Array(out[0..<size])
}

/// A PNG chunk with its CRC (length, type, data, CRC-32 of type and data).
func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let body = Array(type.utf8) + data
    let crc = body.withUnsafeBytes { CRC32.checksum($0) }
    return bigEndian(UInt32(data.count)) + body + bigEndian(crc)
}

func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// A PNG written chunk by chunk (`chunks` between IHDR and IDAT), its rows in one stored
/// deflate block: for chunks that libpng's writer would not write.
func handMadePNG(width: Int, height: Int, colourType: UInt8, bitDepth: UInt8 = 8, rows: [[UInt8]], chunks: [UInt8] = []) -> [UInt8] {
    let raw: [UInt8] = rows.flatMap { row -> [UInt8] in [0] + row }  // filter type 0 a row
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    let length = UInt16(raw.count)
    let stored: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
    let zlib: [UInt8] = stored + raw + bigEndian(b << 16 | a)
    let size: [UInt8] = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
    let header: [UInt8] = size + [bitDepth, colourType, 0, 0, 0]
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    return signature + chunk("IHDR", header) + chunks + chunk("IDAT", zlib) + chunk("IEND", [])
}

@Suite struct PNGDecodingTests {
    let grey: [UInt8] = [0, 64, 128, 255, 10, 20]  // 3 x 2

    @Test func greyRoundTrip() throws {
        let image = Image(width: 3, height: 2, mode: .grey, pixels: grey)
        let decoded = try PNG.decode(PNG.encode(image), path: "grey.png")
        #expect(decoded == image)
    }

    @Test func rgbRoundTrip() throws {
        let pixels: [UInt8] = (0..<18).map { UInt8($0 * 14) }
        let image = Image(width: 3, height: 2, mode: .rgb, pixels: pixels)
        #expect(try PNG.decode(PNG.encode(image), path: "rgb.png") == image)
    }

    /// A file that fits in one 4 KiB block is stored (its pixels appear as they are, after the
    /// row's filter byte); a larger image is deflated. Both decode to the image, as libpng reads
    /// them.
    @Test func smallImagesAreStoredAndLargeOnesDeflated() throws {
        var small = Image(width: 28, height: 28, mode: .grey, fill: 0)
        for y in 8..<20 { for x in 8..<20 { small[x, y, 0] = UInt8(x * 10 + y) } }
        let storedBytes = try PNG.encode(small)
        #expect(storedBytes.count > 28 * 29 && storedBytes.count <= 4096, "\(storedBytes.count) bytes")
        let row = Array(small.pixels[(10 * 28)..<(11 * 28)])
        #expect(storedBytes.indices.contains { Array(storedBytes[$0..<min($0 + 28, storedBytes.count)]) == row },
                "row 10 does not appear as it is")
        #expect(try PNG.decode(storedBytes, path: "small.png") == small)

        var large = Image(width: 96, height: 96, mode: .rgb, fill: 0)
        for y in 20..<70 { for x in 20..<70 { large[x, y, 1] = UInt8(x + y) } }
        let deflated = try PNG.encode(large)
        #expect(deflated.count < 96 * 96 * 3 / 10, "\(deflated.count) bytes for \(96 * 96 * 3) of pixels")
        #expect(try PNG.decode(deflated, path: "large.png") == large)
    }

    /// libpng's own complaint comes back as an error (its longjmp stays in C): it refuses rows
    /// wider than its default limit of 1,000,000 pixels.
    @Test func anImageLibpngRefusesIsAnErrorWithItsReason() {
        #expect {
            try PNG.encode(Image(width: 1_000_001, height: 1, mode: .grey))
        } throws: { error in
            "\(error)".contains("Invalid IHDR data")
        }
    }

    /// Alpha is dropped, the stored values kept (`Transparency`; Pillow's fixtures in
    /// TransparencyTests): libpng's 8-bit output with alpha is not premultiplied.
    @Test func greyAlphaDropsTheAlpha() throws {
        // (value, alpha): opaque 200, transparent 200, half 200.
        let samples: [UInt8] = [200, 255, 200, 0, 200, 128]
        let bytes = samples.withUnsafeBytes { encodePNG(width: 3, height: 1, format: formatGreyAlpha, samples: $0) }
        let decoded = try PNG.decodeFile(bytes, path: "ga.png")
        #expect(decoded.image.mode == .grey && decoded.transparent)
        #expect(decoded.image.pixels == [200, 200, 200])
    }

    @Test func rgbaDropsTheAlpha() throws {
        let samples: [UInt8] = [255, 0, 0, 255, 0, 255, 0, 0, 10, 20, 255, 51]
        let bytes = samples.withUnsafeBytes { encodePNG(width: 3, height: 1, format: formatRGBA, samples: $0) }
        let decoded = try PNG.decodeFile(bytes, path: "rgba.png")
        #expect(decoded.image.mode == .rgb && decoded.transparent)
        #expect(decoded.image.pixels == [255, 0, 0, 0, 255, 0, 10, 20, 255])
        let opaque: [UInt8] = [255, 0, 0, 255, 0, 255, 0, 255]
        let opaqueBytes = opaque.withUnsafeBytes { encodePNG(width: 2, height: 1, format: formatRGBA, samples: $0) }
        #expect(try PNG.decodeFile(opaqueBytes, path: "opaque.png").transparent == false, "an alpha channel all 255")
    }

    @Test func paletteDecodesToItsColours() throws {
        let colormap: [UInt8] = [255, 0, 0, 0, 0, 255, 0, 128, 0]  // red, blue, dark green
        let indices: [UInt8] = [0, 1, 2, 1]
        let bytes = indices.withUnsafeBytes {
            encodePNG(width: 2, height: 2, format: formatRGBColormap, samples: $0,
                      colormap: colormap, colormapEntries: 3)
        }
        let decoded = try PNG.decode(bytes, path: "palette.png")
        #expect(decoded.mode == .rgb)
        #expect(decoded.pixels == [255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 0, 255])
    }

    /// A gAMA, cHRM or sRGB chunk changes nothing: Pillow, and so PyTorch, reads the stored
    /// samples whatever they say (checked with Pillow 13 on the same files: 0, 64, 128, 200,
    /// 255 each time).
    @Test(arguments: ["gAMA 100000", "gAMA 50000", "gAMA 45455", "sRGB", "cHRM"])
    func colourSpaceChunksAreIgnoredAsPillowIgnoresThem(_ kind: String) throws {
        let type = String(kind.prefix(4))
        let chromaticities: [UInt32] = [31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000]
        let data: [UInt8] = type == "gAMA" ? bigEndian(UInt32(kind.dropFirst(5))!) : type == "sRGB" ? [0] : chromaticities.flatMap { bigEndian($0) }
        let stored: [UInt8] = [0, 64, 128, 200, 255]
        let grey = handMadePNG(width: 5, height: 1, colourType: 0, rows: [stored], chunks: chunk(type, data))
        #expect(try PNG.decode(grey, path: "g.png").pixels == stored, "\(type) \(data)")
        let colour = handMadePNG(width: 5, height: 1, colourType: 2, rows: [stored.flatMap { [$0, 255 - $0, $0 / 2] }],
                                 chunks: chunk(type, data))
        #expect(try PNG.decode(colour, path: "c.png").pixels == stored.flatMap { [$0, 255 - $0, $0 / 2] }, "\(type) \(data)")
        let withAlpha = handMadePNG(width: 5, height: 1, colourType: 6, rows: [stored.flatMap { [$0, 255 - $0, $0 / 2, 128] }],
                                    chunks: chunk(type, data))
        #expect(try PNG.decode(withAlpha, path: "a.png").pixels == stored.flatMap { [$0, 255 - $0, $0 / 2] }, "\(type) \(data)")
        let deep = handMadePNG(width: 5, height: 1, colourType: 0, bitDepth: 16, rows: [stored.flatMap { [$0, $0] }],
                               chunks: chunk(type, data))
        #expect(try PNG.decode(deep, path: "d.png").pixels == stored, "16-bit, \(type) \(data)")
    }

    /// 16-bit samples with alpha: the alpha dropped and each sample's high byte read (PNG's
    /// 16-bit samples are v * 257 for an 8-bit v), not converted from linear light.
    @Test func sixteenBitWithAlphaIsReadWithoutGamma() throws {
        let stored: [UInt8] = [0, 64, 128, 200, 255]
        let wide: [UInt8] = stored.flatMap { v -> [UInt8] in [v, v, 255 - v, 255 - v, v / 2, v / 2, 0x80, 0] }
        let colour = handMadePNG(width: 5, height: 1, colourType: 6, bitDepth: 16, rows: [wide])
        #expect(try PNG.decode(colour, path: "rgba16.png").pixels == stored.flatMap { [$0, 255 - $0, $0 / 2] })
        let grey = handMadePNG(width: 5, height: 1, colourType: 4, bitDepth: 16, rows: [stored.flatMap { [$0, $0, 0x80, 0] }])
        #expect(try PNG.decode(grey, path: "ga16.png").pixels == stored)
    }

    @Test func sixteenBitIsScaledWithoutGamma() throws {
        let samples: [UInt16] = [0, 65535, 32896, 257]  // 0, 255, 128, 1 after scaling
        let bytes = samples.withUnsafeBytes { encodePNG(width: 4, height: 1, format: formatLinearGrey, samples: $0) }
        let decoded = try PNG.decode(bytes, path: "deep.png")
        #expect(decoded.mode == .grey)
        #expect(decoded.pixels == [0, 255, 128, 1])
    }
}

@Suite struct BrokenPNGTests {
    let valid: [UInt8] = try! PNG.encode(Image(width: 16, height: 16, mode: .grey, pixels: (0..<256).map { UInt8($0) }))

    func expectUnreadable(_ bytes: [UInt8], containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try PNG.decode(bytes, path: "/data/cat/bad.png")
            Issue.record("a broken PNG decoded", sourceLocation: sourceLocation)
        } catch {
            #expect(error.path == "/data/cat/bad.png", sourceLocation: sourceLocation)
            #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func emptyFile() { expectUnreadable([], containing: "empty file") }

    @Test func notAPNG() { expectUnreadable(Array("hello, world".utf8), containing: "not a PNG") }

    @Test func truncatedFile() { expectUnreadable(Array(valid.prefix(valid.count - 30)), containing: "cannot decode") }

    @Test func badCRC() {
        var bytes = valid
        bytes[20] ^= 0xFF  // inside IHDR's data
        expectUnreadable(bytes, containing: "CRC")
    }

    @Test func hugeHeaderIsRefusedBeforeDecoding() {
        // A well-formed IHDR announcing 100000 x 100000 grey pixels, then a token IDAT and IEND.
        var header = bigEndian(100_000) + bigEndian(100_000)
        header += [8, 0, 0, 0, 0]  // depth 8, grey, deflate, no filter, no interlace
        let bytes = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header)
            + chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + chunk("IEND", [])
        #expect(throws: ImageError.tooManyPixels(path: "big.png", width: 100_000, height: 100_000,
                                                 limit: ImageLimits.standard.maxPixels)) {
            try PNG.decode(bytes, path: "big.png")
        }
    }

    @Test func fileSizeLimitIsCheckedBeforeReading() throws {
        let path = NSTemporaryDirectory() + "synthd-big-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(valid).write(to: URL(fileURLWithPath: path))
        let limits = ImageLimits(maxFileBytes: 10, maxPixels: 1 << 20)
        #expect(throws: ImageError.fileTooLarge(path: path, bytes: valid.count, limit: 10)) {
            try PNG.read(path: path, limits: limits)
        }
    }

    @Test func missingFileNamesThePath() {
        do {
            _ = try PNG.read(path: "/nonexistent/x.png")
            Issue.record("read a missing file")
        } catch {
            #expect(error.description.contains("/nonexistent/x.png"))
            #expect(error.description.contains("No such file"))
        }
    }
}

@Suite struct PNGWritingTests {
    @Test func writeIsAtomicAndReadable() throws {
        let folder = NSTemporaryDirectory() + "synthd-png-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let image = Image(width: 5, height: 4, mode: .rgb, pixels: (0..<60).map { UInt8($0 * 4) })
        try PNG.write(image, to: folder + "/a.png")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["a.png"])
        #expect(try PNG.read(path: folder + "/a.png") == image)
    }
}
