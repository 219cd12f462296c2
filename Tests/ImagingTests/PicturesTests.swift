import Imaging
import Testing

/// The labels of synthd's pictures: the 5 x 7 font, the class names beside the sample grid,
/// and the values, steps and legend of the line charts.
struct PicturesTests {
    /// The pixels set in `image`'s rectangle that differ from `background`, as (x, y) pairs
    /// relative to the rectangle's corner.
    func inked(_ image: Image, x: Int, y: Int, width: Int, height: Int, background: UInt8 = 255) -> Set<[Int]> {
        var set: Set<[Int]> = []
        for j in 0..<height { for i in 0..<width where image[x + i, y + j, 0] != background { set.insert([i, j]) } }
        return set
    }

    @Test func everyPrintableCharacterHasItsOwnGlyph() {
        var seen: [Set<[Int]>: Character] = [:]
        for code in 33..<127 {
            let scalar = Unicode.Scalar(UInt8(code))
            let pixels = Set((0..<7).flatMap { row in (0..<5).compactMap { column in
                BitmapFont.isSet(scalar, column: column, row: row) ? [column, row] : nil } })
            #expect(!pixels.isEmpty, "\(scalar) draws nothing")
            #expect(seen[pixels] == nil, "\(scalar) looks like \(seen[pixels].map(String.init) ?? "")")
            seen[pixels] = Character(scalar)
        }
        #expect((0..<7).allSatisfy { row in (0..<5).allSatisfy { !BitmapFont.isSet(" ", column: $0, row: row) } })
    }

    @Test func textIsDrawnGlyphByGlyphAndUnknownCharactersAsAQuestionMark() {
        var image = Image(width: 40, height: 10, mode: .grey, fill: 255)
        BitmapFont.draw("L1", into: &image, x: 2, y: 1, colour: (0, 0, 0))
        // "L": the left column and the bottom row of its 5 x 7 cell.
        let l = Set((0..<7).map { [0, $0] } + (0..<5).map { [$0, 6] })
        #expect(inked(image, x: 2, y: 1, width: 5, height: 7) == l)
        #expect(inked(image, x: 7, y: 1, width: 1, height: 7).isEmpty, "a blank column between characters")
        #expect(image[2, 0, 0] == 255 && image[2, 8, 0] == 255, "nothing above or below the cell")
        #expect(BitmapFont.width(of: "L1") == 11 && BitmapFont.width(of: "") == 0)

        var unknown = Image(width: 10, height: 8, mode: .rgb, fill: 255), question = unknown
        BitmapFont.draw("é", into: &unknown, x: 0, y: 0, colour: (200, 0, 0))
        BitmapFont.draw("?", into: &question, x: 0, y: 0, colour: (200, 0, 0))
        #expect(unknown == question && unknown[2, 6, 0] == 200 && unknown[2, 6, 1] == 0)
        #expect(BitmapFont.fitted("a-very-long-class-name", characters: 8) == "a-very..")
        #expect(BitmapFont.fitted("shirt", characters: 8) == "shirt")
    }

