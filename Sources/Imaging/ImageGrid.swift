/// A grid of equally sized images with 2-pixel mid-grey gaps, row by row; with `rowLabels`, a
/// white margin on the left names each row (a class's samples are a row of `samples.png`).
public enum ImageGrid {
    /// Labels longer than this are cut (with ".."): a 16-character margin is 95 pixels.
    public static let labelCharacters = 16

    public static func compose(_ images: [Image], columns: Int, gap: Int = 2, rowLabels: [String] = []) -> Image {
        precondition(!images.isEmpty, "no images for a grid")
        let w = images[0].width, h = images[0].height, mode = images[0].mode, c = mode.channels
        let rows = (images.count + columns - 1) / columns
        let labels = rowLabels.prefix(rows).map { BitmapFont.fitted($0, characters: labelCharacters) }
        let margin = labelMargin(labels)
        let width = margin + columns * w + (columns + 1) * gap, height = rows * h + (rows + 1) * gap
        var grid = Image(width: width, height: height, mode: mode, fill: 128)
        for (index, image) in images.enumerated() {
            grid.paste(image, x: margin + gap + (index % columns) * (w + gap), y: gap + (index / columns) * (h + gap))
        }
        guard margin > 0 else { return grid }
        for y in 0..<height { for x in 0..<margin { for k in 0..<c { grid.pixels[(y * width + x) * c + k] = 255 } } }
        for (row, label) in labels.enumerated() {
            let centre = gap + row * (h + gap) + h / 2
            BitmapFont.draw(label, into: &grid, x: 4, y: centre - BitmapFont.glyphHeight / 2, colour: (0, 0, 0))
        }
        return grid
    }

    /// Width of the white margin that names the rows: nothing without labels.
    public static func labelMargin(_ rowLabels: [String]) -> Int {
        rowLabels.isEmpty ? 0 : (rowLabels.map { BitmapFont.width(of: BitmapFont.fitted($0, characters: labelCharacters)) }.max() ?? 0) + 8
    }

    /// Height of the band `titled` adds above each picture.
    public static let titleBand = BitmapFont.glyphHeight + 6

    /// Pictures of one height side by side, `gap` apart on white, each under its title (the
    /// real images of a class beside its samples), which starts `indent` pixels in (over a
    /// grid's tiles rather than its labels).
    public static func titled(_ pictures: [(title: String, picture: Image, indent: Int)], gap: Int = 6) -> Image {
        precondition(!pictures.isEmpty, "no pictures to title")
        let mode = pictures[0].picture.mode
        let width = pictures.map(\.picture.width).reduce(0, +) + gap * (pictures.count - 1)
        let height = titleBand + pictures.map(\.picture.height).max()!
        var sheet = Image(width: width, height: height, mode: mode, fill: 255)
        var x0 = 0
        for (title, picture, indent) in pictures {
            BitmapFont.draw(title, into: &sheet, x: x0 + indent + 2, y: 3, colour: (60, 60, 60))
            sheet.paste(picture, x: x0, y: titleBand)
            x0 += picture.width + gap
        }
        return sheet
    }

    /// Pictures side by side, `columns` to a band and bands one below the other, each in a
    /// cell the size of the largest, on white: blocks of a samples grid (the last block of
    /// classes has fewer rows). All of one mode.
    public static func tile(_ pictures: [Image], columns: Int, gap: Int = 12) -> Image {
        precondition(!pictures.isEmpty, "no pictures to tile")
        let mode = pictures[0].mode
        let cellWidth = pictures.map(\.width).max()!, cellHeight = pictures.map(\.height).max()!
        let across = min(columns, pictures.count), bands = (pictures.count + columns - 1) / columns
        let width = across * cellWidth + (across - 1) * gap, height = bands * cellHeight + (bands - 1) * gap
        var sheet = Image(width: width, height: height, mode: mode, fill: 255)
        for (index, picture) in pictures.enumerated() {
            sheet.paste(picture, x: (index % columns) * (cellWidth + gap), y: (index / columns) * (cellHeight + gap))
        }
        return sheet
    }
}
