import CWebP

/// WebP decoding through libwebp's simple API (errors as return codes): lossy and lossless,
/// still images; alpha dropped as for PNG (`Transparency`). Grey images decode to `.rgb` with
/// equal channels, which a dataset's colour decision reads as grey (`FittedImage.hasColour`).
public enum WebP {
    /// "RIFF", a size, "WEBP".
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 12 && bytes[0..<4].elementsEqual("RIFF".utf8) && bytes[8..<12].elementsEqual("WEBP".utf8)
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeWithTransparency(bytes, path: path, limits: limits).image
    }

    /// `decode`, and whether the file has transparent pixels (`Transparency`).
    public static func decodeWithTransparency(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard)
        throws(ImageError) -> (image: Image, transparent: Bool) {
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        var features = WebPBitstreamFeatures()
        let status = bytes.withUnsafeBufferPointer { WebPGetFeatures($0.baseAddress, $0.count, &features) }
        guard status == VP8_STATUS_OK else { throw .unreadable(path: path, reason: "WebP: \(reason(status))") }
        guard features.has_animation == 0 else {
            throw .unreadable(path: path, reason: "an animated WebP; synthd reads still images (save one frame as PNG)")
        }
        let (width, height) = (Int(features.width), Int(features.height))
        guard width > 0, height > 0, width * height <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: width, height: height, limit: limits.maxPixels)
        }
        let alpha = features.has_alpha != 0
        let stored = alpha ? 4 : 3
        var samples = [UInt8](repeating: 0, count: width * height * stored)
        let decoded = bytes.withUnsafeBufferPointer { source in
            samples.withUnsafeMutableBufferPointer { target in
                alpha
                    ? WebPDecodeRGBAInto(source.baseAddress, source.count, target.baseAddress, target.count, Int32(width * stored))
                    : WebPDecodeRGBInto(source.baseAddress, source.count, target.baseAddress, target.count, Int32(width * stored))
            }
        }
        guard decoded != nil else { throw .unreadable(path: path, reason: "WebP: damaged or truncated image data") }
        guard alpha else { return (Image(width: width, height: height, mode: .rgb, pixels: samples), false) }
        return Transparency.dropped(width: width, height: height, mode: .rgb, samplesWithAlpha: samples)
    }

    static func reason(_ status: VP8StatusCode) -> String {
        switch status {
        case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated file"
        case VP8_STATUS_BITSTREAM_ERROR: return "damaged header"
        case VP8_STATUS_UNSUPPORTED_FEATURE: return "a feature libwebp does not support"
        case VP8_STATUS_OUT_OF_MEMORY: return "out of memory"
        default: return "invalid file (status \(status.rawValue))"
        }
    }
}
