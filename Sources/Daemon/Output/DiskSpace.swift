#if canImport(Glibc)
import Glibc
#endif

/// Free space on the output's file system, and what a generation will need of it: checked
/// before writing, so that a generation that cannot fit fails at once with the figures
/// instead of filling the disk and failing on the last files.
public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the file system that holds `path`, or
    /// would hold it: a folder not made yet is measured at its nearest existing parent.
    public static func freeBytes(at path: String) -> Int? {
        var info = statvfs(), folder = path
        while statvfs(folder, &info) != 0 {
            guard errno == ENOENT, let slash = folder.lastIndex(of: "/") else { return errno == ENOENT ? freeBytes(at: ".") : nil }
            folder = slash == folder.startIndex ? "/" : String(folder[..<slash])
        }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// An upper bound on what `images` PNGs of `width` x `height` x `channels` take: each file
    /// at most its raw pixels plus headers (small images are stored, larger ones deflated,
    /// which only shrinks them), rounded up to whole 4 KiB blocks, plus its manifest line.
    public static func estimate(images: Int, width: Int, height: Int, channels: Int) -> Int {
        let file = (width * height * channels + 1024 + 4095) / 4096 * 4096
        let (bytes, overflow) = images.multipliedReportingOverflow(by: file + 256)
        return overflow ? .max : bytes
    }

    /// Why a generation was not started.
    public struct Shortage: Error, Equatable, CustomStringConvertible {
        public let path: String
        public let neededBytes: Int
        public let freeBytes: Int
        /// What the writer can change to ask for less.
        public var remedy = "lower the counts in the dataset's synthd.toml"
        /// What needs the space.
        public var what = "writing these images"

        /// Says what the system says of ENOSPC, as a failed write would: the job runner holds
        /// it as a full disk of `path`'s file system (`DiskFull`: retried later, then held
        /// until space is freed), and a user reads the same words either way.
        public var description: String {
            "\(path): \(String(cString: strerror(ENOSPC))): \(what) needs up to \(megabytes(neededBytes)), "
                + "\(megabytes(freeBytes)) free; free some space (or \(remedy))"
        }
    }

    /// Throws `Shortage` when `neededBytes` (plus 1% and 1 MiB of headroom) is more than is free.
    public static func check(_ path: String, neededBytes: Int, remedy: String? = nil, what: String? = nil) throws(Shortage) {
        guard let free = freeBytes(at: path) else { return }  // unknown: the writes will tell
        let wanted = withHeadroom(neededBytes)
        guard wanted > free else { return }
        var shortage = Shortage(path: path, neededBytes: wanted, freeBytes: free)
        if let remedy { shortage.remedy = remedy }
        if let what { shortage.what = what }
        throw shortage
    }

    /// `neededBytes` plus 1% and 1 MiB (what the file system's metadata and rounding take).
    static func withHeadroom(_ neededBytes: Int) -> Int {
        let (wanted, overflow) = neededBytes.addingReportingOverflow(neededBytes / 100 + (1 << 20))
        return overflow ? .max : wanted
    }

    static func megabytes(_ bytes: Int) -> String {
        bytes >= 10 << 20 ? "\(bytes >> 20) MiB" : String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}

import Foundation
