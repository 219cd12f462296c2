import Engine
import Foundation
import GAN
import Imaging
import Testing

/// Builds a dataset folder on disk for a test, and removes it afterwards.
final class DatasetFolder {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "synthd-dataset-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func addImages(_ className: String, count: Int, value: UInt8, size: Int = 28, mode: Image.Mode = .grey,
                   prefix: String = "") throws {
        try FileManager.default.createDirectory(atPath: root + "/" + className, withIntermediateDirectories: true)
        for i in 0..<count {
            var image = Image(width: size, height: size, mode: mode, fill: 0)
            for y in 8..<20 { for x in 8..<20 { for c in 0..<mode.channels { image[x, y, c] = value &+ UInt8(i) &+ UInt8(c * 40) } } }
            try PNG.write(image, to: "\(root)/\(className)/\(prefix)\(i).png")
        }
    }

    /// `count` images of `width` x `height` whose left quarter is `value` (colour: plus 40 a
    /// channel) and the rest 0: a
    /// rule that keeps only the centre square of a wide image loses the bright quarter.
    func addWideImages(_ className: String, count: Int, value: UInt8, width: Int, height: Int,
                       mode: Image.Mode = .grey) throws {
        try FileManager.default.createDirectory(atPath: root + "/" + className, withIntermediateDirectories: true)
        for i in 0..<count {
            var image = Image(width: width, height: height, mode: mode, fill: 0)
            for y in 0..<height { for x in 0..<(width / 4) { for c in 0..<mode.channels { image[x, y, c] = value &+ UInt8(i) &+ UInt8(c * 40) } } }
            try PNG.write(image, to: "\(root)/\(className)/\(i).png")
        }
    }

    func write(_ relativePath: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: root + "/" + relativePath))
    }
}

@Suite struct TrainingSetTests {
    @Test func loadsClassesSkipsJunkAndReportsBadFiles() throws {
        let folder = try DatasetFolder()
        try folder.addImages("boot", count: 3, value: 100)
        try folder.addImages("bag", count: 2, value: 50)
        try FileManager.default.createDirectory(atPath: folder.root + "/empty", withIntermediateDirectories: true)
        try folder.write("bag/.hidden.png", [1, 2, 3])
        try folder.write("bag/copying.png.part", [1, 2, 3])
        try folder.write("bag/notes.txt", Array("hello".utf8))
        try folder.write("boot/broken.png", [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0])
        try folder.write("README.md", Array("about".utf8))
        #expect(mkfifo(folder.root + "/bag/pipe.png", 0o644) == 0)
        #expect(symlink("gone.png", folder.root + "/boot/dangling.png") == 0)

        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.classMap.names == ["bag", "boot"])
        #expect(set.count == 5 && set.classCounts == [2, 3])
        #expect(set.mode == .grey && set.imageWidth == 28 && set.imageHeight == 28)
        #expect(set.rejected.map(\.path) == ["/bag/pipe.png", "/boot/broken.png", "/boot/dangling.png"].map { folder.root + $0 })
        // Each reason is the whole line a user reads (the CLI, the daemon's log, status): it
        // names the file, whether decoding or the folder scan rejected it.
        for file in set.rejected { #expect(file.reason.hasPrefix(file.path + ": "), "\(file.reason)") }
        #expect(set.emptyClasses == ["empty"])
        #expect(set.ignored.contains(folder.root + "/bag/notes.txt"))
        #expect(set.ignored.contains(folder.root + "/README.md"))

        let batch = Tensor(zeros: [2, 1, 32, 32])
        var labels: [Int32] = []
        set.fill(batch, labels: &labels, indices: [0, 4])
        #expect(labels == [0, 1])
        #expect(batch[0] == -1)  // padding: background 0 -> -1
        #expect(abs(batch[(8 + 2) * 32 + 8 + 2] - (Float(50) * 2 / 255 - 1)) < 1e-6)
    }

