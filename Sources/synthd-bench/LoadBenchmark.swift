import ArgumentParser
import Foundation
import Imaging

/// Times what loading a dataset costs per image, on one thread: each file decoded whole and
/// fitted to R x R, against a large JPEG decoded reduced by DCT scaling (as `TrainingSet.load`
/// decodes it: to at least 4R a side) and fitted. Other formats decode whole either way, so a
/// folder of PNGs shows a ratio of 1.
struct LoadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Time decoding and fitting a dataset's images, whole and as loading decodes them (large JPEGs reduced).")

    @Argument(help: "A dataset folder (<class>/<images>), or a folder of images.") var folder: String
    @Option(help: "The model's resolution the images are fitted to.") var resolution = 32
    @Option(help: "Images timed (the first of the folder's, by name).") var images = 200
    @Option(help: "Timed rounds (the median is printed).") var rounds = 3

    func run() throws {
        let scan = try ImageFolder.scan(folder)
        var paths = scan.classNames.flatMap { scan.files[$0]! }
        if paths.isEmpty {
            paths = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
                .filter(ImageFolder.isImageName).map { folder + "/" + $0 }
        }
        paths = Array(paths.prefix(images))
        guard !paths.isEmpty else { throw ValidationError("no images in \(folder)") }
        let limits = ImageLimits(maxFileBytes: ImageLimits.standard.maxFileBytes, maxPixels: 1 << 30)
        let first = try ImageFile.read(path: paths[0], limits: limits)
        print("\(paths.count) images (the first \(first.width)x\(first.height)), fitted to \(resolution)x\(resolution), one thread")

        var whole: [Double] = [], reduced: [Double] = []
        for _ in 0..<rounds {
            var start = monotonicSeconds()
            for path in paths { _ = Resampling.fit(try ImageFile.read(path: path, limits: limits), resolution: resolution) }
            whole.append(Double(paths.count) / (monotonicSeconds() - start))
            start = monotonicSeconds()
            for path in paths {
                _ = Resampling.fit(try ImageFile.read(path: path, limits: limits, reducedTo: 4 * resolution).image, resolution: resolution)
            }
            reduced.append(Double(paths.count) / (monotonicSeconds() - start))
        }
        let median = { (rates: [Double]) in rates.sorted()[rates.count / 2] }
        print(String(format: "decoded whole:            %.1f images/s", median(whole)))
        print(String(format: "as loading decodes them:  %.1f images/s (%.1fx)", median(reduced), median(reduced) / median(whole)))
        print(String(format: "load whole=%.1f reduced=%.1f ratio=%.2f", median(whole), median(reduced), median(reduced) / median(whole)))
    }
}
