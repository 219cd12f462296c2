import Foundation
import Imaging
import Testing

@Suite struct PNMTests {
    static let fixtures = Bundle.module.resourcePath! + "/Fixtures/"

    /// Binary PPM and PGM as Pillow writes them, read as Pillow reads them.
    @Test(arguments: [("pnm-13x9.ppm", Image.Mode.rgb), ("pnm-13x9.pgm", .grey)])
    func readsAsPillowReadsIt(_ name: String, _ mode: Image.Mode) throws {
        let decoded = try ImageFile.read(path: Self.fixtures + name)
        let pillow = try ImageFile.read(path: Self.fixtures + name.replacingOccurrences(of: ".", with: "-") + "-pillow.png")
        #expect(decoded.mode == mode && decoded.width == 13 && decoded.height == 9)
        #expect(decoded == pillow && Set(decoded.pixels).count > 20)
    }

    /// Plain-text maps with comments and a maximum of 15, and 16-bit binary samples, scaled to 0...255.
    @Test func plainTextAndSixteenBitSamplesAreScaled() throws {
        let text = Array("P3\n# made by hand\n2 1 # width height\n15\n15 0 0   0 7 15\n".utf8)
        #expect(try ImageFile.read(bytes: text, path: "a.ppm").pixels == [255, 0, 0, 0, 119, 255])
        let grey = Array("P2 3 1 4 0 2 4".utf8)
        #expect(try ImageFile.read(bytes: grey, path: "b.pgm").pixels == [0, 128, 255])
        let wide = Array("P5\n2 1\n65535\n".utf8) + [0xFF, 0xFF, 0x80, 0x00]
        #expect(try ImageFile.read(bytes: wide, path: "c.pgm").pixels == [255, 128])
    }

    /// Bitmaps, samples above the maximum, truncated data: errors naming the file and why.
    @Test func badMapsAreErrors() throws {
        func message(_ text: String, _ extra: [UInt8] = []) -> String? {
            do { _ = try ImageFile.read(bytes: Array(text.utf8) + extra, path: "x.pnm"); return nil } catch { return error.description }
        }
        #expect(message("P4\n8 1\n", [0xAA]) == "x.pnm: cannot decode image: PNM: a PBM bitmap (P4) is not read; convert it to PNG")
        #expect(message("P2 2 1 15 3 16") == "x.pnm: cannot decode image: PNM: a sample of 16 above the maximum 15")
        #expect(message("P6\n2 2\n255\n", [1, 2, 3]) == "x.pnm: cannot decode image: PNM: truncated pixel data (12 bytes expected)")
        #expect(message("P5\n2\n") == "x.pnm: cannot decode image: PNM: truncated file")
        #expect(message("P5\n0 3\n255\n") == "x.pnm: cannot decode image: PNM: an image of 0x3 pixels")
    }
}
