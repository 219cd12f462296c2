import Dispatch
import Engine
import Imaging

/// A file left out of training, and why.
public struct RejectedFile: Sendable, Equatable, Codable {
    public let path: String
    /// The line a user reads: the path, then why (`ds/cat/x.png: not a PNG, JPEG, WebP, BMP, PGM/PPM or TIFF file`).
    public let reason: String

    /// Rejected files named one per line, up to this many, in logs and text; the rest are
    /// counted (a folder of 50,000 broken files is one problem, not 50,000 lines), and
    /// `dataset.json` and `synthd status --json` list them all.
    public static let listedInText = 20

    /// The reasons of the first `listedInText` files, and how many are left unnamed.
    public static func listed(_ files: [RejectedFile]) -> (reasons: [String], unnamed: Int) {
        (files.prefix(listedInText).map(\.reason), max(0, files.count - listedInText))
    }
}

/// A dataset in memory, ready for training: every readable image fitted to R x R (see
/// `Resampling`), stored as bytes (60,000 28x28 images take 60 MB at R = 32), with its class.
public final class TrainingSet: @unchecked Sendable {
    public let root: String
    /// The dataset's classes, after any classes of an existing model (the map only grows).
    public let classMap: ClassMap
    public let resolution: Int
    /// How images larger than R were made R x R, which generation undoes.
    public let fitting: Resampling.Fitting
    public let mode: Image.Mode
    /// The most common original size: what generated images are written at.
    public let imageWidth: Int, imageHeight: Int
    /// Image i is bytes [i * C*R*R, (i+1) * C*R*R), planar (C, R, R).
    public let pixels: [UInt8]
    public let labels: [Int32]
    public let rejected: [RejectedFile]
    public let ignored: [String]
    public let emptyClasses: [String]
    /// What about the dataset a user should hear: images outside any class folder, split
    /// folders read as classes (`LayoutAdvice`), photos stored turned (`ExifOrientation`).
    public let advice: [String]
    /// The images that hold colour (`Resampling.hasColour`), whatever the set's mode: a grey
    /// model's set reads them as grey, which a caller should hear (the dataset would be trained
    /// in colour by a new model).
    public internal(set) var colourImages = ColourImages()

    public struct ColourImages: Sendable, Equatable {
        public var count = 0
        /// The first of them in the order read (classes, then files, by name).
        public var first: String?
    }

    public var count: Int { labels.count }
    public var channels: Int { mode.channels }
    public var imageBytes: Int { channels * resolution * resolution }

    /// Images per class index.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classMap.count)
        for label in labels { counts[Int(label)] += 1 }
        return counts
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case folder(ImageFolder.Error)
        /// `advice`: what about the layout explains it (images outside any class folder).
        case noImages(path: String, rejected: [RejectedFile], advice: [String])
        /// More images than fit in memory at the model's resolution: `bytes` is the least
        /// loading them would take.
        case tooManyImages(path: String, images: Int, resolution: Int, bytes: Int, limit: MemoryLimit)
        /// `LoadControl.shouldStop` asked the load to stop before every file was read.
        case stopped(path: String)

