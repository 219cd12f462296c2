import CWebP

/// WebP decoding through libwebp's simple API (errors as return codes): lossy and lossless;
/// of an animation its first frame, as Pillow and so PyTorch's ImageFolder read it (libwebp's
/// animation decoder); alpha dropped as for PNG (`Transparency`). Grey images decode to `.rgb` with
/// equal channels, which a dataset's colour decision reads as grey (`FittedImage.hasColour`).
public enum WebP {
    /// "RIFF", a size, "WEBP".
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 12 && bytes[0..<4].elementsEqual("RIFF".utf8) && bytes[8..<12].elementsEqual("WEBP".utf8)
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decodeFile(bytes, path: path, limits: limits).image
    }

    /// `decode`, with what Pillow would read otherwise (`DecodedFile`).
    public static func decodeFile(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard)
        throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        var features = WebPBitstreamFeatures()
        let status = bytes.withUnsafeBufferPointer { WebPGetFeatures($0.baseAddress, $0.count, &features) }
        guard status == VP8_STATUS_OK else { throw .unreadable(path: path, reason: "WebP: \(reason(status))") }
        let (width, height) = (Int(features.width), Int(features.height))
        guard width > 0, height > 0, width * height <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: width, height: height, limit: limits.maxPixels)
        }
        if features.has_animation != 0 {
            return try firstFrame(bytes, path: path, width: width, height: height, alpha: features.has_alpha != 0)
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
        guard alpha else { return DecodedFile(image: Image(width: width, height: height, mode: .rgb, pixels: samples)) }
        return Transparency.dropped(width: width, height: height, mode: .rgb, samplesWithAlpha: samples)
    }

    /// An animation's first frame, as Pillow reads it (through the same libwebp animation
    /// decoder): the canvas after that frame, its alpha dropped; where the frame leaves the
    /// canvas uncovered, the canvas's transparent black.
    static func firstFrame(_ bytes: [UInt8], path: String, width: Int, height: Int, alpha: Bool)
        throws(ImageError) -> DecodedFile {
        var options = WebPAnimDecoderOptions()
        guard WebPAnimDecoderOptionsInit(&options) != 0 else {
            throw .unreadable(path: path, reason: "WebP: libwebp's animation decoder is not the version synthd was built with")
        }
        options.color_mode = MODE_RGBA
        options.use_threads = 0
        let samples = bytes.withUnsafeBufferPointer { source -> [UInt8]? in
            var data = WebPData(bytes: source.baseAddress, size: source.count)
            guard let decoder = WebPAnimDecoderNew(&data, &options) else { return nil }
            defer { WebPAnimDecoderDelete(decoder) }
            // The frame is the decoder's canvas: its size, not the features', bounds the copy.
            var info = WebPAnimInfo()
            guard WebPAnimDecoderGetInfo(decoder, &info) != 0, Int(info.canvas_width) == width,
                  Int(info.canvas_height) == height else { return nil }
            var frame: UnsafeMutablePointer<UInt8>?
            var timestamp: Int32 = 0
            guard WebPAnimDecoderGetNext(decoder, &frame, &timestamp) != 0, let frame else { return nil }
            return Array(UnsafeBufferPointer(start: frame, count: width * height * 4))
        }
        guard let samples else { throw .unreadable(path: path, reason: "WebP: damaged or truncated animation") }
        let decoded = Transparency.dropped(width: width, height: height, mode: .rgb, samplesWithAlpha: samples)
        return DecodedFile(image: decoded.image, transparent: alpha && decoded.transparent)
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
