import CPNG
import CZlib
import Engine
import FileTestSupport
import Foundation
import Imaging
import Testing

/// Thousands of damaged copies of valid files through every reader of a user's bytes: each
/// gives a well-formed result or its typed error naming the file, never a crash (a trap
/// would take the daemon down at every retry) and never an image that disagrees with its
/// own size. Deterministic (`Mutations` by seed), a few seconds in all.
@Suite struct DamagedFileTests {
    static let limits = ImageLimits(maxFileBytes: 1 << 20, maxPixels: 1 << 16)

    /// A decoded image is whole and within the limits, or the error names the file.
    @discardableResult
    func expectWellFormed(_ read: () throws(ImageError) -> Image, path: String, mutant: Int) -> Bool {
        do {
            let image = try read()
            #expect(image.width > 0 && image.height > 0 && image.width * image.height <= Self.limits.maxPixels, "mutant \(mutant)")
            #expect(image.pixels.count == image.width * image.height * image.mode.channels, "mutant \(mutant)")
            return true
        } catch {
            #expect(error.description.hasPrefix(path + ": "), "mutant \(mutant): \(error)")
            return false
        }
    }

    /// `count` damaged copies of each seed (`seed(i)` seeds the i-th's mutations), each
    /// adjusted by `adjust` (given the mutant's number), read as a file at `path` by `decode`
    /// (`ImageFile.read`'s dispatch unless given): every one well formed, and both outcomes
    /// many times (the damage reaches past the first check).
    func readsMutants(of seeds: [[UInt8]], count: Int, seed: (Int) -> UInt64, path: String,
                      adjust: (inout [UInt8], Int) -> Void = { _, _ in },
                      decode: ((_ bytes: [UInt8], _ path: String) throws(ImageError) -> Image)? = nil) {
        var decoded = 0, refused = 0
        for (s, original) in seeds.enumerated() {
            for (i, var bytes) in Mutations(of: original, count: count, seed: seed(s)).enumerated() {
                adjust(&bytes, i)
                let read = expectWellFormed({ () throws(ImageError) in
                    if let decode { return try decode(bytes, path) }
                    return try ImageFile.read(bytes: bytes, path: path, limits: Self.limits)
                }, path: path, mutant: i)
                if read { decoded += 1 } else { refused += 1 }
            }
        }
        #expect(decoded >= 100 && refused >= 100, "\(path): \(decoded) decoded, \(refused) refused")
    }

    func picture(_ width: Int, _ height: Int, _ mode: Image.Mode) -> Image {
        var image = Image(width: width, height: height, mode: mode)
        for y in 0..<height { for x in 0..<width { for c in 0..<mode.channels { image[x, y, c] = UInt8((x * 37 + y * 11 + c * 80) & 0xFF) } } }
        return image
    }

    /// PNGs of several kinds (grey, RGB, deflated and stored, RGBA and 16-bit from libpng's
    /// writer), damaged as they come and with every chunk's CRC made right again, so that the
    /// damage reaches the parts past libpng's checksums.
    @Test(arguments: [false, true])
    func damagedPNGs(crcsRepaired: Bool) throws {
        var seeds = [try PNG.encode(picture(28, 28, .grey)), try PNG.encode(picture(90, 70, .rgb))]
        let rgba = (0..<(12 * 9 * 4)).map { UInt8($0 * 7 & 0xFF) }
        seeds.append(rgba.withUnsafeBytes { encodePNG(width: 12, height: 9, format: formatRGBA, samples: $0) })
        let wide = (0..<(10 * 6)).map { UInt16($0 * 1009 & 0xFFFF) }
        seeds.append(wide.withUnsafeBytes { encodePNG(width: 10, height: 6, format: formatLinearGrey, samples: $0) })
        readsMutants(of: seeds, count: 600, seed: { UInt64($0 * 2 + (crcsRepaired ? 1 : 0)) }, path: "spool/x.png") { bytes, _ in
            if crcsRepaired { repairChunkCRCs(&bytes) }
        }
    }

