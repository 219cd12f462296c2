import Engine
import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks the images of an archive into a folder of its own, safely: only images (and a
/// `synthd.toml`) are written, every one under the folder (a member named `../x` or
/// `/etc/x` cannot leave it, links are never made), within limits on bytes, files and the
/// file system's free space, each member checked as it is read. A failure leaves a partial
/// folder that the caller removes; nothing else is touched.
public struct Unpacker {
    public struct Limits: Sendable {
        /// The most bytes the images may take once unpacked (a zip bomb stops here).
        public var maxBytes: UInt64
        /// The most files.
        public var maxFiles: Int
        /// Free space to leave on the file system (the outputs and checkpoints need some).
        public var reserveBytes: UInt64

        public init(maxBytes: UInt64, maxFiles: Int = 2_000_000, reserveBytes: UInt64 = 256 << 20) {
            (self.maxBytes, self.maxFiles, self.reserveBytes) = (maxBytes, maxFiles, reserveBytes)
        }
    }

    /// How far an unpacking has come.
    public struct Progress: Sendable, Equatable {
        public var files = 0
        public var bytes: UInt64 = 0
        /// The files it will write in all, where the archive says so up front (a zip's directory).
        public var expectedFiles: Int?
        /// How far into the archive file, 0-1 (`ArchiveReader.fractionRead`).
        public var fraction: Double?

        public init() {}
    }

    /// What was unpacked.
    public struct Result: Sendable, Equatable {
        /// The folder that holds the class folders: the destination itself, or a folder in it
        /// that the archive wrapped them in (`flowers.zip` holding `flowers/daisy/...`).
        public let root: String
        public let files: Int
        public let bytes: UInt64
        /// Members not unpacked that a user should hear about (links, unsafe names), with why.
        public let skipped: [ImageFolder.Skipped]
        /// Members passed over quietly: not images, hidden, `__MACOSX`.
        public let ignored: Int
        /// Splits of a download left out (`val`, `test`: `Unpacker.chooseTrainingSplit`), each
        /// with the images it held; empty when the archive is not split.
        public var leftOutSplits: [(name: String, files: Int)] = []

        public static func == (a: Result, b: Result) -> Bool {
            (a.root, a.files, a.bytes, a.skipped, a.ignored) == (b.root, b.files, b.bytes, b.skipped, b.ignored)
                && a.leftOutSplits.map(\.name) == b.leftOutSplits.map(\.name) && a.leftOutSplits.map(\.files) == b.leftOutSplits.map(\.files)
        }
    }

    public let limits: Limits
    /// Folders and files writable by their group too, whatever the process's umask: in a
    /// spool that a group shares (the service's is setgid `synthd`, mode 2775, and synthd runs
    /// with umask 022), the user who dropped the archive can then remove or rename what was
    /// unpacked from it, as the advice on a folder in the way tells them to.
    public let groupWritable: Bool

    public init(limits: Limits, groupWritable: Bool = false) {
        self.limits = limits
        self.groupWritable = groupWritable
    }

    /// Unpacks into `destination`, which must not exist yet (it is made here). `progress` is
    /// called now and then; `shouldStop` is asked between chunks.
    public func unpack(_ reader: any ArchiveReader, into destination: String,
                       progress: (Progress) -> Void = { _ in }, shouldStop: () -> Bool = { false }) throws(ArchiveError) -> Result {
        let archive = reader.path
        try makeFolder(destination, archive: archive)
        var state = Progress()
        if let zip = reader as? ZipReader { state.expectedFiles = zip.memberCount }
        if let sevenZip = reader as? SevenZipReader { state.expectedFiles = sevenZip.memberCount }
        var skipped: [ImageFolder.Skipped] = []
        var ignored = 0
        var innerArchives: [String] = []
        var made: Set<String> = [destination]
        var lastReport = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while let entry = try reader.nextEntry() {
            if shouldStop() { throw .stopped(archive: archive) }
            let components = entry.name.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
            guard let last = components.last else { ignored += 1; continue }
            if components.contains("..") {
                skipped.append(.init(path: entry.name, reason: "a name that leads out of the archive's folder ('..'); not unpacked"))
                continue
            }
            // Hidden files, `__MACOSX` resource forks, partial names: never data.
            guard components.allSatisfy(ImageFolder.isVisible) else { ignored += 1; continue }
            switch entry.kind {
            case .folder: continue  // made when an image is written into it: no empty classes
            case .link:
                skipped.append(.init(path: entry.name, reason: "a link; not unpacked (synthd makes no links)"))
                continue
            case .special:
                skipped.append(.init(path: entry.name, reason: "a device or FIFO; not unpacked"))
                continue
            case .file: break
            }
            guard ImageFolder.isImageName(last) || last == "synthd.toml" else {
                if let reason = ImageFolder.unreadFormat(last) { skipped.append(.init(path: entry.name, reason: reason)) } else { ignored += 1 }
                if ArchiveFormat.of(name: last) != nil || ArchiveFormat.unreadReason(name: last) != nil { innerArchives.append(entry.name) }
                continue
            }
            if let problem = components.lazy.compactMap(SafeName.problem).first {
                skipped.append(.init(path: entry.name, reason: "not unpacked: \(problem)"))
                continue
            }
            guard components.count <= ImageFolder.maxDepth + 3 else {
                skipped.append(.init(path: entry.name, reason: "more than \(ImageFolder.maxDepth + 3) folders deep; not unpacked"))
                continue
            }
            guard destination.utf8.count + components.reduce(0, { $0 + 1 + $1.utf8.count }) < Int(PATH_MAX) else {
                skipped.append(.init(path: entry.name, reason: "a path too long for the file system (\(PATH_MAX) bytes); not unpacked"))
                continue
            }
            guard state.files < limits.maxFiles else {
                throw .overLimit(archive: archive, reason: "it holds more than \(limits.maxFiles) images")
            }
            guard state.bytes + entry.size <= limits.maxBytes else {
                throw .overLimit(archive: archive, reason: "its images take more than \(Self.gigabytes(limits.maxBytes)) unpacked "
                    + "(`[watch] max_unpacked_gigabytes`); unpack it by hand, or raise the limit")
            }
            var folder = destination
            for component in components.dropLast() {
                folder += "/" + component
                if made.insert(folder).inserted { try makeFolder(folder, archive: archive, existingIsFine: true) }
            }
            let path = folder + "/" + last
            try checkFreeSpace(at: destination, for: entry.size, archive: archive)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else {
                if errno == EEXIST {
                    skipped.append(.init(path: entry.name, reason: "a second member of this name; the first one kept"))
                    continue
                }
                if errno == ENAMETOOLONG {
                    skipped.append(.init(path: entry.name, reason: "a path too long for the file system (\(PATH_MAX) bytes); not unpacked"))
                    continue
                }
                throw .write(archive: archive, path: path, reason: String(cString: strerror(errno)), errno: errno)
            }
            if groupWritable { fchmod(fd, 0o664) }
            var written: UInt64 = 0
            do throws(ArchiveError) {
                let data = try reader.contents()
                while true {
                    let n = try buffer.read(from: data)
                    if n == 0 { break }
                    guard state.bytes + written + UInt64(n) <= limits.maxBytes else {
                        throw .overLimit(archive: archive, reason: "its images take more than \(Self.gigabytes(limits.maxBytes)) unpacked")
                    }
                    try write(fd, buffer, count: n, path: path, archive: archive)
                    written += UInt64(n)
                    if shouldStop() { throw .stopped(archive: archive) }
                }
            } catch {
                close(fd)
                throw error
            }
            guard close(fd) == 0 else { throw .write(archive: archive, path: path, reason: String(cString: strerror(errno)), errno: errno) }
            state.files += 1
            state.bytes += written
            if lastReport.duration(to: .now) > .milliseconds(250) {
                state.fraction = reader.fractionRead
                progress(state)
                lastReport = .now
            }
        }
        state.fraction = 1
        progress(state)
        guard state.files > 0 else { throw .noImages(archive: archive, archives: innerArchives) }
        let root = Self.datasetRoot(in: destination)
        guard let splits = Self.chooseTrainingSplit(in: root) else {
            return Result(root: root, files: state.files, bytes: state.bytes, skipped: skipped, ignored: ignored)
        }
        let kept = Self.count(under: splits.training)
        var result = Result(root: Self.datasetRoot(in: splits.training), files: kept.files, bytes: kept.bytes, skipped: skipped, ignored: ignored)
        result.leftOutSplits = splits.others.map { ($0, Self.count(under: root + "/" + $0).files) }
        return result
    }

    /// A download split into a training set and others (`train/cat`, `val/cat`, `test/...`):
    /// the training split is the dataset. A model that saw the validation or test images
    /// would leak them into the synthetic images, and so into the evaluation of a classifier
    /// trained on those. Read as an ImageFolder, the splits would be the classes (`train`
    /// against `val`). Only when every folder at the root is named as a split, one of them
    /// `train` or `training`, and that one holds class folders and no image of its own; the
    /// others may hold anything (an unlabelled `test` of loose images).
    static func chooseTrainingSplit(in root: String) -> (training: String, others: [String])? {
        guard let listing = try? FolderListing.of(root), listing.names.count >= 2,
              listing.names.allSatisfy({ LayoutAdvice.splitNames.contains($0.lowercased()) && fileKind(root + "/" + $0) == S_IFDIR }),
              let training = listing.names.first(where: { ["train", "training"].contains($0.lowercased()) }),
              let inside = try? FolderListing.of(root + "/" + training),
              inside.names.contains(where: { fileKind(root + "/" + training + "/" + $0) == S_IFDIR }),
              !inside.names.contains(where: { ImageFolder.isImageName($0) }) else { return nil }
        return (root + "/" + training, listing.names.filter { $0 != training }.sorted())
    }

    /// The regular files under `folder` and their bytes (links not followed).
    static func count(under folder: String) -> (files: Int, bytes: UInt64) {
        var total = (files: 0, bytes: UInt64(0))
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return total }
        for case let relative as String in walker {
            var status = stat()
            guard lstat(folder + "/" + relative, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            total.files += 1
            total.bytes += UInt64(status.st_size)
        }
        return total
    }

    /// The folder of class folders: from `folder` down through folders that hold one folder
    /// and nothing else, while that one folder is not itself a class (holds no image of its
    /// own). `flowers/daisy/1.jpg` gives `flowers`; `daisy/1.jpg` and `cats/1.jpg` alone give
    /// the destination (one class, as PyTorch's ImageFolder would read it).
    static func datasetRoot(in folder: String) -> String {
        var root = folder
        while let listing = try? FolderListing.of(root), listing.names.count == 1 {
            let only = root + "/" + listing.names[0]
            guard Self.fileKind(only) == S_IFDIR, let inner = try? FolderListing.of(only),
                  !inner.names.contains(where: { ImageFolder.isImageName($0) && Self.fileKind(only + "/" + $0) == S_IFREG }) else { break }
            root = only
        }
        return root
    }

    /// `S_IFDIR`, `S_IFREG`, ... of what `path` is (links not followed); nil when nothing is there.
    static func fileKind(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    private func makeFolder(_ path: String, archive: String, existingIsFine: Bool = false) throws(ArchiveError) {
        if mkdir(path, 0o755) == 0 {
            // chmod, unlike mkdir, is not cut by the umask. The setgid bit keeps the spool's group.
            if groupWritable { chmod(path, 0o2775) }
            return
        }
        guard existingIsFine && errno == EEXIST && Self.fileKind(path) == S_IFDIR else {
            throw .write(archive: archive, path: path, reason: String(cString: strerror(errno)), errno: errno)
        }
    }

    private func write(_ fd: Int32, _ buffer: [UInt8], count: Int, path: String, archive: String) throws(ArchiveError) {
        var done = 0
        let failure: Int32? = buffer.withUnsafeBytes { raw in
            while done < count {
                let n = Glibc.write(fd, raw.baseAddress! + done, count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return nil
        }
        if let failure { throw .write(archive: archive, path: path, reason: String(cString: strerror(failure)), errno: failure) }
    }

    private func checkFreeSpace(at path: String, for bytes: UInt64, archive: String) throws(ArchiveError) {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return }
        let free = UInt64(info.f_bavail) * UInt64(info.f_frsize)
        guard free >= bytes + limits.reserveBytes else {
            throw .overLimit(archive: archive, reason: "the spool's file system has \(Self.gigabytes(free)) free, and synthd "
                + "leaves \(Self.gigabytes(limits.reserveBytes)) free for models and outputs; free some space (it is tried again)")
        }
    }

    static func gigabytes(_ bytes: UInt64) -> String {
        let value = Double(bytes) / Double(1 << 30)
        return value >= 10 ? "\(Int(value.rounded())) GiB" : "\((value * 10).rounded() / 10) GiB"
    }
}