    @Test func theSampleGridNamesEachRowInAMarginOnTheLeft() {
        let tiles = (0..<6).map { Image(width: 12, height: 12, mode: .grey, fill: UInt8(20 * $0)) }
        let plain = ImageGrid.compose(tiles, columns: 3)
        #expect(plain.width == 3 * 12 + 4 * 2 && plain.height == 2 * 12 + 3 * 2)

        let labelled = ImageGrid.compose(tiles, columns: 3, rowLabels: ["bag", "t-shirt"])
        let margin = BitmapFont.width(of: "t-shirt") + 8
        #expect(labelled.width == plain.width + margin && labelled.height == plain.height)
        for y in 0..<plain.height { for x in 0..<plain.width { #expect(labelled[margin + x, y, 0] == plain[x, y, 0]) } }
        // Each label is centred on its row: rows start at 2 and 16, 12 pixels high.
        var bag = Image(width: margin, height: labelled.height, mode: .grey, fill: 255)
        BitmapFont.draw("bag", into: &bag, x: 4, y: 2 + 6 - 3, colour: (0, 0, 0))
        BitmapFont.draw("t-shirt", into: &bag, x: 4, y: 16 + 6 - 3, colour: (0, 0, 0))
        #expect(inked(labelled, x: 0, y: 0, width: margin, height: labelled.height) == inked(bag, x: 0, y: 0, width: margin, height: bag.height))
        let long = ImageGrid.compose(tiles, columns: 3, rowLabels: [String(repeating: "x", count: 40)])
        #expect(long.width == plain.width + BitmapFont.width(of: String(repeating: "x", count: ImageGrid.labelCharacters)) + 8,
                "a long name is cut, not the grid widened for it")
    }

    /// Blocks of a samples grid, four to a band, each in a cell the size of the largest, on white.
    @Test func blocksAreTiledFourToABand() {
        let blocks = (0..<5).map { Image(width: 10 + $0, height: $0 == 4 ? 6 : 8, mode: .grey, fill: UInt8(10 * ($0 + 1))) }
        let sheet = ImageGrid.tile(blocks, columns: 4, gap: 3)
        #expect(sheet.width == 4 * 14 + 3 * 3 && sheet.height == 2 * 8 + 3)
        #expect(sheet[0, 0, 0] == 10 && sheet[3 * 17, 0, 0] == 40 && sheet[0, 11, 0] == 50)
        #expect(sheet[10, 0, 0] == 255, "the first block is narrower than its cell: white beside it")
        #expect(sheet[0, 11 + 6, 0] == 255, "the last block is shorter: white below it")
        #expect(ImageGrid.tile(Array(blocks.prefix(2)), columns: 4, gap: 3).width == 2 * 11 + 3,
                "two blocks take two cells, not four")
    }

    @Test func gridLinesAreAtRoundValuesLabelledWithTheDigitsTheirStepNeeds() {
        #expect(LineChart.Ticks(low: 0.26, high: 1.78) == LineChart.Ticks(low: 0.26, high: 1.78, about: 5))
        let losses = LineChart.Ticks(low: 0.26, high: 1.78)
        #expect(losses.step == 0.5 && losses.values == [0, 0.5, 1, 1.5, 2], "\(losses)")
        #expect(LineChart.Ticks(low: 0, high: 1).values.map { ($0 * 10).rounded() } == [0, 2, 4, 6, 8, 10])
        #expect(LineChart.Ticks(low: 100, high: 20_000).values == [0, 5_000, 10_000, 15_000, 20_000])
        #expect(LineChart.Ticks(low: -0.31, high: 0.07).values.map { ($0 * 10).rounded() } == [-4, -3, -2, -1, 0, 1])
        let flat = LineChart.Ticks(low: 2, high: 2)
        #expect(flat.values.count >= 2 && flat.values.first! <= 2 && flat.values.last! >= 2, "a flat series still gets a range")

        #expect(LineChart.valueLabel(1.5, step: 0.5) == "1.5")
        #expect(LineChart.valueLabel(-0.3, step: 0.1) == "-0.3")
        #expect(LineChart.valueLabel(-0.0001, step: 0.05) == "0.00", "no minus sign on a rounded zero")
        #expect(LineChart.valueLabel(0.25, step: 0.05) == "0.25")
        #expect(LineChart.valueLabel(300, step: 100) == "300" && LineChart.valueLabel(4, step: 2) == "4")
        #expect(LineChart.stepLabel(0) == "0" && LineChart.stepLabel(9_999) == "9999")
        #expect(LineChart.stepLabel(12_500) == "12.5k" && LineChart.stepLabel(50_000) == "50k" && LineChart.stepLabel(12_340) == "12.3k")
    }

