import Foundation
import Imaging
import Testing

/// Transparency is read as PyTorch's ImageFolder reads it (Pillow's `convert("RGB")`): the
/// alpha dropped, the colours stored under it kept. Each fixture is checked against Pillow's
/// reading of it (scripts/make_transparency_fixtures.py, make_tiff_fixture.py).
@Suite struct TransparencyTests {
    let fixtures = Bundle.module.resourcePath! + "/Fixtures/"

    @Test(arguments: [("png-rgba-16x12.png", Image.Mode.rgb), ("png-la-16x12.png", .grey),
                      ("png-palette-trns-16x12.png", .rgb), ("webp-lossless-rgba-16x12.webp", .rgb),
                      ("webp-animated-16x12.webp", .rgb),
                      ("tiff-rgba-16x12.tif", .rgb), ("tiff-la-16x12.tif", .grey),
                      ("tiff-rgba-associated-16x12.tif", .rgb)])
    func readAsPillowReadsIt(_ name: String, _ mode: Image.Mode) throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures + name)))
        let decoded = try ImageFile.read(path: fixtures + name, reducedTo: 64)
        let pillow = try ImageFile.read(path: fixtures + name.split(separator: ".")[0] + "-pillow.png")
        #expect(decoded.image.mode == mode && pillow.mode == mode, "\(name)")
        #expect(decoded.image.pixels == pillow.pixels, "\(name): \(zip(decoded.image.pixels, pillow.pixels).filter { $0 != $1 }.count) samples differ")
        #expect(decoded.transparent, "\(name) has transparent pixels")
        #expect(try ImageFile.read(bytes: bytes, path: name) == decoded.image)
    }

    /// Files without alpha, or whose fourth sample is not alpha, say nothing.
    @Test(arguments: ["png-rgba-16x12-pillow.png", "tiff-rgbx-16x12.tif", "tiff-rgb-lzw-16x12.tif", "bmp-32-rgba.bmp",
                      "webp-lossy-16x12.webp", "cmyk-16x12.jpg"])
    func opaqueFilesAreNotTransparent(_ name: String) throws {
        #expect(try ImageFile.read(path: fixtures + name, reducedTo: 64).transparent == false, "\(name)")
    }

    /// A TIFF's unspecified fourth sample is not alpha: read as stored, as Pillow reads RGBX.
    @Test func anUnspecifiedExtraSampleIsReadAsStored() throws {
        let decoded = try ImageFile.read(path: fixtures + "tiff-rgbx-16x12.tif")
        #expect(decoded.pixels == (try ImageFile.read(path: fixtures + "tiff-rgbx-16x12-pillow.png")).pixels)
    }

    /// White stored under a transparent background stays white: composited over black (the
    /// rule before 2026-12-05) it read black, a background the user's classifier never sees.
    @Test func theColourUnderATransparentPixelIsKept() throws {
        let image = try ImageFile.read(path: fixtures + "png-rgba-16x12.png")
        #expect(Array(image.pixels[0..<3]) == [255, 255, 255], "the corner: alpha 0, stored white")
        let centre = (5 * 16 + 7) * 3
        #expect(Array(image.pixels[centre..<(centre + 3)]) == [165, 90, 90], "an opaque pixel as stored")
    }

    @Test func unpremultipliedAsPillowUnpacksIt() {
        #expect(Transparency.unpremultiplied(30, alpha: 50) == 153)  // 30 * 255 / 50
        #expect(Transparency.unpremultiplied(1, alpha: 50) == 5, "truncated, not rounded")
        #expect(Transparency.unpremultiplied(100, alpha: 50) == 255, "clipped")
        #expect(Transparency.unpremultiplied(77, alpha: 0) == 0 && Transparency.unpremultiplied(77, alpha: 255) == 77)
    }

    @Test func adviceNamesTheFirstFileAndTheFix() throws {
        #expect(Transparency.advice(transparent: [], of: 10) == nil)
        let one = try #require(Transparency.advice(transparent: ["ds/logo/b.png"], of: 10))
        #expect(one.hasPrefix("1 image of 10 has transparent pixels (ds/logo/b.png): synthd reads the colours stored under them"))
        #expect(one.contains("as PyTorch's ImageFolder (Pillow's convert(\"RGB\")) and Keras do") && one.contains("flatten it"))
        let two = try #require(Transparency.advice(transparent: ["ds/logo/z.png", "ds/logo/b.png"], of: 10))
        #expect(two.hasPrefix("2 images of 10 have transparent pixels (ds/logo/b.png): "))
        #expect(two.contains("-alpha remove") && two.contains("flatten them"))
    }
}
