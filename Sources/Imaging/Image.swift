/// An 8-bit image in memory: rows top to bottom, pixels left to right, channels interleaved
/// (grey: 1 byte per pixel; colour: R, G, B).
public struct Image: Sendable, Equatable {
    public enum Mode: Int, Sendable, Codable {
        case grey = 1
        case rgb = 3

        public var channels: Int { rawValue }
    }

    public let width: Int
    public let height: Int
    public let mode: Mode
    public var pixels: [UInt8]

    public init(width: Int, height: Int, mode: Mode, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image of \(width)x\(height) pixels")
        precondition(pixels.count == width * height * mode.channels,
                     "\(pixels.count) bytes for a \(width)x\(height) \(mode) image")
        self.width = width
        self.height = height
        self.mode = mode
        self.pixels = pixels
    }

    /// A uniform image.
    public init(width: Int, height: Int, mode: Mode, fill: UInt8 = 0) {
        self.init(width: width, height: height, mode: mode,
                  pixels: [UInt8](repeating: fill, count: width * height * mode.channels))
    }

    public subscript(x: Int, y: Int, channel: Int) -> UInt8 {
        get { pixels[(y * width + x) * mode.channels + channel] }
        set { pixels[(y * width + x) * mode.channels + channel] = newValue }
    }

    /// Copies `picture` (of this image's mode, wholly inside it) with its top left corner at
    /// (`x`, `y`): the grids' tiles, a padded image's content.
    public mutating func paste(_ picture: Image, x: Int, y: Int) {
        let row = picture.width * mode.channels
        for line in 0..<picture.height {
            let from = line * row, to = ((y + line) * width + x) * mode.channels
            pixels.replaceSubrange(to..<(to + row), with: picture.pixels[from..<(from + row)])
        }
    }
}

/// Sizes that are refused before any pixel is decoded, so that a hostile or broken header
/// cannot make synthd allocate gigabytes.
public struct ImageLimits: Sendable, Equatable {
    public var maxFileBytes: Int
    public var maxPixels: Int

    /// 64 MiB files, 16 megapixels (4096 x 4096).
    public static let standard = ImageLimits(maxFileBytes: 64 << 20, maxPixels: 16 << 20)

    public init(maxFileBytes: Int, maxPixels: Int) {
        self.maxFileBytes = maxFileBytes
        self.maxPixels = maxPixels
    }
}

/// Why an image could not be read or written. Every case names the file.
public enum ImageError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    case tooManyPixels(path: String, width: Int, height: Int, limit: Int)
    case notAnImage(path: String)
    /// A FIFO, socket or device named like an image: never opened for reading beyond a
    /// non-blocking open and its `fstat`.
    case notRegularFile(path: String, kind: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            return "\(path): cannot decode image: \(reason)"
        case .fileTooLarge(let path, let bytes, let limit):
            return "\(path): file is \(bytes) bytes, over the limit of \(limit); skipped"
        case .tooManyPixels(let path, let width, let height, let limit):
            return "\(path): image is \(width)x\(height) pixels, over the limit of \(limit) pixels; skipped"
        case .notAnImage(let path):
            return "\(path): not a PNG, JPEG, WebP, BMP, PGM/PPM or TIFF file"
        case .notRegularFile(let path, let kind):
            return "\(path): a \(kind), not a regular file; skipped"
        case .unwritable(let path, let reason):
            return "\(path): cannot write image: \(reason)"
        }
    }

    public var path: String {
        switch self {
        case .unreadable(let path, _), .fileTooLarge(let path, _, _), .tooManyPixels(let path, _, _, _),
             .notAnImage(let path), .notRegularFile(let path, _), .unwritable(let path, _):
            return path
        }
    }
}
