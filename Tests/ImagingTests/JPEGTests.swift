import Foundation
import CTurboJPEG
@testable import Imaging
import Testing

/// A JPEG made by libjpeg-turbo's compressor at quality 95.
func encodeJPEG(_ image: Image) -> [UInt8] {
    let handle = tjInitCompress()!
    defer { tjDestroy(handle) }
    var output: UnsafeMutablePointer<UInt8>? = nil
    var size: UInt = 0
    let format = image.mode == .grey ? TJPF_GRAY : TJPF_RGB
    let subsampling = image.mode == .grey ? TJSAMP_GRAY : TJSAMP_444
    let status = image.pixels.withUnsafeBufferPointer {
        tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(format.rawValue),
                    &output, &size, Int32(subsampling.rawValue), 95, 0)
    }
    precondition(status == 0, "test JPEG encoder failed")
    defer { tjFree(output) }
    return Array(UnsafeBufferPointer(start: output, count: Int(size)))
}

@Suite struct JPEGTests {
    func gradient(_ mode: Image.Mode) -> Image {
        var image = Image(width: 16, height: 8, mode: mode)
        for y in 0..<8 { for x in 0..<16 { for c in 0..<mode.channels { image[x, y, c] = UInt8(x * 10 + y * 6 + c * 20) } } }
        return image
    }

    @Test(arguments: [Image.Mode.grey, .rgb])
    func decodesCloseToTheSource(_ mode: Image.Mode) throws {
        let source = gradient(mode)
        let decoded = try ImageFile.read(bytes: encodeJPEG(source), path: "x.jpg")
        #expect(decoded.mode == mode && decoded.width == 16 && decoded.height == 8)
        let worst = zip(decoded.pixels, source.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 8, "lossy, but a smooth gradient at quality 95 stays within 8 levels (got \(worst))")
    }

