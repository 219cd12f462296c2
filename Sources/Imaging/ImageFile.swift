/// Reads a PNG, a JPEG, a WebP, a BMP or a PGM/PPM, whichever the file's first bytes say it is.
public enum ImageFile {
    public static func read(path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        try read(bytes: readImageFile(path: path, limits: limits), path: path, limits: limits)
    }

    /// Decodes bytes already in memory; `path` names them in errors.
    public static func read(bytes: [UInt8], path: String, limits: ImageLimits = .standard) throws(ImageError) -> Image {
        if PNG.hasSignature(bytes) { return try PNG.decode(bytes, path: path, limits: limits) }
        if JPEG.hasSignature(bytes) { return try JPEG.decode(bytes, path: path, limits: limits) }
        if WebP.hasSignature(bytes) { return try WebP.decode(bytes, path: path, limits: limits) }
        if BMP.hasSignature(bytes) { return try BMP.decode(bytes, path: path, limits: limits) }
        if PNM.hasSignature(bytes) { return try PNM.decode(bytes, path: path, limits: limits) }
        throw bytes.isEmpty ? .unreadable(path: path, reason: "empty file") : .notAnImage(path: path)
    }
}
