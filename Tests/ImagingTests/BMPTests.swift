import Foundation
import Imaging
import Testing

@Suite struct BMPTests {
    static let fixtures = Bundle.module.resourcePath! + "/Fixtures/"

    /// Pillow's writing of five kinds, and RLE8 and RLE4 bitmaps made by the fixture script with
    /// every kind of code (Pillow reads them, not writes them), each read as Pillow (and so PyTorch's ImageFolder) reads it.
    @Test(arguments: ["bmp-24", "bmp-8-grey", "bmp-8-palette", "bmp-1", "bmp-32-rgba", "bmp-rle8", "bmp-rle4"])
    func readsAsPillowReadsIt(_ name: String) throws {
        let decoded = try ImageFile.read(path: Self.fixtures + name + ".bmp")
        let pillow = try ImageFile.read(path: Self.fixtures + name + "-pillow.png")
        #expect(decoded.width == 13 && decoded.height == 9)
        // The PNG of a grey reading is grey; a BMP always decodes to RGB, grey as equal channels.
        let expected = pillow.mode == .rgb ? pillow.pixels : pillow.pixels.flatMap { [$0, $0, $0] }
        #expect(decoded.pixels == expected)
        #expect(Set(expected).count >= 2)
    }

    /// A bitmap by hand: `header` bytes of DIB header (its size first) after the file header.
    func bitmap(width: Int, height: Int, bits: Int, compression: Int, headerSize: Int = 40,
                masks: [UInt32] = [], pixelRows: [[UInt8]]) -> [UInt8] {
        func le(_ value: Int, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        var dib = le(headerSize, 4) + le(width, 4) + le(height, 4) + le(1, 2) + le(bits, 2) + le(compression, 4)
            + le(0, 4 * 5)
        let inHeader = headerSize >= 108
        if inHeader { dib += masks.flatMap { le(Int($0), 4) } }
        dib += [UInt8](repeating: 0, count: headerSize - dib.count)
        let after = inHeader ? [] : masks.flatMap { le(Int($0), 4) }
        let offset = 14 + headerSize + after.count
        let data = pixelRows.flatMap { $0 }
        return [UInt8(ascii: "B"), UInt8(ascii: "M")] + le(offset + data.count, 4) + le(0, 4) + le(offset, 4) + dib + after + data
    }

    /// Alpha through a V4 header's mask, rows top-down (a negative height): dropped, the
    /// colours read as stored (`Transparency`).
    @Test func alphaThroughAMaskTopDown() throws {
        let pixel = { (r: UInt8, g: UInt8, b: UInt8, a: UInt8) in [b, g, r, a] }
        let bytes = bitmap(width: 2, height: -2, bits: 32, compression: 3, headerSize: 108,
                           masks: [0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0xFF00_0000],
                           pixelRows: [pixel(200, 100, 50, 255) + pixel(200, 100, 50, 0), pixel(10, 20, 30, 128) + pixel(255, 255, 255, 51)])
        let image = try ImageFile.read(bytes: bytes, path: "a.bmp")
        #expect(image.mode == .rgb && image.width == 2 && image.height == 2)
        #expect(image.pixels == [200, 100, 50, 200, 100, 50, 10, 20, 30, 255, 255, 255])
        #expect(try BMP.decodeFile(bytes, path: "a.bmp").transparent)
    }

    /// 16 bits as 5-6-5 through masks after an INFO header, bottom-up, rows padded to 4 bytes.
    @Test func sixteenBitsThroughMasks() throws {
        let red: [UInt8] = [0x00, 0xF8], green: [UInt8] = [0xE0, 0x07], mixed: [UInt8] = [0x10, 0x84]  // 0xF800, 0x07E0, 0x8410
        let bytes = bitmap(width: 1, height: 2, bits: 16, compression: 3, masks: [0xF800, 0x07E0, 0x001F],
                           pixelRows: [red + [0, 0], green + [0, 0]])
        let image = try ImageFile.read(bytes: bytes, path: "b.bmp")
        #expect(image.pixels == [0, 255, 0, 255, 0, 0], "bottom-up: the last row first")
        let plain = bitmap(width: 1, height: 1, bits: 16, compression: 0, pixelRows: [mixed + [0, 0]])
        // 0x8410 by the default 5-5-5 masks (the top bit unused): red 1, green 0, blue 16 of 31.
        let expected: [UInt8] = [UInt8(1 * 255 / 31), UInt8(0 * 255 / 31), UInt8(16 * 255 / 31)]
        #expect(try ImageFile.read(bytes: plain, path: "c.bmp").pixels == expected, "5-5-5 by default")
    }

    /// Compressed and damaged bitmaps are errors that name the file and say what to do.
    @Test func compressedAndDamagedBitmapsAreErrors() throws {
        let jpeg = bitmap(width: 2, height: 2, bits: 24, compression: 4, pixelRows: [[0, 0, 0, 0]])
        let error = #expect(throws: ImageError.self) { try ImageFile.read(bytes: jpeg, path: "r.bmp") }
        #expect(error?.description == "r.bmp: cannot decode image: BMP: a JPEG-embedding bitmap is not read; convert it to PNG")
        // Run-length data that ends three rows early: refused, as Pillow refuses it.
        let short = #expect(throws: ImageError.self) { try ImageFile.read(path: Self.fixtures + "bmp-rle8-short.bmp") }
        #expect(short?.description.hasSuffix("BMP: the run-length data ends before the image is complete (Pillow, and so PyTorch, refuses it too)") == true,
                "\(String(describing: short))")
        let wrongBits = bitmap(width: 2, height: 2, bits: 24, compression: 1, pixelRows: [[0, 0, 0, 0]])
        let bits = #expect(throws: ImageError.self) { try ImageFile.read(bytes: wrongBits, path: "w.bmp") }
        #expect(bits?.description == "w.bmp: cannot decode image: BMP: RLE8 compression with 24 bits a pixel")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "bmp-24.bmp")))
        for cut in [2, 20, 60, bytes.count - 1] {
            let cutError = #expect(throws: ImageError.self, "cut at \(cut)") { try ImageFile.read(bytes: Array(bytes.prefix(cut)), path: "t.bmp") }
            #expect(cutError?.description.hasPrefix("t.bmp: cannot decode image: BMP: truncated") == true, "\(String(describing: cutError))")
        }
        var limits = ImageLimits.standard
        limits.maxPixels = 100
        let large = #expect(throws: ImageError.self) { try ImageFile.read(bytes: bytes, path: "big.bmp", limits: limits) }
        #expect(large?.description == "big.bmp: image is 13x9 pixels, over the limit of 100 pixels; skipped")
    }
}
