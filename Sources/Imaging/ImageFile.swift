/// Reads a PNG, a JPEG, a WebP, a BMP, a PGM/PPM or a TIFF, whichever the file's first bytes say it is.
public enum ImageFile {
    public static func read(path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try read(bytes: readImageFile(path: path, limits: limits), path: path, limits: limits)
    }

    /// `read` for an image about to be reduced to `minimumSide` or less a side: a large JPEG is
    /// decoded reduced (`JPEG.decode(_:path:limits:reducedTo:)`), other formats whole; with
    /// the size of the file's image, a JPEG's Exif orientation where it has one
    /// (`ExifOrientation`: the pixels come as stored, whatever it says), and what else Pillow
    /// would read otherwise (`DecodedFile`).
    public static func read(path: String, limits: ImageLimits = .standard, reducedTo minimumSide: Int) throws(ImageError) -> DecodedFile {
        let bytes = try readImageFile(path: path, limits: limits)
        if JPEG.hasSignature(bytes) {
            var decoded = try JPEG.decode(bytes, path: path, limits: limits, reducedTo: minimumSide)
            decoded.orientation = ExifOrientation.of(jpeg: bytes)
            return decoded
        }
        return try readFile(bytes: bytes, path: path, limits: limits)
    }

    /// Decodes bytes already in memory; `path` names them in errors.
    public static func read(bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try readFile(bytes: bytes, path: path, limits: limits).image
    }

    /// `read(bytes:path:limits:)`, with what Pillow would read otherwise (`DecodedFile`).
    static func readFile(bytes: [UInt8], path: String, limits: ImageLimits) throws(ImageError) -> DecodedFile {
        if PNG.hasSignature(bytes) { return try PNG.decodeFile(bytes, path: path, limits: limits) }
        if JPEG.hasSignature(bytes) { return DecodedFile(image: try JPEG.decode(bytes, path: path, limits: limits)) }
        if WebP.hasSignature(bytes) { return try WebP.decodeFile(bytes, path: path, limits: limits) }
        if BMP.hasSignature(bytes) { return try BMP.decodeFile(bytes, path: path, limits: limits) }
        if PNM.hasSignature(bytes) { return try PNM.decodeFile(bytes, path: path, limits: limits) }
        if TIFF.hasSignature(bytes) { return try TIFF.decodeFile(bytes, path: path, limits: limits) }
        throw bytes.isEmpty ? .unreadable(path: path, reason: "empty file") : .notAnImage(path: path)
    }
}
