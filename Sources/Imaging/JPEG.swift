import CTurboJPEG

/// JPEG decoding through libjpeg-turbo's TurboJPEG API (errors as return codes).
/// Greyscale JPEGs decode to `.grey`, all others to `.rgb` (CMYK ones by the naive formula
/// Pillow uses, so that a folder of them trains as it reads in PyTorch).
public enum JPEG {
    public static func hasSignature(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
    }

    public static func read(path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decode(readImageFile(path: path, limits: limits), path: path, limits: limits)
    }

    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try decode(bytes, path: path, limits: limits, reducedTo: nil).image
    }

    /// The scale of `width` x `height` that libjpeg-turbo's DCT scaling (1/2, 1/4, 1/8: the
    /// reduced inverse transforms it has fast code for) reduces the most while both sides
    /// stay at least `minimumSide`: as (numerator 1, denominator).
    static func reduction(width: Int, height: Int, minimumSide: Int) -> Int {
        var denominator = 1
        while denominator < 8, (min(width, height) + 2 * denominator - 1) / (2 * denominator) >= minimumSide { denominator *= 2 }
        return denominator
    }

    /// `decode`, reduced by DCT scaling to no less than `minimumSide` a side where that is
    /// given and the image is at least twice as large (`reduction`); with the size of the
    /// file's image (`DecodedFile`'s width and height). Each pixel of a 1/8 reduction is its
    /// 8 x 8 block's mean (the DC term), what an area resize averages anyway, and a
    /// 12-megapixel photo then decodes several times faster.
    public static func decode(_ bytes: [UInt8], path: String, limits: ImageLimits = .standard,
                              reducedTo minimumSide: Int?) throws(ImageError) -> DecodedFile {
        guard bytes.count <= limits.maxFileBytes else {
            throw .fileTooLarge(path: path, bytes: bytes.count, limit: limits.maxFileBytes)
        }
        guard hasSignature(bytes) else { throw .notAnImage(path: path) }
        guard let handle = tjInitDecompress() else { throw .unreadable(path: path, reason: "libjpeg-turbo did not start") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw .unreadable(path: path, reason: errorMessage(handle)) }
        // A baseline JPEG decoded reduced holds a few rows at a time, and the reduced image:
        // the limit is on that image, the file's own size up to `reducedPixelFactor` times it
        // (a 24- or 50-megapixel phone photo trains; the cap bounds the decoding time). A
        // progressive one holds every coefficient of the whole image: its own size counts.
        let reduces = minimumSide != nil && !isProgressive(bytes)
        let fullLimit = reduces ? limits.maxPixels.multipliedReportingOverflow(by: reducedPixelFactor).partialValue : limits.maxPixels
        guard width > 0, height > 0, Int(width) * Int(height) <= fullLimit else {
            throw .tooManyPixels(path: path, width: Int(width), height: Int(height), limit: fullLimit)
        }
        let cmyk = colorspace == TJCS_CMYK.rawValue || colorspace == TJCS_YCCK.rawValue
        let mode: Image.Mode = colorspace == TJCS_GRAY.rawValue ? .grey : .rgb
        let format = cmyk ? TJPF_CMYK : mode == .grey ? TJPF_GRAY : TJPF_RGB
        let denominator = minimumSide.map { reduction(width: Int(width), height: Int(height), minimumSide: $0) } ?? 1
        // TJSCALED: the ceiling of the side over the denominator.
        let scaledWidth = (Int(width) + denominator - 1) / denominator, scaledHeight = (Int(height) + denominator - 1) / denominator
        guard scaledWidth * scaledHeight <= limits.maxPixels else {
            throw .tooManyPixels(path: path, width: Int(width), height: Int(height), limit: limits.maxPixels)
        }
        var pixels = [UInt8](repeating: 0, count: scaledWidth * scaledHeight * (cmyk ? 4 : mode.channels))
        // Accurate DCT, and a truncated or damaged file is an error rather than grey rows.
        // LIMITSCANS refuses a progressive JPEG of more than 500 scans: a small file of
        // thousands of scans otherwise costs minutes of CPU (a decompression bomb).
        let flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS
        let status = bytes.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress,
                              Int32(scaledWidth), 0, Int32(scaledHeight), format.rawValue, flags)
            }
        }
        guard status == 0 else { throw .unreadable(path: path, reason: errorMessage(handle)) }
        if cmyk { pixels = rgb(fromCMYK: pixels, inverted: hasAdobeMarker(bytes)) }
        return DecodedFile(image: Image(width: scaledWidth, height: scaledHeight, mode: mode, pixels: pixels),
                           width: Int(width), height: Int(height))
    }

    /// RGB from CMYK as Pillow converts it (no colour management: R = (255 - C)(255 - K) / 255),
    /// the values read as stored, or as Photoshop and libjpeg write them with an Adobe marker:
    /// inverted (255 = no ink), as Pillow reads them.
    static func rgb(fromCMYK cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: cmyk.count / 4 * 3)
        let flip = inverted ? 0 : 255  // each value as the light it leaves: 255 - ink
        rgb.withUnsafeMutableBufferPointer { out in
            cmyk.withUnsafeBufferPointer { source in
                for p in 0..<(source.count / 4) {
                    let black = abs(flip - Int(source[4 * p + 3]))
                    for c in 0..<3 { out[3 * p + c] = UInt8((abs(flip - Int(source[4 * p + c])) * black + 127) / 255) }
                }
            }
        }
        return rgb
    }

    /// How many times `ImageLimits.maxPixels` a baseline JPEG decoded reduced may have (16: a
    /// limit of 16 megapixels takes photos up to 256).
    public static let reducedPixelFactor = 16

    /// Whether the file has an Adobe APP14 segment before its first scan: CMYK values are then
    /// stored inverted.
    static func hasAdobeMarker(_ bytes: [UInt8]) -> Bool {
        segmentBeforeTheFirstScan(in: bytes) { marker, start, length in
            marker == 0xEE && length >= 7 && start + 9 <= bytes.count && bytes[(start + 4)..<(start + 9)].elementsEqual("Adobe".utf8)
        }
    }

    /// Whether the frame is progressive (SOF2, or SOF6, SOF10, SOF14): libjpeg then keeps every
    /// coefficient of the image in memory, whatever size it decodes to. A file whose frame
    /// header is not found before the first scan counts as progressive.
    static func isProgressive(_ bytes: [UInt8]) -> Bool {
        var baseline = false
        let progressive = segmentBeforeTheFirstScan(in: bytes) { marker, _, _ in
            if [0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xC9, 0xCB, 0xCD, 0xCF].contains(marker) { baseline = true }
            return [0xC2, 0xC6, 0xCA, 0xCE].contains(marker)
        }
        return progressive || !baseline
    }

    /// Whether `matches` holds for a segment (its marker, where it starts, its length) among
    /// those before the first scan.
    static func segmentBeforeTheFirstScan(in bytes: [UInt8], _ matches: (_ marker: UInt8, _ start: Int, _ length: Int) -> Bool) -> Bool {
        var i = 2
        while i + 4 <= bytes.count, bytes[i] == 0xFF {
            let marker = bytes[i + 1]
            if marker == 0xDA || marker == 0xD9 { return false }  // the first scan, or the end
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if matches(marker, i, length) { return true }
            i += 2 + length
        }
        return false
    }

    static func errorMessage(_ handle: tjhandle) -> String {
        guard let message = tjGetErrorStr2(handle) else { return "unknown libjpeg-turbo error" }
        return String(cString: message)
    }
}
