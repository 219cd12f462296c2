import Foundation
import Imaging
import Testing

/// 16-bit grey files are scaled to 8 bits by synthd and clipped at 255 by Pillow (checked with
/// Pillow 13: a 16-bit grey PNG, TIFF and PGM each read (0, 255, 255) for 0, 32896 and 65535);
/// the decoders say which files are such, for the load's advice.
@Suite struct DeepGreyTests {
    let fixtures = Bundle.module.resourcePath! + "/Fixtures/"

    @Test func sixteenBitGreyFilesAreNoted() throws {
        let stored: [UInt8] = [0, 128, 255]
        let png = handMadePNG(width: 3, height: 1, colourType: 0, bitDepth: 16, rows: [stored.flatMap { [$0, $0] }])
        let decodedPNG = try PNG.decodeFile(png, path: "g16.png")
        #expect(decodedPNG.deepGrey && decodedPNG.image.pixels == stored)
        let tiff = try ImageFile.read(path: fixtures + "tiff-grey16-16x12.tif", reducedTo: 64)
        #expect(tiff.deepGrey && tiff.image.mode == .grey)
        let pgm = Array("P5\n3 1\n65535\n".utf8) + [0, 0, 128, 128, 255, 255]
        let decodedPGM = try PNM.decodeFile(pgm, path: "g16.pgm")
        #expect(decodedPGM.deepGrey && decodedPGM.image.pixels == [0, 128, 255])
    }

    /// 8-bit grey, 16-bit colour (Pillow takes the high byte) and 16-bit grey with alpha (Pillow
    /// reads it as 8-bit LA) are read alike by both: nothing to say.
    @Test func otherFilesAreNot() throws {
        let stored: [UInt8] = [0, 128, 255]
        #expect(try PNG.decodeFile(handMadePNG(width: 3, height: 1, colourType: 0, rows: [stored]), path: "g8.png").deepGrey == false)
        let rgb = handMadePNG(width: 3, height: 1, colourType: 2, bitDepth: 16, rows: [stored.flatMap { [$0, $0, $0, $0, $0, $0] }])
        #expect(try PNG.decodeFile(rgb, path: "rgb16.png").deepGrey == false)
        let greyAlpha = handMadePNG(width: 3, height: 1, colourType: 4, bitDepth: 16, rows: [stored.flatMap { [$0, $0, 255, 255] }])
        #expect(try PNG.decodeFile(greyAlpha, path: "ga16.png").deepGrey == false)
        #expect(try PNM.decodeFile(Array("P5\n3 1\n255\n".utf8) + stored, path: "g8.pgm").deepGrey == false)
        #expect(try ImageFile.read(path: fixtures + "tiff-grey-deflate-16x12.tif", reducedTo: 64).deepGrey == false)
    }

    @Test func adviceSaysWhatPyTorchSeesAndTheFix() throws {
        #expect(DeepGrey.advice([], of: 5) == nil)
        let two = try #require(DeepGrey.advice(["ds/cells/b.tif", "ds/cells/a.png"], of: 5))
        #expect(two.hasPrefix("2 images of 5 are 16-bit grey (ds/cells/a.png): synthd scales them to 8 bits, but PyTorch's "
            + "ImageFolder (Pillow's convert(\"RGB\")) clips 16-bit samples at 255"))
        #expect(two.contains("mogrify -depth 8"))
    }
}
