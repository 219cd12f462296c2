import Foundation
import Imaging
import Testing

@Suite struct WebPTests {
    /// Lossy WebP reads as Pillow (libwebp through PyTorch's loader) reads it; lossless WebP
    /// with alpha reads exactly as a PNG of the same pixels and as Pillow reads it (the alpha
    /// dropped, `Transparency`).
    @Test func webpReadsAsPillowAndAsThePNGOfTheSamePixels() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let lossy = try ImageFile.read(path: fixtures + "webp-lossy-16x12.webp")
        let pillow = try ImageFile.read(path: fixtures + "webp-lossy-16x12-pillow.png")
        #expect(lossy.mode == .rgb && lossy.width == 16 && lossy.height == 12)
        let worst = zip(lossy.pixels, pillow.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 2, "the same decoder in another version (got \(worst))")
        let lossless = try ImageFile.read(path: fixtures + "webp-lossless-rgba-16x12.webp")
        let png = try ImageFile.read(path: fixtures + "webp-lossless-rgba-16x12.png")
        #expect(lossless == png)
        #expect(Set(png.pixels).count > 50, "a fixture of many levels")
        #expect(lossless == (try ImageFile.read(path: fixtures + "webp-lossless-rgba-16x12-pillow.png")))
        // The alpha dropped: the pixel (3, 5) is (45, 100, 66) at alpha 73.
        #expect(lossless[3, 5, 0] == 45 && lossless[3, 5, 1] == 100 && lossless[3, 5, 2] == 66)
    }

    /// An animated WebP reads as its first frame, as Pillow (and so PyTorch's ImageFolder) reads
    /// it; until 2026-12-05 synthd refused it. The second frame is uniform red.
    @Test func anAnimationReadsAsItsFirstFrame() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let animated = try ImageFile.read(path: fixtures + "webp-animated-16x12.webp")
        #expect(animated == (try ImageFile.read(path: fixtures + "webp-animated-16x12-pillow.png")))
        #expect(animated == (try ImageFile.read(path: fixtures + "webp-lossless-rgba-16x12.webp")), "the still image of the same pixels")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures + "webp-animated-16x12.webp")))
        for cut in [bytes.count / 2, bytes.count - 1] {
            #expect(throws: ImageError.self, "cut at \(cut)") { try ImageFile.read(bytes: Array(bytes.prefix(cut)), path: "cut.webp") }
        }
    }

    /// A WebP cut short or damaged after its header is an error naming the file, never a crash
    /// or an image of garbage.
    @Test func damagedWebPIsAnError() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Bundle.module.resourcePath! + "/Fixtures/webp-lossy-16x12.webp")))
        for cut in [12, 20, 30, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ImageError.self, "cut at \(cut)") { try ImageFile.read(bytes: Array(bytes.prefix(cut)), path: "cut.webp") }
        }
        var header = bytes
        for i in 12..<min(40, header.count) { header[i] ^= 0x5A }
        let error = #expect(throws: ImageError.self) { try ImageFile.read(bytes: header, path: "bad.webp") }
        #expect(error?.description.hasPrefix("bad.webp: cannot decode image: WebP: ") == true, "\(String(describing: error))")
        // A header that claims more pixels than the limit is refused before decoding.
        var limits = ImageLimits.standard
        limits.maxPixels = 100
        let large = #expect(throws: ImageError.self) { try ImageFile.read(bytes: bytes, path: "big.webp", limits: limits) }
        #expect(large?.description == "big.webp: image is 16x12 pixels, over the limit of 100 pixels; skipped")
    }

    /// A lossy WebP of a grey image (a Fashion-MNIST boot, saved by Pillow) comes back with a
    /// few pixels a level off grey; it is still grey to the dataset's colour decision.
    @Test func aLossyWebPOfAGreyImageIsGrey() throws {
        let image = try ImageFile.read(path: Bundle.module.resourcePath! + "/Fixtures/webp-lossy-grey-28x28.webp")
        #expect(image.mode == .rgb && image.width == 28)
        let offGrey = (0..<(28 * 28)).filter { (p: Int) -> Bool in
            let (r, g, b) = (image.pixels[3 * p], image.pixels[3 * p + 1], image.pixels[3 * p + 2])
            return r != g || g != b
        }
        #expect(!offGrey.isEmpty, "the codec's noise this test is about")
        #expect(!Resampling.hasColour(image))
    }
}
