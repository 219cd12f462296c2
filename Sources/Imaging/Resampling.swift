/// Fitting dataset images to the model's square resolution R, and back.
///
/// Rules:
/// - an image no larger than R on both sides is centred on an R x R canvas filled with its
///   background: the most common value among its border pixels (0 for MNIST-like data);
///   generation crops the same centre back out, so a 28 x 28 dataset gets 28 x 28 images;
/// - a larger image is scaled to R x R whole, each side by its own factor, with an area filter
///   (each output pixel averages the input area it covers, an antialiased downscale);
///   generation scales R x R bilinearly back to the dataset's width and height, so a dataset
///   of 64 x 48 photos gets 64 x 48 images showing whole scenes (`Fitting.wholeImage`). Models
///   made before 2026-12-04 were trained on the centre square instead and keep it
///   (`Fitting.centreSquare`);
/// - grey and colour: a grey dataset's colour images become grey by ITU-R 601 weights
///   (L = (299 R + 587 G + 114 B) / 1000, as PIL); a colour dataset's grey images are repeated
///   into R, G and B.
public enum Resampling {
    /// How an image larger than R on a side becomes R x R (smaller ones are always padded).
    public enum Fitting: String, Sendable, Codable {
        /// The whole image, each side scaled on its own: generated images come back at the
        /// dataset's width and height, and nothing at the sides is lost to training.
        case wholeImage = "whole-image"
        /// The centre square (the shorter side), the rest cut: generated images came back
        /// square (the shorter side's size), so a dataset of 64 x 48 photos got 48 x 48 images
        /// that a classifier batching both folders could not stack with its real ones.
        case centreSquare = "centre-square"
    }

    /// `image` fitted to R x R as the rules above say.
    public static func fit(_ image: Image, resolution r: Int, fitting: Fitting = .wholeImage) -> Image {
        if image.width <= r && image.height <= r { return pad(image, to: r) }
        switch fitting {
        case .wholeImage:
            return areaResize(image, width: r, height: r)
        case .centreSquare:
            let side = min(image.width, image.height)
            let cropped = crop(image, x: (image.width - side) / 2, y: (image.height - side) / 2, width: side, height: side)
            return areaResize(cropped, width: r, height: r)
        }
    }

    /// The inverse of `fit` for an image of `width` x `height`.
    public static func unfit(_ image: Image, width: Int, height: Int, fitting: Fitting = .wholeImage) -> Image {
        let r = image.width
        if width <= r && height <= r {
            return crop(image, x: (r - width) / 2, y: (r - height) / 2, width: width, height: height)
        }
        switch fitting {
        case .wholeImage:
            return bilinearResize(image, width: width, height: height)
        case .centreSquare:
            let side = min(width, height)
            return bilinearResize(image, width: side, height: side)
        }
    }

    /// `width` x `height` scaled down, its aspect kept, so that its shorter side is
    /// `maxShortSide` (each side rounded, at least 1); as it is when that side is no longer.
    public static func cappedSize(width: Int, height: Int, maxShortSide: Int) -> (width: Int, height: Int) {
        precondition(maxShortSide > 0, "a side of \(maxShortSide)")
        let short = min(width, height)
        guard short > maxShortSide else { return (width, height) }
        let scale = Double(maxShortSide) / Double(short)
        return (max(1, Int((Double(width) * scale).rounded())), max(1, Int((Double(height) * scale).rounded())))
    }

    /// Centred on an r x r canvas of the border's most common colour.
    public static func pad(_ image: Image, to r: Int) -> Image {
        if image.width == r && image.height == r { return image }
        let channels = image.mode.channels
        let background = borderMode(image)
        var out = Image(width: r, height: r, mode: image.mode)
        for p in 0..<(r * r) { for c in 0..<channels { out.pixels[p * channels + c] = background[c] } }
        let x0 = (r - image.width) / 2, y0 = (r - image.height) / 2
        out.paste(image, x: x0, y: y0)
        return out
    }

