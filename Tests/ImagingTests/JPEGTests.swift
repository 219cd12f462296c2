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
