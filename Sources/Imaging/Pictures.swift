/// A grid of equally sized images with 2-pixel mid-grey gaps, row by row.
public enum ImageGrid {
    public static func compose(_ images: [Image], columns: Int, gap: Int = 2) -> Image {
        precondition(!images.isEmpty, "no images for a grid")
        let w = images[0].width, h = images[0].height, mode = images[0].mode, c = mode.channels
        let rows = (images.count + columns - 1) / columns
        let width = columns * w + (columns + 1) * gap, height = rows * h + (rows + 1) * gap
        var grid = Image(width: width, height: height, mode: mode, fill: 128)
        for (index, image) in images.enumerated() {
            let x0 = gap + (index % columns) * (w + gap), y0 = gap + (index / columns) * (h + gap)
            for y in 0..<h {
                let from = y * w * c, to = ((y0 + y) * width + x0) * c
                grid.pixels.replaceSubrange(to..<(to + w * c), with: image.pixels[from..<(from + w * c)])
            }
        }
        return grid
    }
}

/// A line chart of one or more series on a white canvas, with light grid lines at quarters.
public enum LineChart {
    public struct Series {
        public var values: [Float]
        public var colour: (UInt8, UInt8, UInt8)
        public init(values: [Float], colour: (UInt8, UInt8, UInt8)) {
            self.values = values
            self.colour = colour
        }
    }

    /// `mark`: a vertical line at that point of the series (all as long as the first), in
    /// `markColour`, under the series.
    public static func render(_ series: [Series], width: Int = 480, height: Int = 240, mark: Int? = nil,
                              markColour: (UInt8, UInt8, UInt8) = (30, 160, 60)) -> Image {
        var canvas = Image(width: width, height: height, mode: .rgb, fill: 255)
        for quarter in 1..<4 {
            let y = height * quarter / 4, x = width * quarter / 4
            for i in 0..<width { set(&canvas, i, y, (225, 225, 225)) }
            for j in 0..<height { set(&canvas, x, j, (225, 225, 225)) }
        }
        if let mark, let n = series.first?.values.count, n > 1 {
            // Three pixels wide: at the right edge (the latest checkpoint) one would hardly show.
            let x = mark * (width - 1) / (n - 1)
            for j in 0..<height { for dx in -1...1 { set(&canvas, min(width - 1, max(0, x + dx)), j, markColour) } }
        }
        let all = series.flatMap(\.values).filter(\.isFinite)
        guard let low = all.min(), let high = all.max() else { return canvas }
        let span = max(high - low, 1e-6)
        for s in series where s.values.count > 1 {
            let n = s.values.count
            var previous: (Int, Int)?
            for (i, v) in s.values.enumerated() where v.isFinite {
                let x = i * (width - 1) / (n - 1)
                let y = (height - 1) - Int((v - low) / span * Float(height - 1))
                if let (px, py) = previous { line(&canvas, px, py, x, y, s.colour) }
                previous = (x, y)
            }
        }
        return canvas
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
