/// 16-bit grey images (microscopes, scanners, medical and astronomical cameras). synthd scales
/// their samples to 8 bits, as image tools do. Pillow reads them as 32-bit integers, and its
/// `convert("RGB")`, which PyTorch's ImageFolder applies to every image, clips them at 255:
/// every sample from 255/65535 up reads white, so the user's classifier would see nearly white
/// images where synthd's model sees (and its outputs show) the picture. synthd keeps its
/// reading, the only one of the two that shows the picture, and says so (`advice`): converting
/// the files to 8 bits makes both read them alike.
public enum DeepGrey {
    /// What a user should hear about a dataset of `total` images of which the files `paths`
    /// are 16-bit grey: nil when none are.
    public static func advice(_ paths: [String], of total: Int) -> String? {
        guard let first = paths.min() else { return nil }
        let (count, them) = someImages(paths.count, of: total, "is", "are")
        return "\(count) 16-bit grey (\(first)): synthd scales \(them) to 8 bits, but PyTorch's ImageFolder (Pillow's "
            + "convert(\"RGB\")) clips 16-bit samples at 255, so your classifier would see \(them) nearly white while synthd's "
            + "outputs show the picture. Convert \(them) to 8 bits so that both read \(them) alike (ImageMagick: "
            + "`mogrify -depth 8 *.png`, which scales)"
    }
}