    /// `image` moved `right` pixels right and `down` pixels down (negative: left, up), the
    /// pixels that come in from an edge repeating that edge's row or column, as a translation
    /// augmentation with edge padding does.
    public static func shifted(_ image: Image, right: Int, down: Int) -> Image {
        if right == 0 && down == 0 { return image }
        let (width, height, channels) = (image.width, image.height, image.mode.channels)
        // A move past the edge repeats the edge everywhere, as a move by the side does; clamped
        // so that offsets read from a damaged manifest (Int.min) cannot overflow below.
        let right = min(max(right, -width), width), down = min(max(down, -height), height)
        var out = image
        image.pixels.withUnsafeBufferPointer { from in
            out.pixels.withUnsafeMutableBufferPointer { to in
                for y in 0..<height {
                    let source = min(max(y - down, 0), height - 1) * width
                    for x in 0..<width {
                        let p = (source + min(max(x - right, 0), width - 1)) * channels, q = (y * width + x) * channels
                        for c in 0..<channels { to[q + c] = from[p + c] }
                    }
                }
            }
        }
        return out
    }

    public static func crop(_ image: Image, x: Int, y: Int, width: Int, height: Int) -> Image {
        precondition(x >= 0 && y >= 0 && x + width <= image.width && y + height <= image.height, "crop outside the image")
        let channels = image.mode.channels
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * channels)
        for row in y..<(y + height) {
            let start = (row * image.width + x) * channels
            pixels.append(contentsOf: image.pixels[start..<(start + width * channels)])
        }
        return Image(width: width, height: height, mode: image.mode, pixels: pixels)
    }

    /// Each output pixel is the coverage-weighted mean of the input pixels under it.
    public static func areaResize(_ image: Image, width: Int, height: Int) -> Image {
        let channels = image.mode.channels
        let sx = Double(image.width) / Double(width), sy = Double(image.height) / Double(height)
        var out = Image(width: width, height: height, mode: image.mode)
        for oy in 0..<height {
            let y0 = Double(oy) * sy, y1 = y0 + sy
            for ox in 0..<width {
                let x0 = Double(ox) * sx, x1 = x0 + sx
                var sums = [Double](repeating: 0, count: channels)
                var area = 0.0
                for iy in Int(y0)..<min(image.height, Int(y1.rounded(.up))) {
                    let wy = min(y1, Double(iy + 1)) - max(y0, Double(iy))
                    if wy <= 0 { continue }
                    for ix in Int(x0)..<min(image.width, Int(x1.rounded(.up))) {
                        let wx = min(x1, Double(ix + 1)) - max(x0, Double(ix))
                        if wx <= 0 { continue }
                        let w = wx * wy
                        area += w
                        for c in 0..<channels { sums[c] += w * Double(image.pixels[(iy * image.width + ix) * channels + c]) }
                    }
                }
                for c in 0..<channels { out.pixels[(oy * width + ox) * channels + c] = UInt8((sums[c] / area).rounded()) }
            }
        }
        return out
    }

    /// Bilinear interpolation with pixel centres aligned (align_corners = false).
    public static func bilinearResize(_ image: Image, width: Int, height: Int) -> Image {
        let channels = image.mode.channels
        var out = Image(width: width, height: height, mode: image.mode)
        let sx = Double(image.width) / Double(width), sy = Double(image.height) / Double(height)
        for oy in 0..<height {
            let fy = max(0, (Double(oy) + 0.5) * sy - 0.5)
            let y0 = min(Int(fy), image.height - 1), y1 = min(y0 + 1, image.height - 1), ty = fy - Double(y0)
            for ox in 0..<width {
                let fx = max(0, (Double(ox) + 0.5) * sx - 0.5)
                let x0 = min(Int(fx), image.width - 1), x1 = min(x0 + 1, image.width - 1), tx = fx - Double(x0)
                for c in 0..<channels {
                    func at(_ x: Int, _ y: Int) -> Double { Double(image.pixels[(y * image.width + x) * channels + c]) }
                    let top = at(x0, y0) * (1 - tx) + at(x1, y0) * tx
                    let bottom = at(x0, y1) * (1 - tx) + at(x1, y1) * tx
                    out.pixels[(oy * width + ox) * channels + c] = UInt8((top * (1 - ty) + bottom * ty).rounded())
                }
            }
        }
        return out
    }

    /// The most common border colour (ties: the darkest, then the smallest channels in order).
    /// Colours are counted packed into one integer, grey ones in a table: generation's class
    /// check pads every sample it judges.
    static func borderMode(_ image: Image) -> [UInt8] {
        let channels = image.mode.channels
        var counts: [UInt32: Int] = [:]
        var greyCounts = [Int](repeating: 0, count: channels == 1 ? 256 : 0)
        image.pixels.withUnsafeBufferPointer { pixels in
            func visit(_ x: Int, _ y: Int) {
                let start = (y * image.width + x) * channels
                if channels == 1 { greyCounts[Int(pixels[start])] += 1; return }
                var key: UInt32 = 0
                for c in 0..<channels { key = key << 8 | UInt32(pixels[start + c]) }
                counts[key, default: 0] += 1
            }
            for x in 0..<image.width { visit(x, 0); visit(x, image.height - 1) }
            for y in 0..<image.height { visit(0, y); visit(image.width - 1, y) }
        }
        if channels == 1 {
            let best = greyCounts.indices.max { greyCounts[$0] != greyCounts[$1] ? greyCounts[$0] < greyCounts[$1] : $0 > $1 }!
            return [UInt8(best)]
        }
        func colour(_ key: UInt32) -> [UInt8] { (0..<channels).map { UInt8(truncatingIfNeeded: key >> (8 * UInt32(channels - 1 - $0))) } }
        func darkness(_ key: UInt32) -> Int { colour(key).reduce(0) { $0 + Int($1) } }
        let best = counts.max { a, b in
            if a.value != b.value { return a.value < b.value }
            if darkness(a.key) != darkness(b.key) { return darkness(a.key) > darkness(b.key) }
            return a.key > b.key
        }!.key
        return colour(best)
    }

    /// Grey by ITU-R 601 weights, rounded as PIL's convert("L").
    public static func grey(_ image: Image) -> Image {
        guard image.mode == .rgb else { return image }
        var out = Image(width: image.width, height: image.height, mode: .grey)
        for p in 0..<(image.width * image.height) {
            let r = Int(image.pixels[3 * p]), g = Int(image.pixels[3 * p + 1]), b = Int(image.pixels[3 * p + 2])
            out.pixels[p] = UInt8((r * 299 + g * 587 + b * 114 + 500) / 1000)
        }
        return out
    }

    public static func rgb(_ image: Image) -> Image {
        guard image.mode == .grey else { return image }
        return Image(width: image.width, height: image.height, mode: .rgb, pixels: image.pixels.flatMap { [$0, $0, $0] })
    }

    /// Whether a colour image holds any pixel whose channels differ by more than
    /// `greyTolerance` levels. Lossy compression leaves grey images a level or two off grey
    /// in a few pixels (a WebP of a Fashion-MNIST image: 2 pixels of 784, by 1 level), and one
    /// such file made a whole grey dataset train, and be written, in colour.
    public static func hasColour(_ image: Image) -> Bool {
        guard image.mode == .rgb else { return false }
        return image.pixels.withUnsafeBufferPointer { pixels in
            for p in 0..<(image.width * image.height) {
                let (r, g, b) = (Int(pixels[3 * p]), Int(pixels[3 * p + 1]), Int(pixels[3 * p + 2]))
                if max(r, g, b) - min(r, g, b) > greyTolerance { return true }
            }
            return false
        }
    }

    /// How far apart a pixel's channels may be and the pixel still grey.
    public static let greyTolerance = 4
}
