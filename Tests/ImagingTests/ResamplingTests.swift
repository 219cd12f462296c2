import Imaging
import Testing

@Suite struct ResamplingTests {
    @Test func smallImagesArePaddedWithTheBorderColourAndCroppedBack() {
        var image = Image(width: 28, height: 28, mode: .grey, fill: 0)
        image[10, 12, 0] = 200
        let fitted = Resampling.fit(image, resolution: 32)
        #expect(fitted.width == 32 && fitted.height == 32)
        #expect(fitted[12, 14, 0] == 200)         // shifted by (32 - 28) / 2 = 2
        #expect(fitted[0, 0, 0] == 0 && fitted[31, 31, 0] == 0)
        #expect(Resampling.unfit(fitted, width: 28, height: 28) == image)
    }

    /// A shift moves every pixel and repeats the edge it uncovers: checked on a 3 x 2 grey
    /// image by hand, and on colour images against the rule pixel by pixel (the source of
    /// (x, y) is (x - right, y - down) clamped into the image, as NumPy's `image[clip(rows)][:,
    /// clip(columns)]` in scripts/bound_folders.py).
    /// Moves past the edge (offsets from a damaged manifest, up to Int's ends) are moves by
    /// the whole side: every pixel repeats the edge, no overflow.
    @Test func shiftsPastTheEdgeRepeatTheEdge() {
        var image = Image(width: 3, height: 2, mode: .grey)
        for p in 0..<6 { image.pixels[p] = UInt8(10 * (p + 1)) }
        #expect(Resampling.shifted(image, right: .max, down: 0).pixels == [10, 10, 10, 40, 40, 40])
        #expect(Resampling.shifted(image, right: .min, down: .min).pixels == [60, 60, 60, 60, 60, 60])
        #expect(Resampling.shifted(image, right: 3, down: 0) == Resampling.shifted(image, right: 1_000, down: 0))
    }

    @Test func shiftingRepeatsTheUncoveredEdge() {
        let grey = Image(width: 3, height: 2, mode: .grey, pixels: [1, 2, 3,
                                                                   4, 5, 6])
        #expect(Resampling.shifted(grey, right: 1, down: 0).pixels == [1, 1, 2, 4, 4, 5])
        #expect(Resampling.shifted(grey, right: -1, down: 1).pixels == [2, 3, 3, 2, 3, 3])
        #expect(Resampling.shifted(grey, right: 0, down: 0) == grey)
        #expect(Resampling.shifted(grey, right: 5, down: -5).pixels == [4, 4, 4, 4, 4, 4], "beyond the size: all one corner")

        var colour = Image(width: 5, height: 4, mode: .rgb)
        for i in colour.pixels.indices { colour.pixels[i] = UInt8(truncatingIfNeeded: i * 37 + 11) }
        for (right, down) in [(2, -1), (-2, 2), (0, 1), (1, 1)] {
            let moved = Resampling.shifted(colour, right: right, down: down)
            for y in 0..<4 { for x in 0..<5 { for c in 0..<3 {
                #expect(moved[x, y, c] == colour[min(max(x - right, 0), 4), min(max(y - down, 0), 3), c])
            } } }
        }
    }

    @Test func paddingUsesTheMostCommonBorderValue() {
        let image = Image(width: 2, height: 2, mode: .rgb, pixels: [255, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0])
        let fitted = Resampling.fit(image, resolution: 4)
        #expect(fitted[0, 0, 0] == 255 && fitted[3, 3, 2] == 255)
    }

    /// Grey: the most common border level (the centre does not count); a tie goes to the
    /// darker one. Colour: a tie in count and brightness goes to the smaller channels in order.
    @Test func borderTiesGoToTheDarkerColour() {
        var grey = Image(width: 4, height: 4, mode: .grey, fill: 90)
        for x in 0..<4 { grey[x, 0, 0] = 30; grey[x, 3, 0] = 30 }       // top and bottom rows at 30
        grey[1, 1, 0] = 7; grey[2, 2, 0] = 7
        #expect(Resampling.fit(grey, resolution: 6)[0, 0, 0] == 30)
        let tie = Image(width: 2, height: 2, mode: .grey, pixels: [90, 30, 30, 90])    // two each: the darker
        #expect(Resampling.fit(tie, resolution: 4)[3, 3, 0] == 30)
        let bright = Image(width: 2, height: 2, mode: .grey, pixels: [201, 200, 201, 201])
        #expect(Resampling.fit(bright, resolution: 4)[0, 3, 0] == 201)

        // 1 x 2 colour: [0, 10, 5] and [5, 10, 0] once each, both of brightness 15.
        let colour = Image(width: 1, height: 2, mode: .rgb, pixels: [5, 10, 0, 0, 10, 5])
        let fitted = Resampling.fit(colour, resolution: 4)
        #expect((0..<3).map { fitted[0, 0, $0] } == [0, 10, 5])
    }

