/// A decoded image file, with what PyTorch's ImageFolder (Pillow) would make of it otherwise,
/// for the load's advice.
public struct DecodedFile: Sendable {
    public var image: Image
    /// The file's own size: larger than `image` where a JPEG was decoded reduced.
    public var width: Int
    public var height: Int
    /// A JPEG's Exif orientation, where it has one (`ExifOrientation`).
    public var orientation: Int?
    /// Some pixel is transparent (`Transparency`: read as the colour stored under it).
    public var transparent = false
    /// The samples are 16-bit grey (a microscope's PNG, TIFF or PGM). synthd scales them to 8
    /// bits; Pillow reads them as 32-bit integers and its `convert("RGB")` clips them at 255,
    /// so PyTorch's ImageFolder sees such an image nearly white.
    public var deepGrey = false

    public init(image: Image, width: Int? = nil, height: Int? = nil, orientation: Int? = nil, transparent: Bool = false,
                deepGrey: Bool = false) {
        self.image = image
        self.width = width ?? image.width
        self.height = height ?? image.height
        self.orientation = orientation
        self.transparent = transparent
        self.deepGrey = deepGrey
    }
}
