import ArgumentParser
import Engine
import Foundation
import Imaging

/// Turns IDX files (MNIST, Fashion-MNIST) into an ImageFolder tree of PNGs.
struct ImportIDX: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-idx",
        abstract: "Write IDX image and label files as an ImageFolder tree (OUT/<class>/<n>.png).",
        discussion: """
        Fashion-MNIST (Debian package dataset-fashion-mnist) lives in /usr/share/datasets/fashion-mnist/; \
        its classes get readable names. Other IDX files get their label numbers as class names.
        """)

    static let fashionMNISTClasses = ["t-shirt", "trouser", "pullover", "dress", "coat",
                                      "sandal", "shirt", "sneaker", "bag", "ankle-boot"]

    @Option(help: "IDX image file (idx3-ubyte, optionally .gz).") var images: String
    @Option(help: "IDX label file (idx1-ubyte, optionally .gz).") var labels: String
    @Option(help: "Output folder; created if missing.") var out: String
    @Option(help: "At most this many images per class, chosen at random.") var perClass: Int?
    @Option(help: "Seed of the random choice.") var seed: UInt64 = 0
    @Option(help: "Comma-separated class names in label order (default: Fashion-MNIST's or the label numbers).")
    var classNames: String?

    func validate() throws {
        if let perClass, perClass < 1 { throw ValidationError("--per-class must be at least 1") }
    }

    func run() throws {
        let imageArray = try IDX.read(path: images)
        let labelArray = try IDX.read(path: labels)
        // What the files hold is a data error, not a usage one (no usage text after it).
        guard imageArray.dimensions.count == 3 else {
            throw IDX.Error.unexpected(path: images, reason: "expected image dimensions (count, rows, columns), found \(imageArray.dimensions)")
        }
        let (count, rows, columns) = (imageArray.dimensions[0], imageArray.dimensions[1], imageArray.dimensions[2])
        guard labelArray.dimensions == [count] else {
            throw IDX.Error.unexpected(path: labels, reason: "labels of dimensions \(labelArray.dimensions) for \(count) images in \(images)")
        }
        let maxLabel = Int(labelArray.bytes.max() ?? 0)
        let names: [String]
        if let classNames {
            names = classNames.split(separator: ",").map { String($0) }
        } else if images.lowercased().contains("fashion") && maxLabel < 10 {
            names = Self.fashionMNISTClasses
        } else {
            names = (0...maxLabel).map(String.init)
        }
        guard names.count > maxLabel else {
            throw ValidationError("\(names.count) class names for labels up to \(maxLabel)")
        }

        // A seeded shuffle, then the first N of each class.
        var order = Array(0..<count)
        var rng = RandomGenerator(seed: seed)
        if perClass != nil {
            rng.shuffle(&order)
        }
        var taken = [Int](repeating: 0, count: names.count)
        var written = 0
        for name in names { try createFolders(out + "/" + name) }
        for index in order {
            let label = Int(labelArray.bytes[index])
            if let perClass, taken[label] >= perClass { continue }
            taken[label] += 1
            let start = index * rows * columns
            let image = Image(width: columns, height: rows, mode: .grey,
                              pixels: Array(imageArray.bytes[start..<(start + rows * columns)]))
            try PNG.write(image, to: String(format: "%@/%@/%05d.png", out, names[label], index), durable: false)
            written += 1
        }
        syncFileSystem(containing: out)
        print("wrote \(counted(written, "image")) in \(counted(names.count, "class")) to \(out)")
    }
}
