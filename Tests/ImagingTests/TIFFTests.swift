import Foundation
import Imaging
import Testing

@Suite struct TIFFTests {
    let fixtures = Bundle.module.resourcePath! + "/Fixtures/"

    func worstDifference(_ a: Image, _ b: Image) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max()!
    }

    /// TIFFs as Pillow writes them (PyTorch's ImageFolder reads TIFF through Pillow) read as
    /// Pillow reads them: compressions (LZW, Deflate, PackBits, CCITT group 4, JPEG), palette,
    /// CMYK, one bit, and the first of two pages; grey ones as grey.
    @Test(arguments: [
        ("tiff-rgb-lzw-16x12", Image.Mode.rgb, 0), ("tiff-grey-deflate-16x12", .grey, 0),
        ("tiff-palette-packbits-16x12", .rgb, 0), ("tiff-cmyk-16x12", .rgb, 1), ("tiff-bilevel-g4-16x12", .grey, 0),
        ("tiff-two-pages-16x12", .rgb, 0), ("tiff-jpeg-64x48", .rgb, 2),
    ])
    func tiffsReadAsPillowReadsThem(_ name: String, _ mode: Image.Mode, _ tolerance: Int) throws {
        let decoded = try ImageFile.read(path: fixtures + name + ".tif")
        let pillow = try ImageFile.read(path: fixtures + name + "-pillow.png")
        #expect(decoded.mode == mode && decoded.width == pillow.width && decoded.height == pillow.height)
        #expect(decoded.pixels.count == pillow.pixels.count)
        let worst = worstDifference(decoded, pillow)
        #expect(worst <= tolerance, "\(name): \(worst) levels off Pillow's reading")
        #expect(Set(decoded.pixels).count > 1, "a fixture of more than one level")
    }

    /// A TIFF whose Orientation tag says to mirror or turn it is read turned, as Pillow (and
    /// so PyTorch's ImageFolder) turns it when it loads it: the same 5 x 3 image stored with each
    /// of the eight, 3 x 5 for 5-8. Asked for top-left, libtiff flipped 2-4 alike but left 5-8
    /// 5 x 3.
    @Test(arguments: 1...8)
    func theOrientationTagTurnsTheImageAsPillowDoes(_ orientation: Int) throws {
        let decoded = try ImageFile.read(path: fixtures + "tiff-orientation-\(orientation).tif")
        let pillow = try ImageFile.read(path: fixtures + "tiff-orientation-\(orientation)-pillow.png")
        #expect(decoded.width == (orientation >= 5 ? 3 : 5) && decoded.width == pillow.width && decoded.height == pillow.height)
        #expect(decoded.pixels == pillow.pixels, "orientation \(orientation)")
        #expect(ExifOrientation.shown(decoded, orientation: 1) == decoded)
    }

    // Alpha (unassociated, associated, grey, an unspecified fourth sample): TransparencyTests.

    /// 16-bit samples (microscopes, scanners) are scaled to 8 bits as PNG's are, where
    /// Pillow clips them at 255.
    @Test func sixteenBitSamplesAreScaled() throws {
        let decoded = try ImageFile.read(path: fixtures + "tiff-grey16-16x12.tif")
        let expected = try ImageFile.read(path: fixtures + "tiff-grey16-16x12-scaled.png")
        #expect(decoded.mode == .grey)
        #expect(worstDifference(decoded, expected) <= 1, "a high byte or a rounding: \(worstDifference(decoded, expected)) levels")
        #expect(Set(decoded.pixels).count > 100)
    }

    /// What synthd cannot read is an error that names the file and says what to do: float
    /// samples, a TIFF cut short, a damaged header, more pixels than the limit.
    @Test func unreadableTIFFsAreErrorsThatSayWhy() throws {
        let float = #expect(throws: ImageError.self) { try ImageFile.read(path: self.fixtures + "tiff-float-16x12.tif") }
        #expect(float?.description.contains("a TIFF libtiff cannot convert to RGB (") == true, "\(String(describing: float))")
        #expect(float?.description.hasSuffix("save it as an 8- or 16-bit PNG") == true)

        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures + "tiff-rgb-lzw-16x12.tif")))
        for cut in [4, 8, 16, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ImageError.self, "cut at \(cut)") { try ImageFile.read(bytes: Array(bytes.prefix(cut)), path: "cut.tif") }
        }
        var header = bytes
        header[4...7] = [0xFF, 0xFF, 0xFF, 0x7F]  // the first directory far past the end
        let damaged = #expect(throws: ImageError.self) { try ImageFile.read(bytes: header, path: "bad.tif") }
        #expect(damaged?.description.hasPrefix("bad.tif: cannot decode image: TIFF: ") == true, "\(String(describing: damaged))")

        var limits = ImageLimits.standard
        limits.maxPixels = 100
        let large = #expect(throws: ImageError.self) { try ImageFile.read(bytes: bytes, path: "big.tif", limits: limits) }
        #expect(large?.description == "big.tif: image is 16x12 pixels, over the limit of 100 pixels; skipped")
    }

    @Test func signatures() {
        #expect(TIFF.hasSignature(Array("II*\u{0}".utf8)) && TIFF.hasSignature([0x4D, 0x4D, 0, 42]))
        #expect(TIFF.hasSignature([0x49, 0x49, 43, 0]) && TIFF.hasSignature([0x4D, 0x4D, 0, 43]), "BigTIFF")
        #expect(!TIFF.hasSignature([0x49, 0x49, 42]) && !TIFF.hasSignature([0x4D, 0x4D, 42, 0]))
    }
}