    /// CMYK JPEGs (scanned and print photos; ImageNet has a few) read as Pillow, and so
    /// PyTorch's ImageFolder, reads them: Pillow's own reading of the fixture is the reference.
    @Test func cmykJPEGsReadAsPillowReadsThem() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let decoded = try ImageFile.read(path: fixtures + "cmyk-16x12.jpg")
        let pillow = try ImageFile.read(path: fixtures + "cmyk-16x12-pillow.png")
        #expect(decoded.mode == .rgb && decoded.width == 16 && decoded.height == 12)
        #expect(pillow.mode == .rgb && pillow.pixels.count == decoded.pixels.count)
        let worst = zip(decoded.pixels, pillow.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 2, "Pillow's rounding differs by at most one level, the DCT by one (got \(worst))")
        let spread = Set(decoded.pixels).count
        #expect(spread > 100, "a fixture of every ink varying gives many levels (got \(spread))")
    }

    /// A large JPEG about to be fitted to R x R decodes reduced by libjpeg's DCT scaling, as
    /// Pillow's `draft` decodes it (the fixture: Pillow's 1/8 of a 600 x 400 photo-like
    /// image), with the file's own size. Fitted to 32 x 32, what loading decodes (at least
    /// 4 x 32 a side: 300 x 200 here) is the whole image's fit within a few levels; reduced
    /// to 32 itself, an output pixel would weigh 8 x 8 blocks cut by its edges as uniform,
    /// 30 levels off at one sharp edge of this image (mean 1.1); to 64 (1/4), 7 (mean 0.27).
    @Test func largeJPEGsDecodeReducedAsPillowsDraft() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let reduced = try ImageFile.read(path: fixtures + "photo-600x400.jpg", reducedTo: 32)
        #expect(reduced.width == 600 && reduced.height == 400)
        #expect(reduced.image.width == 75 && reduced.image.height == 50 && reduced.image.mode == .rgb)
        let pillow = try ImageFile.read(path: fixtures + "photo-600x400-draft-75x50-pillow.png")
        let worst = zip(reduced.image.pixels, pillow.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 1, "libjpeg's scaled IDCT in both (got \(worst) levels)")

        let whole = try ImageFile.read(path: fixtures + "photo-600x400.jpg")
        #expect(whole.width == 600 && whole.height == 400)
        let loaded = try ImageFile.read(path: fixtures + "photo-600x400.jpg", reducedTo: 4 * 32)
        #expect(loaded.image.width == 300 && loaded.image.height == 200)
        let fittedWhole = Resampling.fit(whole, resolution: 32), fittedReduced = Resampling.fit(loaded.image, resolution: 32)
        let differences = zip(fittedWhole.pixels, fittedReduced.pixels).map { abs(Int($0) - Int($1)) }
        let mean = Double(differences.reduce(0, +)) / Double(differences.count)
        #expect(differences.max()! <= 3 && mean < 0.2, "worst \(differences.max()!), mean \(mean)")

        // At 64 x 64 the reduction stops at 1/4 (100 rows; 1/8 would leave 50).
        let forLarger = try ImageFile.read(path: fixtures + "photo-600x400.jpg", reducedTo: 64)
        #expect(forLarger.image.width == 150 && forLarger.image.height == 100)
    }

    /// A baseline JPEG decoded reduced counts at its reduced size against the pixel limit, its
    /// own size up to 16 times the limit (a 24- or 50-megapixel phone photo trains under the
    /// default 16); decoded whole, or progressive (libjpeg then holds every coefficient), at
    /// its own size.
    @Test func thePixelLimitCountsWhatIsDecoded() throws {
        var image = Image(width: 64, height: 48, mode: .rgb)
        for y in 0..<48 { for x in 0..<64 { for c in 0..<3 { image[x, y, c] = UInt8((x * 3 + y * 2 + c * 30) % 256) } } }
        let baseline = encodeJPEG(image)
        #expect(!JPEG.isProgressive(baseline))
        let limits = ImageLimits(maxFileBytes: 1 << 20, maxPixels: 1000)
        let whole = #expect(throws: ImageError.self) { try ImageFile.read(bytes: baseline, path: "p.jpg", limits: limits) }
        #expect(whole?.description == "p.jpg: image is 64x48 pixels, over the limit of 1000 pixels; skipped")
        let reduced = try JPEG.decode(baseline, path: "p.jpg", limits: limits, reducedTo: 8)
        #expect(reduced.image.width == 16 && reduced.image.height == 12 && reduced.width == 64)
        let tooLarge = ImageLimits(maxFileBytes: 1 << 20, maxPixels: 150)
        #expect(throws: ImageError.self, "64x48 is over 16 x 150") { try JPEG.decode(baseline, path: "p.jpg", limits: tooLarge, reducedTo: 8) }

        let progressive = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Bundle.module.resourcePath! + "/Fixtures/progressive-16x16.jpg")))
        #expect(JPEG.isProgressive(progressive))
        let small = ImageLimits(maxFileBytes: 1 << 20, maxPixels: 100)
        let refused = #expect(throws: ImageError.self) { try JPEG.decode(progressive, path: "q.jpg", limits: small, reducedTo: 4) }
        #expect(refused?.description == "q.jpg: image is 16x16 pixels, over the limit of 100 pixels; skipped")
        #expect(JPEG.isProgressive([0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), "no frame header before the scan: counted as progressive")
    }

    /// The reduction keeps both sides at least the side asked for, in halvings down to 1/8.
    @Test func theReductionKeepsBothSidesAtLeastTheSideAsked() throws {
        #expect(JPEG.reduction(width: 4032, height: 3024, minimumSide: 32) == 8)
        #expect(JPEG.reduction(width: 600, height: 400, minimumSide: 64) == 4)
        #expect(JPEG.reduction(width: 100, height: 100, minimumSide: 32) == 2)
        #expect(JPEG.reduction(width: 63, height: 4000, minimumSide: 32) == 2, "ceil(63 / 2) = 32")
        #expect(JPEG.reduction(width: 62, height: 4000, minimumSide: 32) == 1)
        #expect(JPEG.reduction(width: 28, height: 28, minimumSide: 32) == 1)
        // A grey JPEG reduces too, and a small one decodes whole.
        var large = Image(width: 256, height: 128, mode: .grey)
        for y in 0..<128 { for x in 0..<256 { large[x, y, 0] = UInt8((x + y) / 2) } }
        let grey = try JPEG.decode(encodeJPEG(large), path: "g.jpg", reducedTo: 32)
        #expect(grey.image.mode == .grey && grey.image.width == 64 && grey.image.height == 32 && grey.width == 256)
        // Pixel (10, 10) is the block x, y in 40...43, where (x + y) / 2 averages 41.5.
        let blockMean = Int(grey.image[10, 10, 0])
        #expect((39...44).contains(blockMean), "a 4 x 4 block's mean: \(blockMean)")
        let small = try JPEG.decode(encodeJPEG(gradient(.rgb)), path: "s.jpg", reducedTo: 32)
        #expect(small.image.width == 16 && small.width == 16)
    }

    /// The conversion by hand: no ink is white, full cyan is (0, 255, 255), black ink halves
    /// what is left; an Adobe file stores each value inverted.
    @Test func cmykByHand() {
        #expect(JPEG.rgb(fromCMYK: [0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 128], inverted: false) == [255, 255, 255, 0, 255, 255, 127, 127, 127])
        #expect(JPEG.rgb(fromCMYK: [255, 255, 255, 255, 0, 255, 255, 255], inverted: true) == [255, 255, 255, 0, 255, 255])
        let fixture = try? [UInt8](Data(contentsOf: URL(fileURLWithPath: Bundle.module.resourcePath! + "/Fixtures/cmyk-16x12.jpg")))
        #expect(fixture.map(JPEG.hasAdobeMarker) == true)
        #expect(!JPEG.hasAdobeMarker(encodeJPEG(gradient(.rgb))))
    }

    @Test func truncatedJPEGIsAnError() {
        let bytes = encodeJPEG(gradient(.rgb))
        do {
            _ = try ImageFile.read(bytes: Array(bytes.prefix(bytes.count / 2)), path: "cut.jpg")
            Issue.record("a truncated JPEG decoded")
        } catch {
            #expect(error.path == "cut.jpg")
        }
    }

    /// A progressive JPEG of 631 scans (made by scripts/make_jpeg_scan_fixture.py; djpeg
    /// decodes it without a warning) is refused: each scan is a pass over the whole image, so
    /// a few kilobytes of scans cost minutes on a large image. An ordinary progressive JPEG of
    /// the same pixels (about 10 scans) still decodes.
    @Test func aProgressiveJPEGWithTooManyScansIsRefused() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let ordinary = try ImageFile.read(path: fixtures + "progressive-16x16.jpg")
        #expect(ordinary.width == 16 && ordinary.height == 16 && ordinary.mode == .grey)
        let bomb = fixtures + "progressive-631-scans.jpg"
        do {
            _ = try ImageFile.read(path: bomb)
            Issue.record("a JPEG of 631 scans decoded")
        } catch {
            #expect(error.path == bomb)
            #expect(error.description.contains("scans"), "\(error)")
        }
    }
}