        public var description: String {
            switch self {
            case .stopped(let path): return "\(path): reading the images stopped before it finished"
            case .folder(let error): return error.description
            case .noImages(let path, let rejected, let advice):
                // The first reasons in the message itself: it is all a user of `synthd train`
                // or of the daemon's status sees of a dataset that failed so.
                let first = rejected.prefix(3).map(\.reason).joined(separator: "; ")
                let more = rejected.count > 3 ? "; and \(rejected.count - 3) more" : ""
                return "\(path): no readable images in any class folder"
                    + (rejected.isEmpty ? "" : " (\(rejected.count) files rejected: \(first)\(more))")
                    + advice.map { "; " + $0 }.joined()
            case .tooManyImages(let path, let images, let resolution, let bytes, let limit):
                return "\(path): \(images) images need at least \(MemoryLimit.gibibytes(bytes)) of memory at \(resolution)x\(resolution), "
                    + "more than the \(limit) synthd may use; not loaded. Split the dataset into smaller ones"
                    + (resolution > 32 ? ", train it at 32x32 ([training] resolution = 32)" : "")
                    + ", or give synthd more memory (the unit's MemoryMax=; the daemon tries again when the dataset or its synthd.toml changes)"
            }
        }
    }

    init(root: String, classMap: ClassMap, resolution: Int, fitting: Resampling.Fitting, mode: Image.Mode,
         imageWidth: Int, imageHeight: Int, pixels: [UInt8], labels: [Int32], rejected: [RejectedFile], ignored: [String],
         emptyClasses: [String], advice: [String]) {
        self.root = root
        self.classMap = classMap
        self.resolution = resolution
        self.fitting = fitting
        self.mode = mode
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
        self.pixels = pixels
        self.labels = labels
        self.rejected = rejected
        self.ignored = ignored
        self.emptyClasses = emptyClasses
        self.advice = advice
    }

    /// Reads every image under `root`. Unreadable files are listed in `rejected`, never fatal.
    /// - Parameters:
    ///   - classMap: the classes a model already has; new classes are appended.
    ///   - fitting: how images larger than R become R x R (an existing model's, else the current rule).
    ///   - mode: the model's channel mode; nil decides from the data (any image with colour: RGB).
    ///   - confinement: symbolic links that lead out of this folder are not followed.
    ///   - adjust: applied to each file's image (given its path) as it is decoded, before it is
    ///     fitted: `synthd eval` moves synthd's displaced samples back where they were drawn.
    ///   - memory: what this process may use; a dataset that cannot fit in it is refused before
    ///     a file is read (`Error.tooManyImages`). nil: not checked.
    ///   - control: hears the progress, and may stop the load (`Error.stopped`).
    public static func load(_ root: String, classMap existing: ClassMap = ClassMap(), resolution: Int,
                            fitting: Resampling.Fitting = .wholeImage, mode requestedMode: Image.Mode? = nil, limits: ImageLimits = .standard,
                            confinedTo confinement: String? = nil, memory: MemoryLimit? = .current(),
                            adjust: (@Sendable (String, Image) -> Image)? = nil, control: LoadControl = LoadControl()) throws(Error) -> TrainingSet {
        let scan: ImageFolder.Scan
        do { scan = try ImageFolder.scan(root, confinedTo: confinement) } catch { throw .folder(error) }
        var classMap = existing
        var entries: [(path: String, label: Int32)] = []
        for name in scan.classNames {
            let label = Int32(classMap.insert(name))
            entries += scan.files[name]!.map { ($0, label) }
        }
        let needed = leastMemory(images: entries.count, resolution: resolution, channels: requestedMode?.channels ?? 1)
        if let memory, needed > memory.bytes {
            throw .tooManyImages(path: root, images: entries.count, resolution: resolution, bytes: needed, limit: memory)
        }

        // Decode and fit in parallel, keeping only the fitted R x R image (a few KB) of each
        // file: memory stays bounded by the dataset's count, not by its pixels. Each slot is
        // written by one thread. Chunks of `LoadControl.filesPerThread` files a thread, so that
        // the caller hears the progress and may stop between them (a chunk of 12-megapixel
        // photos takes a few seconds, one of small PNGs milliseconds).
        let r = resolution
        let decoded = UnsafeMutableBufferPointer<Result<FittedImage, ImageError>?>.allocate(capacity: entries.count)
        decoded.initialize(repeating: nil)
        defer { decoded.deinitialize(); decoded.deallocate() }
        let box = UncheckedSendable(decoded)
        let paths = entries.map(\.path)
        let parts = max(1, min(Parallel.maxThreads, entries.count / 64))
        let context = ComputeContext.current
        var start = 0
        while start < paths.count {
            if control.shouldStop() { throw .stopped(path: root) }
            let end = min(paths.count, start + parts * LoadControl.filesPerThread), first = start
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                context.run { for i in (first + (end - first) * part / parts)..<(first + (end - first) * (part + 1) / parts) {
                    box.value[i] = Result { () throws(ImageError) -> FittedImage in
                        // `adjust` works in the file's pixels: such a load decodes whole.
                        if let adjust {
                            let image = try ImageFile.read(path: paths[i], limits: limits)
                            return FittedImage(adjust(paths[i], image), width: image.width, height: image.height,
                                               resolution: r, fitting: fitting)
                        }
                        // A large JPEG decodes reduced (a 12-megapixel photo's 1/8 in a
                        // fraction of the time: 1,200 photos read in 3.5 s, not 50), to at least
                        // 4R a side, so that the area resize's output pixels span enough
                        // reduced ones to weigh the blocks their edges cut (JPEGTests).
                        let decoded = try ImageFile.read(path: paths[i], limits: limits, reducedTo: 4 * r)
                        return FittedImage(decoded, resolution: r, fitting: fitting)
                    }
                } }
            }
            start = end
            control.progress(start, paths.count)
        }

        var rejected = scan.skipped.map { RejectedFile(path: $0.path, reason: "\($0.path): \($0.reason)") }
        var images: [(FittedImage, Int32)] = []
        var turned: [(path: String, orientation: Int)] = []
        var transparent: [String] = []
        var deepGrey: [String] = []
        var colour = ColourImages()
        for (i, entry) in entries.enumerated() {
            switch decoded[i]! {
            case .success(let image):
                images.append((image, entry.label))
                if image.hasColour {
                    colour.count += 1
                    if colour.first == nil { colour.first = entry.path }
                }
                if let orientation = image.orientation, orientation != 1 { turned.append((entry.path, orientation)) }
                if image.transparent { transparent.append(entry.path) }
                if image.deepGrey { deepGrey.append(entry.path) }
            case .failure(let error): rejected.append(RejectedFile(path: entry.path, reason: error.description))
            }
        }
        rejected.sort { $0.path < $1.path }
        guard !images.isEmpty else { throw .noImages(path: root, rejected: rejected, advice: LayoutAdvice.of(scan)) }

        let mode = requestedMode ?? (colour.count > 0 ? .rgb : .grey)
        let (width, height) = outputSize(images.map { ($0.0.width, $0.0.height) })

        let plane = r * r
        var pixels = [UInt8](repeating: 0, count: images.count * mode.channels * plane)
        for (index, (image, _)) in images.enumerated() {
            let fitted = mode == .grey ? Resampling.grey(image.fitted) : Resampling.rgb(image.fitted)
            // Interleaved (HWC) to planar (CHW).
            let base = index * mode.channels * plane
            for p in 0..<plane { for c in 0..<mode.channels { pixels[base + c * plane + p] = fitted.pixels[p * mode.channels + c] } }
        }
        let set = TrainingSet(root: root, classMap: classMap, resolution: r, fitting: fitting, mode: mode,
                              imageWidth: width, imageHeight: height,
                              pixels: pixels, labels: images.map(\.1), rejected: rejected,
                              ignored: scan.ignored, emptyClasses: scan.emptyClasses,
                              advice: LayoutAdvice.of(scan) + [ExifOrientation.advice(turned: turned, of: images.count),
                                                               Transparency.advice(transparent: transparent, of: images.count),
                                                               DeepGrey.advice(deepGrey, of: images.count)].compactMap { $0 })
        set.colourImages = colour
        return set
    }

    /// What a caller of `load` hears while the files are read, and how it stops the reading:
    /// a dataset of 50,000 photos takes minutes to read, which `synthd status` showed as
    /// "queued" and a stop request waited out. Both are called on the loading thread.
    public struct LoadControl {
        /// Files read so far and in all, after each chunk.
        public var progress: (_ read: Int, _ total: Int) -> Void
        /// Asked before each chunk; true stops the load (`Error.stopped`).
        public var shouldStop: () -> Bool

        /// Files each thread reads between two calls.
        public static let filesPerThread = 32

        public init(progress: @escaping (_ read: Int, _ total: Int) -> Void = { _, _ in }, shouldStop: @escaping () -> Bool = { false }) {
            self.progress = progress
            self.shouldStop = shouldStop
        }
    }

    /// The size synthetic images of a dataset are written at: the most common size of its
    /// images when at least half of them have it (ties: the larger, then the wider), else the
    /// median width by the median height (the upper median of an even count). A dataset of
    /// photos of many sizes got whichever size a hash table met first among those seen most
    /// (a 1 x 1 image's, say), not even the same from one run to the next.
    public static func outputSize(_ sizes: [(width: Int, height: Int)]) -> (width: Int, height: Int) {
        precondition(!sizes.isEmpty, "no images")
        var counts: [Int: Int] = [:]
        for size in sizes { counts[size.width << 32 | size.height, default: 0] += 1 }
        // Most images first, then the larger area, then the wider (the key starts with the width).
        func rank(_ entry: (key: Int, value: Int)) -> (Int, Int, Int) { (entry.value, (entry.key >> 32) * (entry.key & 0xFFFF_FFFF), entry.key) }
        let (key, count) = counts.max { rank($0) < rank($1) }!
        if 2 * count >= sizes.count { return (key >> 32, key & 0xFFFF_FFFF) }
        let widths = sizes.map(\.width).sorted(), heights = sizes.map(\.height).sorted()
        return (widths[widths.count / 2], heights[heights.count / 2])
    }

    /// The least memory loading `images` files takes: while the last is fitted, every fitted
    /// image (R x R at the images' own channels, at least `channels`) and the packed set they are
    /// copied into are both held, with a slot per file; and the rest of the process (the
    /// models, Adam's moments, buffers: a few hundred MiB). An under-estimate on purpose: what
    /// it refuses cannot load.
    public static func leastMemory(images: Int, resolution: Int, channels: Int) -> Int {
        let perImage = 2 * resolution * resolution * channels + 128, rest = 256 << 20
        let (total, overflow) = images.multipliedReportingOverflow(by: perImage)
        return overflow || total > .max - rest ? .max : total + rest
    }

    /// The images `indices` (in that order) as a set of their own: same classes, size and
    /// mode; what loading rejected stays the whole dataset's.
    func selecting(_ indices: [Int]) -> TrainingSet {
        var chosen: [UInt8] = []
        chosen.reserveCapacity(indices.count * imageBytes)
        for i in indices { chosen += pixels[(i * imageBytes)..<((i + 1) * imageBytes)] }
        return TrainingSet(root: root, classMap: classMap, resolution: resolution, fitting: fitting, mode: mode, imageWidth: imageWidth,
                           imageHeight: imageHeight, pixels: chosen, labels: indices.map { labels[$0] }, rejected: rejected,
                           ignored: ignored, emptyClasses: emptyClasses, advice: advice)
    }

    /// Image `index` as it is trained on (R x R, the dataset's mode).
    public func square(_ index: Int) -> Image {
        var image = Image(width: resolution, height: resolution, mode: mode)
        let plane = resolution * resolution, base = index * imageBytes
        for p in 0..<plane { for c in 0..<channels { image.pixels[p * channels + c] = pixels[base + c * plane + p] } }
        return image
    }

    /// Copies images `indices` into `batch` (B, C, R, R) scaled to [-1, 1], and their labels.
    public func fill(_ batch: Tensor, labels out: inout [Int32], indices: some Collection<Int>) {
        precondition(batch.shape == [indices.count, channels, resolution, resolution], "batch shape \(batch.shape)")
        fillScaled(batch, labels: &out, pixels: pixels, allLabels: labels, imageBytes: imageBytes, indices: indices)
    }
}