    @Test func largeImagesAreScaledWholeEachSideOnItsOwn() {
        // 8 x 4 to 2 x 2: each pixel averages a 4 x 2 block.
        var image = Image(width: 8, height: 4, mode: .grey)
        for y in 0..<4 { for x in 0..<8 { image[x, y, 0] = UInt8(x / 4 * 100 + y / 2 * 10 + (x + y) % 2 * 4) } }
        #expect(Resampling.fit(image, resolution: 2).pixels == [2, 102, 12, 112])
        // 3 x 6 (narrower than R = 4, taller): the width is stretched, the height reduced.
        var tall = Image(width: 3, height: 6, mode: .grey)
        for y in 0..<6 { for x in 0..<3 { tall[x, y, 0] = UInt8(60 * x + y) } }
        let fitted = Resampling.fit(tall, resolution: 4)
        #expect(fitted.width == 4 && fitted.height == 4)
        // (0, 0) covers row 0 whole and half of row 1 in column 0: (0 + 0.5 x 1) / 1.5 -> 0; (3, 0) the same in column 2.
        #expect(fitted[0, 0, 0] == 0 && fitted[3, 0, 0] == 120, "the first and last columns are the image's")
    }

    /// Generation's way back gives the dataset's own width and height, and a smooth image
    /// survives the round trip within a few levels (a photo of 64 x 48 comes back 64 x 48,
    /// where the centre-square rule made it 48 x 48).
    @Test func wholeImagesComeBackAtTheirWidthAndHeight() {
        var image = Image(width: 64, height: 48, mode: .rgb)
        for y in 0..<48 { for x in 0..<64 { for c in 0..<3 { image[x, y, c] = UInt8(2 * x + y + 20 * c) } } }
        let back = Resampling.unfit(Resampling.fit(image, resolution: 32), width: 64, height: 48)
        #expect(back.width == 64 && back.height == 48)
        var worst = 0
        for y in 2..<46 { for x in 2..<62 { for c in 0..<3 { worst = max(worst, abs(Int(back[x, y, c]) - Int(image[x, y, c]))) } } }
        #expect(worst <= 3, "a smooth ramp changed by \(worst) levels away from the border")
        let square = Resampling.unfit(Resampling.fit(image, resolution: 32, fitting: .centreSquare), width: 64, height: 48,
                                      fitting: .centreSquare)
        #expect(square.width == 48 && square.height == 48, "older models' rule: the centre square")
    }

    /// A size over the cap keeps its aspect, its shorter side becoming the cap; one within it
    /// stays as it is.
    @Test func aCappedSizeKeepsItsAspect() {
        func capped(_ width: Int, _ height: Int) -> [Int] {
            let size = Resampling.cappedSize(width: width, height: height, maxShortSide: 256)
            return [size.width, size.height]
        }
        #expect(capped(4032, 3024) == [341, 256])
        #expect(capped(3024, 4032) == [256, 341])
        #expect(capped(8000, 1000) == [2048, 256])
        #expect(capped(300, 300) == [256, 256])
        #expect(capped(5000, 257) == [4981, 256])
        #expect(capped(256, 4000) == [256, 4000], "within the cap")
        #expect(capped(28, 28) == [28, 28])
    }

    @Test func theCentreSquareRuleCropsAndAreaAverages() {
        // 8 x 4: the centre 4 x 4 is kept; reduced to 2 x 2, each pixel averages a 2 x 2 block.
        var image = Image(width: 8, height: 4, mode: .grey, fill: 9)
        for y in 0..<4 { for x in 2..<6 { image[x, y, 0] = UInt8((x - 2) / 2 * 100 + y / 2 * 10) } }
        let fitted = Resampling.fit(image, resolution: 2, fitting: .centreSquare)
        #expect(fitted.pixels == [0, 100, 10, 110])
    }

    @Test func areaResizeKeepsTheMeanAtFractionalScales() {
        var image = Image(width: 5, height: 5, mode: .grey)
        for i in 0..<25 { image.pixels[i] = UInt8(i * 10) }
        let small = Resampling.areaResize(image, width: 3, height: 3)
        let meanIn = Double(image.pixels.reduce(0) { $0 + Int($1) }) / 25
        let meanOut = Double(small.pixels.reduce(0) { $0 + Int($1) }) / 9
        #expect(abs(meanIn - meanOut) < 1)
    }

    @Test func greyConversionMatchesPIL() {
        // PIL: Image.new("RGB", (1, 1), (255, 128, 0)).convert("L") -> 151
        let image = Image(width: 1, height: 1, mode: .rgb, pixels: [255, 128, 0])
        #expect(Resampling.grey(image).pixels == [151])
        #expect(Resampling.hasColour(image))
        #expect(!Resampling.hasColour(Resampling.rgb(Resampling.grey(image))))
        // A grey image a lossy codec left a level or two off grey is grey; a faint tint is colour.
        #expect(!Resampling.hasColour(Image(width: 2, height: 1, mode: .rgb, pixels: [100, 101, 100, 50, 48, 52])))
        #expect(Resampling.hasColour(Image(width: 2, height: 1, mode: .rgb, pixels: [100, 100, 100, 50, 48, 53])))
    }

    @Test func bilinearUpscaleOfAConstantIsConstant() {
        let image = Image(width: 3, height: 3, mode: .rgb, fill: 77)
        #expect(Resampling.bilinearResize(image, width: 7, height: 5).pixels.allSatisfy { $0 == 77 })
    }
}
