import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// What a dataset folder holds, in one comparable string: class names with the name, size and
/// modification time of every image. Training records the fingerprint of the files it read;
/// a settled dataset whose fingerprint differs has changed (images added, replaced or
/// removed, classes added) and is trained again. Touching nothing, or adding a `.ready` file
/// or a dataset `synthd.toml`, changes nothing.
public struct DatasetFingerprint: Equatable, Sendable {
    public let value: String
    public let images: Int
    public let classes: Int
    /// Image files per class, in the order of the class folders' names (a new model's class
    /// order): what a generation plan goes by before any image is decoded.
    public var classCounts: [Int] = []
    /// The newest modification time among the dataset's folders and images.
    public let lastModified: Date
    /// For a dataset without images, when it is not merely empty: what is wrong (images
    /// directly in the dataset folder, outside any class folder: `LayoutAdvice`; files it
    /// holds that are not read, a WebP image say), in a sentence for the status.
    public var whyNoImages: String? = nil

    /// Scans `folder` (links leading out of `confinement` are not followed).
    public static func of(_ folder: String, confinedTo confinement: String?) throws -> DatasetFingerprint {
        let scan = try ImageFolder.scan(folder, confinedTo: confinement)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bit
        func mix(_ text: String) {
            for byte in text.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
        }
        var newest = 0.0
        func modified(_ status: stat) -> Double { Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) * 1e-9 }
        var folderStatus = stat()
        if stat(folder, &folderStatus) == 0 { newest = modified(folderStatus) }
        for name in scan.classNames {
            mix("class \(name)\n")
            if stat(folder + "/" + name, &folderStatus) == 0 { newest = max(newest, modified(folderStatus)) }
            let classFolder = folder + "/" + name + "/"
            for path in scan.files[name]! {
                var status = stat()
                guard stat(path, &status) == 0 else { continue }  // vanished meanwhile: a new event follows
                newest = max(newest, modified(status))
                // The path below the class folder (`2019/a.png`; the scan's paths all start with
                // it): a file's name alone, as before folders below classes were read, for the
                // files directly in it.
                mix("\(path.dropFirst(classFolder.count)) \(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)\n")
            }
        }
        var fingerprint = DatasetFingerprint(value: String(hash, radix: 16) + "-\(scan.imageCount)", images: scan.imageCount,
                                             classes: scan.classNames.count, lastModified: Date(timeIntervalSince1970: newest))
        fingerprint.classCounts = scan.classNames.map { scan.files[$0]!.count }
        if scan.imageCount == 0 {
            if let loose = LayoutAdvice.looseImages(scan) { fingerprint.whyNoImages = "no images in class folders: " + loose }
            else if let first = scan.skipped.first {
                fingerprint.whyNoImages = "no images synthd can read: \(scan.skipped.count == 1 ? "1 file" : "\(scan.skipped.count) files") "
                    + "not read (\(first.path): \(first.reason)" + (scan.skipped.count > 1 ? "; ...)" : ")")
            }
        }
        return fingerprint
    }
}

extension DatasetFingerprint {
    /// What decides whether a failed dataset may be tried again: its files (this fingerprint)
    /// and its own `synthd.toml` (size and time), so that fixing either lifts the quarantine.
    public func changeKey(folder: String) -> String {
        value + " | synthd.toml " + Self.settingsKey(folder: folder)
    }

    /// The dataset's own `synthd.toml` in one comparable string: its size and modification
    /// time, or "none". Read before the file itself, a key that still matches later says the
    /// file read then is the file there now.
    public static func settingsKey(folder: String) -> String {
        var status = stat()
        return lstat(folder + "/synthd.toml", &status) == 0
            ? "\(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec)" : "none"
    }
}
