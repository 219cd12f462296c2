import Foundation

/// A line chart of one or more series on a white canvas: light grid lines at round values
/// (labelled on the left) and at round steps (or whatever `x` counts, labelled below), and a
/// legend of the named series above.
public enum LineChart {
    public struct Series {
        public var values: [Float]
        public var colour: (UInt8, UInt8, UInt8)
        /// The legend's name; nil: not in the legend (a band's edges, say).
        public var name: String?
        public init(values: [Float], colour: (UInt8, UInt8, UInt8), name: String? = nil) {
            self.values = values
            self.colour = colour
            self.name = name
        }
    }

    /// Margins around the plot: room for the values (left), the steps (below), the legend (above).
    public static let left = 46, right = 12, top = 14, bottom = 14
    static let labelGrey: (UInt8, UInt8, UInt8) = (90, 90, 90)
    /// The horizontal axis's name, where it has steps.
    static let stepsName = "steps"

    /// `x`: where each point lies along the horizontal axis (steps, all series as long as
    /// `x`); nil: evenly spaced, with no labels below. `marks`: a vertical line at each of these
    /// points' indices, in `markColour`, under the series; `markName` names them in the legend.
    /// `plotWidth` x `plotHeight` is the plot's own size; the picture adds the margins.
    public static func render(_ series: [Series], x: [Int]? = nil, plotWidth: Int = 480, plotHeight: Int = 240,
                              marks: [Int] = [], markColour: (UInt8, UInt8, UInt8) = (30, 160, 60),
                              markName: String? = nil) -> Image {
        let width = left + plotWidth + right, height = top + plotHeight + bottom
        var canvas = Image(width: width, height: height, mode: .rgb, fill: 255)
        let n = series.first?.values.count ?? 0
        let steps: (first: Int, last: Int)? = x.flatMap { x in
            guard x.count == n, let first = x.first, let last = x.last, last > first else { return nil }
            return (first, last)
        }
        // Horizontal pixel of point i, and of a step.
        // In Doubles, clamped to the canvas's neighbourhood: steps read back from a damaged
        // losses.csv can be anything (their difference overflowed an Int).
        func column(ofStep step: Double, _ range: (first: Int, last: Int)) -> Int {
            let fraction = (step - Double(range.first)) / (Double(range.last) - Double(range.first))
            return left + Int((min(2, max(-1, fraction)) * Double(plotWidth - 1)).rounded())
        }
        let columns: [Int] = (0..<n).map { i in
            if let steps, let x { return column(ofStep: Double(x[i]), steps) }
            return left + (n > 1 ? i * (plotWidth - 1) / (n - 1) : 0)
        }
        let frame: (UInt8, UInt8, UInt8) = (190, 190, 190), grid: (UInt8, UInt8, UInt8) = (228, 228, 228)
        for i in 0..<plotWidth { set(&canvas, left + i, top, frame); set(&canvas, left + i, top + plotHeight - 1, frame) }
        for j in 0..<plotHeight { set(&canvas, left, top + j, frame); set(&canvas, left + plotWidth - 1, top + j, frame) }
        if let steps {
            let ticks = Ticks(low: Double(steps.first), high: Double(steps.last))
            for step in ticks.values where step >= Double(steps.first) && step <= Double(steps.last) {
                let px = column(ofStep: step, steps)
                if px > left && px < left + plotWidth - 1 { for j in 1..<(plotHeight - 1) { set(&canvas, px, top + j, grid) } }
                let text = stepLabel(Int(exactly: step.rounded()) ?? Int.max), textWidth = BitmapFont.width(of: text)
                BitmapFont.draw(text, into: &canvas, x: min(width - 1 - textWidth, max(0, px - textWidth / 2)),
                                y: top + plotHeight + 4, colour: labelGrey)
            }
            // What the numbers below count, under the values' column (the widest step label,
            // "12.5k", centred on the plot's left edge, starts 3 pixels to its right).
            BitmapFont.draw(Self.stepsName, into: &canvas, x: 0, y: top + plotHeight + 4, colour: labelGrey)
        }
        // The vertical range widened to round values, which are the grid lines (none without a
        // finite value).
        let all = series.flatMap(\.values).filter(\.isFinite)
        let ticks = all.min().map { Ticks(low: Double($0), high: Double(all.max()!)) }
        let low = ticks?.values.first ?? 0, high = ticks?.values.last ?? 1
        func row(_ value: Double) -> Int {
            top + (plotHeight - 1) - Int((min(2, max(-1, (value - low) / (high - low))) * Double(plotHeight - 1)).rounded())
        }
        for value in ticks?.values ?? [] {
            let y = row(value)
            if y > top && y < top + plotHeight - 1 { for i in 1..<(plotWidth - 1) { set(&canvas, left + i, y, grid) } }
            let text = valueLabel(value, step: ticks!.step)
            BitmapFont.draw(text, into: &canvas, x: left - 4 - BitmapFont.width(of: text), y: y - BitmapFont.glyphHeight / 2,
                            colour: labelGrey)
        }
        for mark in marks where columns.indices.contains(mark) {
            // Over the grid, under the series. Three pixels wide: at the right edge (the latest
            // checkpoint) one would hardly show.
            for j in 0..<plotHeight {
                for dx in -1...1 { set(&canvas, min(left + plotWidth - 1, max(left, columns[mark] + dx)), top + j, markColour) }
            }
        }
        let named = series.compactMap { s in s.name.map { ($0, s.colour) } }
        let marked = marks.contains { columns.indices.contains($0) }
        drawLegend(named + (marked ? markName.map { [($0, markColour)] } ?? [] : []), into: &canvas)
        for s in series where s.values.count == n && n > 1 {
            var previous: (Int, Int)?
            for (i, v) in s.values.enumerated() where v.isFinite {
                let point = (columns[i], row(Double(v)))
                if let previous { line(&canvas, previous.0, previous.1, point.0, point.1, s.colour) }
                previous = point
            }
        }
        return canvas
    }