    /// Baseline and progressive JPEGs, grey and colour, damaged.
    @Test func damagedJPEGs() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let seeds = [encodeJPEG(picture(28, 28, .grey)), encodeJPEG(picture(40, 24, .rgb)),
                     try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + "progressive-16x16.jpg"))),
                     try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + "cmyk-16x12.jpg")))]
        readsMutants(of: seeds, count: 800, seed: { UInt64(100 + $0) }, path: "spool/x.jpg")
        // Decoded reduced by DCT scaling, as a dataset's large JPEGs are (1/2 of these).
        readsMutants(of: seeds, count: 400, seed: { UInt64(150 + $0) }, path: "spool/y.jpg", decode: { bytes, path throws(ImageError) in
            try JPEG.decode(bytes, path: path, limits: Self.limits, reducedTo: 8).image
        })
    }

    /// WebP, lossy and lossless with alpha, damaged. The RIFF size field is set right again in
    /// half the mutants, so that the damage reaches libwebp's bitstream readers.
    @Test func damagedWebPs() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let seeds = try ["webp-lossy-16x12.webp", "webp-lossless-rgba-16x12.webp", "webp-animated-16x12.webp"].map {
            try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + $0)))
        }
        readsMutants(of: seeds, count: 1000, seed: { UInt64(200 + $0) }, path: "spool/x.webp") { bytes, mutant in
            guard mutant % 2 == 1, bytes.count >= 12 else { return }
            let size = UInt32(bytes.count - 8)
            for k in 0..<4 { bytes[4 + k] = UInt8(truncatingIfNeeded: size >> (8 * k)) }
        }
    }

    /// BMPs of every kind Pillow writes, damaged: headers are user data, each field checked
    /// against the file before it is used.
    @Test func damagedBMPs() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let seeds = try ["bmp-24", "bmp-8-palette", "bmp-1", "bmp-32-rgba", "bmp-rle8", "bmp-rle4"].map {
            try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + $0 + ".bmp")))
        }
        readsMutants(of: seeds, count: 600, seed: { UInt64(300 + $0) }, path: "spool/x.bmp")
    }

    /// PGM and PPM, binary and plain text, damaged.
    @Test func damagedNetpbmMaps() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        var seeds = try ["pnm-13x9.ppm", "pnm-13x9.pgm"].map { try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + $0))) }
        seeds.append(Array("P3\n# by hand\n3 2\n15\n15 0 0 0 7 15 1 2 3\n4 5 6 7 8 9 10 11 12\n".utf8))
        readsMutants(of: seeds, count: 600, seed: { UInt64(400 + $0) }, path: "spool/x.ppm")
    }

    /// TIFFs of the kinds Pillow writes (LZW, Deflate, PackBits, group 4, JPEG, 16-bit, alpha,
    /// two pages), damaged: libtiff's reading of a directory, a strip and its decompression,
    /// through synthd's memory callbacks.
    @Test func damagedTIFFs() throws {
        let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
        let seeds = try ["tiff-rgb-lzw-16x12", "tiff-grey-deflate-16x12", "tiff-palette-packbits-16x12", "tiff-bilevel-g4-16x12",
                         "tiff-jpeg-64x48", "tiff-grey16-16x12", "tiff-rgba-16x12", "tiff-two-pages-16x12"].map {
            try Array(Data(contentsOf: URL(fileURLWithPath: fixtures + $0 + ".tif")))
        }
        readsMutants(of: seeds, count: 500, seed: { UInt64(500 + $0) }, path: "spool/x.tif")
    }

    /// IDX files (what `synthd import-idx` reads), plain and gzip: an array whose size is its
    /// dimensions' product, or the error naming the file. Header fields set to 2^32 - 1 made
    /// the product of the dimensions overflow (a trap) before 2026-12-03.
    @Test func damagedIDXFiles() throws {
        let folder = NSTemporaryDirectory() + "synthd-idx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let images: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3] + (0..<18).map { UInt8($0) }
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5]
        let path = folder + "/x-idx3-ubyte"
        // The boundary header on its own, and gzip's own damage (gzread's errors).
        try Data([0, 0, 8, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]).write(to: URL(fileURLWithPath: path))
        #expect(throws: IDX.Error.self) { try IDX.read(path: path) }
        let seeds = [("images", images, 400, UInt64(200)), ("labels", labels, 400, 201), ("gzip", try gzipped(images), 300, 300)]
        for (what, seed, count, mutationSeed) in seeds {
            for (i, bytes) in Mutations(of: seed, count: count, seed: mutationSeed).enumerated() {
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                do {
                    let array = try IDX.read(path: path)
                    #expect(array.bytes.count == array.dimensions.reduce(1, *), "\(what) mutant \(i)")
                } catch {
                    #expect(error.description.hasPrefix(path + ": "), "\(what) mutant \(i): \(error)")
                }
            }
        }
    }

    /// The bytes gzip-compressed (zlib's gz writer, as Debian's IDX files are).
    func gzipped(_ bytes: [UInt8]) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "synthd-gz-\(UUID().uuidString).gz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try #require(gzopen(path, "wb"))
        _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        return try Array(Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Walks the chunks as their lengths say and writes each one's CRC as it should be; stops
    /// where a length runs past the end.
    func repairChunkCRCs(_ bytes: inout [UInt8]) {
        var at = 8
        while at + 12 <= bytes.count {
            let length = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            guard length <= bytes.count - at - 12 else { return }
            let crc = bytes[(at + 4)..<(at + 8 + length)].withUnsafeBytes { CRC32.checksum($0) }
            for i in 0..<4 { bytes[at + 8 + length + i] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(i))) }
            at += 12 + length
        }
    }
}
