/// Transparency, read as the user's classifier reads it: dropped. torchvision's ImageFolder
/// loads every image with Pillow's `convert("RGB")`, which keeps the colour stored under a
/// transparent pixel and drops the alpha, compositing over nothing; Keras's loading (TensorFlow's
/// `decode_png` with three channels) does the same. synthd trains on what that classifier sees,
/// so it reads the stored colours too, and says so (`advice`): a viewer shows a transparent
/// pixel as its own background (white, a checkerboard), which neither reads.
///
/// Until 2026-12-05 synthd composited alpha over black instead: a logo on a transparent
/// background stored white trained on black backgrounds, and its synthetic images then taught
/// the user's classifier a background its real images never had.
public enum Transparency {
    /// `samples` of `mode`'s channels each followed by an alpha sample, as an image of the
    /// stored colours; `transparent` when any alpha is below 255.
    public static func dropped(width: Int, height: Int, mode: Image.Mode, samplesWithAlpha samples: [UInt8]) -> DecodedFile {
        let channels = mode.channels, stored = channels + 1
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        var lowest: UInt8 = 255
        samples.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                for p in 0..<(width * height) {
                    for c in 0..<channels { target[p * channels + c] = source[p * stored + c] }
                    lowest = min(lowest, source[p * stored + channels])
                }
            }
        }
        return DecodedFile(image: Image(width: width, height: height, mode: mode, pixels: pixels), transparent: lowest < 255)
    }

    /// A colour premultiplied by its alpha (a TIFF's associated alpha) back to the colour
    /// itself, as Pillow unpacks it (`unpackRGBa`): c * 255 / a truncated and clipped at 255,
    /// and 0 where a is 0.
    public static func unpremultiplied(_ colour: UInt8, alpha: UInt8) -> UInt8 {
        switch alpha {
        case 0: return 0
        case 255: return colour
        default: return UInt8(min(255, Int(colour) * 255 / Int(alpha)))
        }
    }

    /// What a user should hear about a dataset of `total` images of which the files `transparent`
    /// have transparent pixels: nil when none do.
    public static func advice(transparent: [String], of total: Int) -> String? {
        guard let first = transparent.min() else { return nil }
        let (count, them) = someImages(transparent.count, of: total, "has", "have")
        return "\(count) transparent pixels (\(first)): synthd reads the colours stored under them and drops the "
            + "transparency, as PyTorch's ImageFolder (Pillow's convert(\"RGB\")) and Keras do, so the model and your "
            + "classifier see those colours, not the background a viewer shows. To train on \(them) as shown, flatten "
            + "\(them) onto the background you mean (ImageMagick: `mogrify -background white -alpha remove -alpha off *.png`)"
    }
}
