/// The orientation tag (0x0112) of Exif and TIFF: how a viewer turns or mirrors the stored
/// pixels to show them. A phone stores a photo as its sensor read it, sideways for a
/// portrait, and sets 6 or 8 in its JPEG's Exif data, so the photo shows upright.
/// PyTorch's ImageFolder reads through Pillow, which turns a TIFF as its tag says when it
/// loads it (`shown`: synthd's TIFF reader does the same) but reads a JPEG's pixels as stored,
/// as Keras does: a folder of such photos trains sideways in both. synthd reads JPEGs as
/// stored too and says so (`advice`) instead of turning them, so that its model and the
/// user's classifier keep seeing the same images; turning the files themselves fixes both.
public enum ExifOrientation {
    /// The file's orientation, 1-8 (1: as stored), from its first Exif segment before the
    /// first scan; nil without one, or where the value is not one of those.
    public static func of(jpeg bytes: [UInt8]) -> Int? {
        var orientation: Int?
        _ = JPEG.segmentBeforeTheFirstScan(in: bytes) { marker, start, length in
            guard marker == 0xE1 else { return false }
            // The segment's data after its marker and length: "Exif\0\0", then a TIFF file.
            let end = min(bytes.count, start + 2 + length), tiff = start + 10
            guard tiff + 8 <= end, bytes[(start + 4)..<tiff].elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) else { return false }
            orientation = value(inTIFF: bytes[tiff..<end])
            return true
        }
        return orientation.flatMap { (1...8).contains($0) ? $0 : nil }
    }

    /// Tag 0x0112 of the first image file directory of the TIFF structure `tiff` (byte order
    /// "II" or "MM"; the tag a SHORT).
    static func value(inTIFF tiff: ArraySlice<UInt8>) -> Int? {
        let base = tiff.startIndex
        let little: Bool
        switch (tiff[base], tiff[base + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func read(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, size <= tiff.count, offset <= tiff.count - size else { return nil }
            let bytes = tiff[(base + offset)..<(base + offset + size)]
            return (little ? bytes.reversed() : Array(bytes)).reduce(0) { $0 << 8 | Int($1) }
        }
        guard read(2, 2) == 42, let directory = read(4, 4), let entries = read(directory, 2) else { return nil }
        for entry in 0..<entries {
            let at = directory + 2 + 12 * entry
            guard let tag = read(at, 2) else { return nil }
            if tag == 0x0112 { return read(at + 2, 2) == 3 ? read(at + 8, 2) : nil }
        }
        return nil
    }

    /// `image` as a viewer shows it when the tag says `orientation` (Pillow's `exif_transpose`):
    /// 2-4 mirrored or turned upside down, 5-8 with width and height swapped.
    public static func shown(_ image: Image, orientation: Int) -> Image {
        guard (2...8).contains(orientation) else { return image }
        let (w, h) = (image.width, image.height), channels = image.mode.channels
        let swapped = orientation >= 5
        var shown = Image(width: swapped ? h : w, height: swapped ? w : h, mode: image.mode)
        image.pixels.withUnsafeBufferPointer { source in
            shown.pixels.withUnsafeMutableBufferPointer { target in
                for y in 0..<shown.height {
                    for x in 0..<shown.width {
                        // The stored pixel shown at (x, y).
                        let (sx, sy) = switch orientation {
                        case 2: (w - 1 - x, y)
                        case 3: (w - 1 - x, h - 1 - y)
                        case 4: (x, h - 1 - y)
                        case 5: (y, x)
                        case 6: (y, h - 1 - x)
                        case 7: (w - 1 - y, h - 1 - x)
                        default: (w - 1 - y, x)  // 8
                        }
                        let from = (sy * w + sx) * channels, to = (y * shown.width + x) * channels
                        for c in 0..<channels { target[to + c] = source[from + c] }
                    }
                }
            }
        }
        return shown
    }

    /// How a viewer shows a file of this orientation, in words.
    public static func describe(_ orientation: Int) -> String {
        switch orientation {
        case 2: return "mirrored left to right"
        case 3: return "turned upside down"
        case 4: return "mirrored top to bottom"
        case 5: return "mirrored along its diagonal"
        case 6: return "turned a quarter clockwise"
        case 7: return "mirrored along its other diagonal"
        case 8: return "turned a quarter anticlockwise"
        default: return "as stored"
        }
    }

    /// What a user should hear about a dataset of `total` images of which `turned` (path and
    /// orientation, not 1) carry an orientation: nil when none do.
    public static func advice(turned: [(path: String, orientation: Int)], of total: Int) -> String? {
        guard let first = turned.min(by: { $0.path < $1.path }) else { return nil }
        let (count, them) = someImages(turned.count, of: total, "is a JPEG", "are JPEGs")
        return "\(count) whose Exif orientation tells viewers to turn or mirror \(them) (\(first.path): shown "
            + "\(describe(first.orientation))): synthd reads the pixels as stored, as PyTorch's ImageFolder and Keras do, so "
            + "the model and your classifier see \(them) that way. To train on \(them) as shown, store \(them) upright "
            + "(`exiftran -ai *.jpg`, or ImageMagick's `mogrify -auto-orient *.jpg`)"
    }
}
