import FileTestSupport
import Foundation
@testable import Imaging
import Testing

/// An APP1 Exif segment as cameras write it: "Exif\0\0", a TIFF header in the byte order
/// given, and a first image file directory of `tags` (tag, type, count, value as the field's
/// first bytes), sorted as the standard asks.
func exifSegment(bigEndian: Bool, tags: [(tag: Int, type: Int, count: Int, value: Int)]) -> [UInt8] {
    func bytes(_ value: Int, _ size: Int) -> [UInt8] {
        let big = (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - $0))) }
        return bigEndian ? big : big.reversed()
    }
    var tiff: [UInt8] = (bigEndian ? [0x4D, 0x4D] : [0x49, 0x49]) + bytes(42, 2) + bytes(8, 4) + bytes(tags.count, 2)
    for entry in tags {
        // A SHORT's value sits in the field's first two bytes, the rest zero.
        let value = entry.type == 3 ? bytes(entry.value, 2) + [0, 0] : bytes(entry.value, 4)
        tiff += bytes(entry.tag, 2) + bytes(entry.type, 2) + bytes(entry.count, 4) + value
    }
    tiff += bytes(0, 4)  // no next directory
    let data: [UInt8] = Array("Exif".utf8) + [0, 0] + tiff
    return [0xFF, 0xE1] + [UInt8((data.count + 2) >> 8), UInt8((data.count + 2) & 0xFF)] + data
}

/// `jpeg` with `segment` after its start-of-image marker, as a camera places its Exif data.
func inserting(_ segment: [UInt8], into jpeg: [UInt8]) -> [UInt8] {
    Array(jpeg[0..<2]) + segment + Array(jpeg[2...])
}

@Suite struct ExifOrientationTests {
    func photo() -> [UInt8] {
        var image = Image(width: 16, height: 8, mode: .rgb)
        for y in 0..<8 { for x in 0..<16 { for c in 0..<3 { image[x, y, c] = UInt8(x * 10 + y * 5 + c * 30) } } }
        return encodeJPEG(image)
    }

    /// Phones' tags around the orientation (make 0x010F, model 0x0110, then 0x0112, then the
    /// resolution): the value is found in either byte order, and the pixels still decode as
    /// stored, the same as without the segment.
    @Test func theOrientationIsReadInEitherByteOrderAndThePixelsStayAsStored() throws {
        let plain = photo()
        for bigEndian in [false, true] {
            for orientation in 1...8 {
                let tags = [(0x010F, 2, 4, 0), (0x0110, 2, 4, 0), (0x0112, 3, 1, orientation), (0x011A, 5, 1, 100)]
                let turned = inserting(exifSegment(bigEndian: bigEndian, tags: tags), into: plain)
                #expect(ExifOrientation.of(jpeg: turned) == orientation, "big endian \(bigEndian)")
                #expect(try JPEG.decode(turned, path: "t.jpg") == JPEG.decode(plain, path: "p.jpg"))
                let read = try ImageFile.read(bytes: turned, path: "t.jpg")
                #expect(read.width == 16 && read.height == 8)
            }
        }
        #expect(ExifOrientation.of(jpeg: plain) == nil)
    }

    /// A JPEG whose Exif data Pillow wrote (big-endian, after a JFIF segment, beside a make and
    /// a model): orientation 6, and the pixels as Pillow, and so PyTorch's ImageFolder, reads
    /// them: as stored, 16 x 8, not turned (scripts/make_exif_jpeg_fixture.py).
    @Test func pillowsExifReadsAsPillowReadsIt() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let file = try ImageFile.read(path: fixtures + "exif-orientation-6.jpg", reducedTo: 32)
        #expect(file.orientation == 6 && file.width == 16 && file.height == 8)
        let pillow = try ImageFile.read(path: fixtures + "exif-orientation-6-pillow.png")
        #expect(pillow.width == file.image.width && pillow.height == file.image.height)
        let worst = zip(file.image.pixels, pillow.pixels).map { abs(Int($0) - Int($1)) }.max()!
        #expect(worst <= 2, "the same decoder up to rounding (got \(worst))")
        // Other formats carry none here.
        #expect(try ImageFile.read(path: fixtures + "exif-orientation-6-pillow.png", reducedTo: 32).orientation == nil)
    }

    /// An XMP segment (also APP1) before the Exif one is passed over; a tag of the wrong type,
    /// a value out of 1-8, a directory pointing past the segment, a segment cut short, another
    /// TIFF byte order mark: no orientation, and no crash.
    @Test func malformedOrMissingOrientationsReadAsNone() {
        let plain = photo()
        let namespace = Array("http://ns.adobe.com/xap/1.0/\0".utf8) + [0, 0]
        let xmp: [UInt8] = [0xFF, 0xE1, 0x00, UInt8(namespace.count + 2)] + namespace
        let six = exifSegment(bigEndian: false, tags: [(0x0112, 3, 1, 6)])
        #expect(ExifOrientation.of(jpeg: inserting(xmp + six, into: plain)) == 6)
        #expect(ExifOrientation.of(jpeg: inserting(exifSegment(bigEndian: false, tags: [(0x0112, 4, 1, 6)]), into: plain)) == nil)
        #expect(ExifOrientation.of(jpeg: inserting(exifSegment(bigEndian: true, tags: [(0x0112, 3, 1, 9)]), into: plain)) == nil)
        #expect(ExifOrientation.of(jpeg: inserting(exifSegment(bigEndian: true, tags: [(0x0100, 3, 1, 6)]), into: plain)) == nil)
        var pastTheEnd = six
        pastTheEnd[14] = 0xF0  // the directory's offset (little endian, after "Exif\0\0II*\0")
        #expect(ExifOrientation.of(jpeg: inserting(pastTheEnd, into: plain)) == nil)
        var otherMark = six
        otherMark[10] = 0x4D  // "MI"
        #expect(ExifOrientation.of(jpeg: inserting(otherMark, into: plain)) == nil)
        let cut = inserting(six, into: plain).prefix(2 + six.count - 10)  // the entry without its value
        #expect(ExifOrientation.of(jpeg: Array(cut)) == nil)
        // Damaged copies: an answer or none, never a trap.
        for mutant in Mutations(of: inserting(six, into: plain), count: 3000, seed: 7) {
            if let value = ExifOrientation.of(jpeg: mutant) { #expect((1...8).contains(value)) }
        }
    }

    /// What a user reads: how many of how many, the first file by name with how viewers show
    /// it, and what to run.
    @Test func theAdviceNamesTheFirstFileAndTheFix() throws {
        #expect(ExifOrientation.advice(turned: [], of: 10) == nil)
        let one = try #require(ExifOrientation.advice(turned: [("ds/cat/b.jpg", 8)], of: 10))
        #expect(one.hasPrefix("1 image of 10 is a JPEG whose Exif orientation tells viewers to turn or mirror it (ds/cat/b.jpg: "
            + "shown turned a quarter anticlockwise)"))
        let two = try #require(ExifOrientation.advice(turned: [("ds/dog/z.jpg", 3), ("ds/cat/b.jpg", 6)], of: 10))
        #expect(two.hasPrefix("2 images of 10 are JPEGs whose Exif orientation tells viewers to turn or mirror them (ds/cat/b.jpg: "
            + "shown turned a quarter clockwise)"))
        #expect(two.contains("exiftran -ai") && two.contains("as PyTorch's ImageFolder and Keras do"))
    }
}