    /// The caller hears the files read after each chunk, up to all of them, and a stop asked
    /// between chunks ends the load with `stopped`; the same files load alike either way.
    @Test func aLoadReportsItsProgressAndStopsWhenAsked() throws {
        let data = try DatasetFolder()
        try data.addImages("a", count: 100, value: 40)
        try data.addImages("b", count: 100, value: 160)
        var reported: [Int] = []
        let set = try TrainingSet.load(data.root, resolution: 32, control: TrainingSet.LoadControl(progress: { read, total in
            #expect(total == 200)
            reported.append(read)
        }))
        #expect(reported.count >= 2 && reported.last == 200, "\(reported)")
        #expect(zip(reported, reported.dropFirst()).allSatisfy { $0 < $1 }, "\(reported)")
        #expect(try TrainingSet.load(data.root, resolution: 32).pixels == set.pixels)

        var asked = 0
        reported = []
        #expect(throws: TrainingSet.Error.self) {
            try TrainingSet.load(data.root, resolution: 32, control: TrainingSet.LoadControl(progress: { read, _ in reported.append(read) },
                                                                                             shouldStop: { asked += 1; return asked > 1 }))
        }
        #expect(reported.count == 1 && reported[0] < 200, "stopped after the first chunk: \(reported)")
        do {
            _ = try TrainingSet.load(data.root, resolution: 32, control: TrainingSet.LoadControl(shouldStop: { true }))
            Issue.record("not stopped")
        } catch {
            #expect(error.description == "\(data.root): reading the images stopped before it finished")
        }
    }

    @Test func classMapOnlyGrows() throws {
        let folder = try DatasetFolder()
        try folder.addImages("cat", count: 1, value: 10)
        try folder.addImages("ant", count: 1, value: 20)
        let existing = ClassMap(names: ["dog", "cat"])
        let set = try TrainingSet.load(folder.root, classMap: existing, resolution: 32)
        // "dog" keeps 0 and "cat" 1 although "dog" has no images now; "ant" is appended.
        #expect(set.classMap.names == ["dog", "cat", "ant"])
        #expect(Set(set.labels) == [1, 2])
    }

    @Test func colourIsDecidedFromTheData() throws {
        let folder = try DatasetFolder()
        try folder.addImages("a", count: 2, value: 10, mode: .rgb)
        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.mode == .rgb && set.channels == 3)
        let grey = try TrainingSet.load(folder.root, resolution: 32, mode: .grey)
        #expect(grey.mode == .grey)
    }

    @Test func aFolderWithoutReadableImagesIsAnError() throws {
        let folder = try DatasetFolder()
        try FileManager.default.createDirectory(atPath: folder.root + "/a", withIntermediateDirectories: true)
        try folder.write("a/x.png", [0])
        #expect(throws: TrainingSet.Error.self) { try TrainingSet.load(folder.root, resolution: 32) }
    }

    /// Images put directly in the dataset folder (no class folders: the commonest first
    /// mistake): the error says where they lie and what a dataset looks like.
    @Test func looseImagesAreNamedInTheError() throws {
        let folder = try DatasetFolder()
        try folder.addImages("boot", count: 2, value: 100)
        for i in 0..<2 { try FileManager.default.moveItem(atPath: "\(folder.root)/boot/\(i).png", toPath: "\(folder.root)/\(i).png") }
        let error = #expect(throws: TrainingSet.Error.self) { try TrainingSet.load(folder.root, resolution: 32) }
        #expect(error?.description == "\(folder.root): no readable images in any class folder; 2 images lie directly in \(folder.root), "
            + "outside any class folder, and are not read (0.png, ...): a dataset is \(folder.root)/<class>/<images>; "
            + "move each image into a folder named for its class")
    }

    /// A download's split folders are read as the classes (as PyTorch reads them), and the set
    /// and the report that status reads say so; a report written before the advice still reads.
    @Test func splitFoldersAreReadAsClassesAndSaid() throws {
        let folder = try DatasetFolder()
        for split in ["train", "val"] { for name in ["boot", "bag"] { try folder.addImages("\(split)/\(name)", count: 1, value: 80) } }
        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.classMap.names == ["train", "val"] && set.count == 4)
        #expect(set.advice.count == 1 && set.advice[0].hasPrefix("class folders train and val each hold folders of the same names (bag and boot)"))
        let report = DatasetReport(set)
        #expect(report.advice == set.advice)
        let old = try JSONSerialization.data(withJSONObject: ["root": "/r", "imagesPerClass": ["a": 1], "rejected": [],
                                                              "emptyClasses": [], "ignoredFiles": 0])
        #expect(try JSONDecoder().decode(DatasetReport.self, from: old).advice == nil)
        let plain = try DatasetFolder()
        try plain.addImages("boot", count: 1, value: 80)
        #expect(DatasetReport(try TrainingSet.load(plain.root, resolution: 32)).advice == nil)
    }

    /// A phone photo whose Exif orientation turns it when shown (Pillow's fixture, 6: a quarter
    /// clockwise) is read as stored, as PyTorch's ImageFolder reads it, and the load's advice,
    /// which the daemon logs and status shows, names it; a folder without one has no advice.
    @Test func photosStoredTurnedAreReadAsStoredAndSaid() throws {
        let folder = try DatasetFolder()
        try folder.addImages("cat", count: 3, value: 80, mode: .rgb)
        try FileManager.default.copyItem(atPath: Bundle.module.resourcePath! + "/Fixtures/exif-orientation-6.jpg",
                                         toPath: folder.root + "/cat/IMG_0001.jpg")
        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.count == 4 && set.imageWidth == 28 && set.advice.count == 1)
        #expect(set.advice.first?.hasPrefix("1 image of 4 is a JPEG whose Exif orientation tells viewers to turn or mirror it "
            + "(\(folder.root)/cat/IMG_0001.jpg: shown turned a quarter clockwise)") == true, "\(set.advice)")
        #expect(DatasetReport(set).advice == set.advice)
        // As stored: 16 x 8, placed in the middle of 32 x 32 (columns 8-23, rows 12-19), its
        // red growing from left to right (x * 15) and the same down each column. Turned, it
        // would stand 8 wide and 16 high (columns 12-19, rows 8-23), red growing downwards.
        let photo = try #require((0..<set.count).first { i in set.pixels[(i * set.imageBytes)..<((i + 1) * set.imageBytes)].contains { $0 > 200 } })
        func red(_ x: Int, _ y: Int) -> Int { Int(set.pixels[photo * set.imageBytes + y * 32 + x]) }
        #expect(red(23, 16) - red(8, 16) > 150 && abs(red(8, 19) - red(8, 12)) < 20, "\(red(8, 16)) \(red(23, 16)) \(red(8, 12)) \(red(8, 19))")
        #expect(red(16, 10) == 0 && red(16, 21) == 0 && red(5, 16) == 0, "outside the stored image's place")
        try FileManager.default.removeItem(atPath: folder.root + "/cat/IMG_0001.jpg")
        #expect(try TrainingSet.load(folder.root, resolution: 32).advice.isEmpty)
    }

    /// An image with transparent pixels (Pillow's fixture: a logo on a background stored white
    /// under alpha 0) is read as PyTorch reads it, the white kept, and the advice names it.
    @Test func transparentImagesAreReadAsStoredAndSaid() throws {
        let folder = try DatasetFolder()
        try folder.addImages("logo", count: 2, value: 80, mode: .rgb)
        try FileManager.default.copyItem(atPath: Bundle.module.resourcePath! + "/Fixtures/png-rgba-16x12.png",
                                         toPath: folder.root + "/logo/mark.png")
        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.count == 3 && set.advice.count == 1)
        #expect(set.advice.first?.hasPrefix("1 image of 3 has transparent pixels (\(folder.root)/logo/mark.png): ") == true, "\(set.advice)")
        #expect(DatasetReport(set).advice == set.advice)
        // The logo's corner, stored white under alpha 0, is white in the set (red plane).
        let logo = try #require((0..<set.count).first { i in set.pixels[(i * set.imageBytes)..<((i + 1) * set.imageBytes)].contains(255) })
        let plane = 32 * 32
        #expect(set.pixels[logo * set.imageBytes + 0 * plane + 10 * 32 + 8] == 255, "stored white, read white")
        try FileManager.default.removeItem(atPath: folder.root + "/logo/mark.png")
        #expect(try TrainingSet.load(folder.root, resolution: 32).advice.isEmpty)
    }

    /// A 16-bit grey image (a microscope's PGM) is scaled to 8 bits and the advice says that
    /// PyTorch's reading clips it (`DeepGrey`).
    @Test func sixteenBitGreyImagesAreSaid() throws {
        let folder = try DatasetFolder()
        try folder.addImages("cells", count: 2, value: 80)
        let header = Array("P5\n4 4\n65535\n".utf8)
        let samples = (0..<16).flatMap { i -> [UInt8] in [UInt8(i * 16), 0] }
        #expect(FileManager.default.createFile(atPath: folder.root + "/cells/deep.pgm", contents: Data(header + samples)))
        let set = try TrainingSet.load(folder.root, resolution: 32)
        #expect(set.count == 3 && set.advice.count == 1)
        #expect(set.advice.first?.hasPrefix("1 image of 3 is 16-bit grey (\(folder.root)/cells/deep.pgm): synthd scales it to 8 bits") == true,
                "\(set.advice)")
        try FileManager.default.removeItem(atPath: folder.root + "/cells/deep.pgm")
        #expect(try TrainingSet.load(folder.root, resolution: 32).advice.isEmpty)
    }

    /// The size synthetic images are written at: the common size where most images share one,
    /// else the median width by the median height; the same every time.
    @Test func outputSizeIsTheCommonSizeOrTheMedian() {
        #expect(TrainingSet.outputSize([(28, 28), (28, 28), (30, 20)]) == (28, 28))
        #expect(TrainingSet.outputSize([(28, 28), (40, 30)]) == (40, 30), "a tie: the larger")
        #expect(TrainingSet.outputSize([(30, 40), (40, 30)]) == (40, 30), "a tie of areas: the wider")
        #expect(TrainingSet.outputSize([(10000, 1), (1, 1), (1, 5000), (3, 3)]) == (3, 3), "widths 1,1,3,10000; heights 1,1,3,5000: the upper medians")
        #expect(TrainingSet.outputSize([(640, 480), (800, 600), (1024, 768), (4000, 3000), (500, 375)]) == (800, 600))
    }

    /// Images wider than the model are trained on whole (each side scaled on its own), so the
    /// bright left quarter of 64 x 32 images is the left quarter of the 32 x 32 training
    /// images; the centre-square rule of older models, asked for, still cuts it off.
    @Test func wideImagesAreTrainedWhole() throws {
        let data = try DatasetFolder()
        try data.addWideImages("a", count: 2, value: 200, width: 64, height: 32)
        let whole = try TrainingSet.load(data.root, resolution: 32, memory: nil)
        #expect(whole.fitting == .wholeImage && whole.imageWidth == 64 && whole.imageHeight == 32)
        for y in [0, 15, 31] {
            let row = Array(whole.pixels[(y * 32)..<(y * 32 + 32)])
            #expect(row[0..<8].allSatisfy { $0 == 200 } && row[8...].allSatisfy { $0 == 0 }, "row \(y): \(row)")
        }
        let square = try TrainingSet.load(data.root, resolution: 32, fitting: .centreSquare, memory: nil)
        #expect(square.pixels[0..<(32 * 32)].allSatisfy { $0 == 0 }, "the centre square of the first image has no bright pixel")
    }

    /// A dataset whose images cannot fit in the memory synthd may use is refused before a file
    /// is read, with the figures and what to do; one that fits loads.
    @Test func aDatasetTooLargeForMemoryIsRefusedBeforeLoading() throws {
        let folder = try DatasetFolder()
        try folder.addImages("a", count: 3, value: 10)
        try folder.write("a/broken.png", [0])  // never read: no rejection is reported
        let needed = 4 * (2 * 64 * 64 * 3 + 128) + (256 << 20)
        let small = MemoryLimit(bytes: 200 << 20, source: "cgroup memory.max of /test")
        #expect {
            _ = try TrainingSet.load(folder.root, resolution: 64, mode: .rgb, memory: small)
        } throws: { error in
            guard case .tooManyImages(let path, let images, _, let bytes, let limit)? = error as? TrainingSet.Error else { return false }
            let text = "\(error)"
            return path == folder.root && images == 4 && bytes == needed && limit == small
                && text.hasPrefix("\(folder.root): 4 images need at least 256 MiB of memory at 64x64, more than the 200 MiB (cgroup memory.max of /test)")
                && text.contains("[training] resolution = 32") && text.contains("MemoryMax=")
        }
        #expect(throws: TrainingSet.Error.self) {
            try TrainingSet.load(folder.root, resolution: 64, mode: .rgb, memory: MemoryLimit(bytes: needed - 1, source: "t"))
        }
        let loaded = try TrainingSet.load(folder.root, resolution: 64, mode: .rgb, memory: MemoryLimit(bytes: needed, source: "t"))
        #expect(loaded.count == 3 && loaded.rejected.count == 1)
        #expect(TrainingSet.leastMemory(images: .max / 2, resolution: 64, channels: 3) == .max, "saturates")
    }
}