    @Test func aChartPlacesPointsByStepAndLabelsItsAxesAndLegend() {
        let red: (UInt8, UInt8, UInt8) = (220, 40, 40)
        // Steps 0, 100 and 1,000: the middle point lies a tenth of the way across, not halfway.
        let chart = LineChart.render([.init(values: [0, 1, 1], colour: red, name: "D loss")], x: [0, 100, 1_000],
                                     plotWidth: 200, plotHeight: 100)
        #expect(chart.width == LineChart.left + 200 + LineChart.right && chart.height == LineChart.top + 100 + LineChart.bottom)
        func isRed(_ x: Int, _ y: Int) -> Bool { chart[x, y, 0] == 220 && chart[x, y, 1] == 40 }
        let topRow = LineChart.top
        let reds = (LineChart.left..<(LineChart.left + 200)).filter { isRed($0, topRow) }
        #expect(reds.first == LineChart.left + 20, "the value 1 is first reached at step 100, a tenth of 199 pixels in")
        // The values at the top and bottom grid lines (0 and 1 in steps of 0.2), right-aligned
        // 4 pixels left of the plot.
        for (text, y) in [("1.0", topRow), ("0.8", topRow + 20), ("0.0", topRow + 99)] {
            var expected = Image(width: LineChart.left, height: 7, mode: .rgb, fill: 255)
            BitmapFont.draw(text, into: &expected, x: LineChart.left - 4 - BitmapFont.width(of: text), y: 0, colour: (90, 90, 90))
            #expect(inked(chart, x: 0, y: y - 3, width: LineChart.left - 1, height: 7) == inked(expected, x: 0, y: 0, width: LineChart.left - 1, height: 7),
                    "\(text) at row \(y)")
        }
        // The last step under the plot's right edge, and the legend's bar in the series' colour.
        var steps = Image(width: chart.width, height: 8, mode: .rgb, fill: 255)
        BitmapFont.draw("1000", into: &steps, x: chart.width - 1 - BitmapFont.width(of: "1000"), y: 0, colour: (90, 90, 90))
        #expect(inked(chart, x: chart.width - 30, y: topRow + 104, width: 30, height: 7)
                == inked(steps, x: chart.width - 30, y: 0, width: 30, height: 7))
        // The axis's name at its left, apart from the first step's label (0, at the plot's edge).
        var name = Image(width: LineChart.left, height: 8, mode: .rgb, fill: 255)
        BitmapFont.draw("steps", into: &name, x: 0, y: 0, colour: (90, 90, 90))
        #expect(inked(chart, x: 0, y: topRow + 104, width: 36, height: 7) == inked(name, x: 0, y: 0, width: 36, height: 7))
        #expect(isRed(LineChart.left, 6) && isRed(LineChart.left + 9, 7))
        #expect(!inked(chart, x: LineChart.left + 13, y: 3, width: BitmapFont.width(of: "D loss"), height: 7).isEmpty)

        let unlabelled = LineChart.render([.init(values: [0, 1, 1], colour: red)], plotWidth: 200, plotHeight: 100)
        #expect(inked(unlabelled, x: 0, y: LineChart.top + 103, width: unlabelled.width, height: 9).isEmpty,
                "no steps below a chart without them")
        #expect(inked(unlabelled, x: 0, y: 0, width: unlabelled.width, height: LineChart.top - 4).isEmpty,
                "no legend without names (the top value's label starts 3 rows above the plot)")
    }

    /// Steps and values from a damaged losses.csv or a diverged training (steps at Int's ends
    /// and out of order, losses of 3e38, infinities, NaN): a picture all the same, where the
    /// steps' difference and the labels' digits overflowed an Int (traps) before 2026-12-03.
    @Test(arguments: [[Int.min, 0, Int.max, 5], [9, 3, Int.max - 1, Int.max], [0, 1, 2, 1 << 62]])
    func aChartOfAnyNumbersIsDrawn(steps: [Int]) {
        let values: [[Float]] = [[0, 1, 2, 3], [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .nan, .infinity],
                                 [1e-30, 2e-30, 1e-30, 0], [1e20, 1e20, 1e20, 1e20]]
        for series in values {
            let chart = LineChart.render([.init(values: series, colour: (220, 40, 40), name: "D loss")], x: steps,
                                         plotWidth: 200, plotHeight: 100, marks: [3])
            #expect(chart.width == LineChart.left + 200 + LineChart.right && chart.height == LineChart.top + 100 + LineChart.bottom)
        }
        #expect(LineChart.valueLabel(3e38, step: 1e38) == "3e+38")
        #expect(LineChart.stepLabel(.min).hasSuffix("k"))
    }
}