    /// Round values for grid lines: a step of 1, 2 or 5 times a power of ten giving about
    /// `count` lines, from the largest multiple at or below `low` to the smallest at or above `high`.
    public struct Ticks: Equatable {
        public let step: Double
        public let values: [Double]

        public init(low: Double, high: Double, about count: Int = 5) {
            let span = high > low ? high - low : max(abs(low), 1) * 1e-3
            let raw = span / Double(max(1, count - 1))
            let power = pow(10, (log10(raw)).rounded(.down))
            // The smallest round step not much finer than asked (a range of 1 gets 0.2, not 0.5).
            let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= raw * 0.75 } ?? 10 * power
            let first = (low / step).rounded(.down), last = max(first + 1, ((high > low ? high : low + span) / step).rounded(.up))
            self.step = step
            values = (Int(first)...Int(last)).map { Double($0) * step }
        }
    }

    /// A value at a grid line, with the decimals its step has ("0.25" at steps of 0.05, "300"
    /// at steps of 100).
    public static func valueLabel(_ value: Double, step: Double) -> String {
        // A diverged training's losses, or steps finer than a billionth: past what the digits
        // below can hold in an Int.
        guard abs(value) < 1e12, step >= 1e-9 else { return "\(Float(value))" }
        let decimals = max(0, Int((-log10(step) + 0.999).rounded(.down)))
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let rounded = (abs(value) * scale).rounded()
        let whole = Int((rounded / scale).rounded(.down)), fraction = Int(rounded) - whole * Int(scale)
        let sign = value < 0 && rounded > 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(whole) }
        let digits = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: decimals - digits.count) + digits
    }

    /// A step count below the chart: whole below 10,000, then in thousands ("12.5k", "50k").
    public static func stepLabel(_ step: Int) -> String {
        guard step.magnitude >= 10_000 else { return String(step) }
        let tenths = (Double(step) / 100).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10))k" : "\(Int(tenths) / 10).\(abs(Int(tenths)) % 10)k"
    }

    /// The named series' colours and names in a row above the plot, each a short bar of its
    /// colour and the name.
    static func drawLegend(_ entries: [(String, (UInt8, UInt8, UInt8))], into canvas: inout Image) {
        var x = left
        for (name, colour) in entries {
            for dx in 0..<10 { for dy in 0..<2 { set(&canvas, x + dx, 6 + dy, colour) } }
            BitmapFont.draw(name, into: &canvas, x: x + 13, y: 3, colour: (60, 60, 60))
            x += 13 + BitmapFont.width(of: name) + 12
        }
    }

    static func set(_ image: inout Image, _ x: Int, _ y: Int, _ colour: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
        image[x, y, 0] = colour.0
        image[x, y, 1] = colour.1
        image[x, y, 2] = colour.2
    }

    /// Bresenham's line.
    static func line(_ image: inout Image, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ colour: (UInt8, UInt8, UInt8)) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(&image, x, y, colour)
            if x == x1 && y == y1 { return }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }
}