/// A pixel byte as the networks see it: 0...255 to [-1, 1].
@inline(__always) func scaledPixel(_ value: UInt8) -> Float { Float(value) * (2.0 / 255.0) - 1 }

/// Copies images `indices` (bytes, `imageBytes` each) into `batch` scaled to [-1, 1], and
/// their labels into `out`.
func fillScaled(_ batch: Tensor, labels out: inout [Int32], pixels: [UInt8], allLabels: [Int32], imageBytes: Int,
                indices: some Collection<Int>) {
    out.removeAll(keepingCapacity: true)
    pixels.withUnsafeBufferPointer { source in
        for (row, index) in indices.enumerated() {
            let target = batch.data + row * imageBytes, from = source.baseAddress! + index * imageBytes
            for i in 0..<imageBytes { target[i] = scaledPixel(from[i]) }
            out.append(allLabels[index])
        }
    }
}

/// A decoded file reduced to what training keeps: the image fitted to R x R (grey when the
/// file has no colour), whether it had colour, and its original size.
struct FittedImage: Sendable {
    let fitted: Image
    let hasColour: Bool
    let width: Int
    let height: Int
    /// The file's Exif orientation (`ExifOrientation`), if it has one.
    let orientation: Int?
    /// Whether the file has transparent pixels (`Transparency`).
    let transparent: Bool
    /// Whether its samples are 16-bit grey (`DecodedFile.deepGrey`).
    let deepGrey: Bool

    /// `image` fitted; `width` x `height`: the file's size (larger where it was decoded reduced).
    /// A decoded file fitted, with what its decoder noted (the file's image is not kept).
    init(_ file: DecodedFile, resolution: Int, fitting: Resampling.Fitting) {
        self.init(file.image, width: file.width, height: file.height, resolution: resolution, fitting: fitting,
                  orientation: file.orientation, transparent: file.transparent, deepGrey: file.deepGrey)
    }

    init(_ image: Image, width: Int, height: Int, resolution: Int, fitting: Resampling.Fitting, orientation: Int? = nil,
         transparent: Bool = false, deepGrey: Bool = false) {
        hasColour = Resampling.hasColour(image)
        self.width = width
        self.height = height
        self.orientation = orientation
        self.transparent = transparent
        self.deepGrey = deepGrey
        fitted = Resampling.fit(hasColour ? Resampling.rgb(image) : Resampling.grey(image), resolution: resolution,
                                fitting: fitting)
    }
}
