/// Reads a PNG, a JPEG, a WebP, a BMP, a PGM/PPM or a TIFF, whichever the file's first bytes say it is.
public enum ImageFile {
    public static func read(path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try read(bytes: readImageFile(path: path, limits: limits), path: path, limits: limits)
    }

    /// `read` for an image about to be reduced to `minimumSide` or less a side: a large JPEG is
    /// decoded reduced (`JPEG.decode(_:path:limits:reducedTo:)`), other formats whole; with
    /// the size of the file's image, a JPEG's Exif orientation where it has one
    /// (`ExifOrientation`: the pixels come as stored, whatever it says), and whether the file
    /// has transparent pixels (`Transparency`: read as the colours stored under them).
    public static func read(path: String, limits: ImageLimits = .standard, reducedTo minimumSide: Int)
        throws(ImageError) -> (image: Image, width: Int, height: Int, orientation: Int?, transparent: Bool) {
        let bytes = try readImageFile(path: path, limits: limits)
        if JPEG.hasSignature(bytes) {
            let decoded = try JPEG.decode(bytes, path: path, limits: limits, reducedTo: minimumSide)
            return (decoded.image, decoded.width, decoded.height, ExifOrientation.of(jpeg: bytes), false)
        }
        let (image, transparent) = try readWithTransparency(bytes: bytes, path: path, limits: limits)
        return (image, image.width, image.height, nil, transparent)
    }

    /// Decodes bytes already in memory; `path` names them in errors.
    public static func read(bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try readWithTransparency(bytes: bytes, path: path, limits: limits).image
    }

    /// `read(bytes:path:limits:)`, and whether the file has transparent pixels.
    static func readWithTransparency(bytes: [UInt8], path: String, limits: ImageLimits)
        throws(ImageError) -> (image: Image, transparent: Bool) {
        if PNG.hasSignature(bytes) { return try PNG.decodeWithTransparency(bytes, path: path, limits: limits) }
        if JPEG.hasSignature(bytes) { return (try JPEG.decode(bytes, path: path, limits: limits), false) }
        if WebP.hasSignature(bytes) { return try WebP.decodeWithTransparency(bytes, path: path, limits: limits) }
        if BMP.hasSignature(bytes) { return try BMP.decodeWithTransparency(bytes, path: path, limits: limits) }
        if PNM.hasSignature(bytes) { return (try PNM.decode(bytes, path: path, limits: limits), false) }
        if TIFF.hasSignature(bytes) { return try TIFF.decodeWithTransparency(bytes, path: path, limits: limits) }
        throw bytes.isEmpty ? .unreadable(path: path, reason: "empty file") : .notAnImage(path: path)
    }
}
