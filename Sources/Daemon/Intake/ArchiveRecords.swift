import Engine
import Foundation

/// What became of each archive dropped into the spool: `archives.json` in the state folder,
/// replaced atomically, read by `synthd status`. An archive is known by its name, size and
/// modification time, so the same file is unpacked once, and one copied again is looked at anew.
public struct ArchiveRecord: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable { case unpacking, unpacked, failed }

    public var size: UInt64
    /// The file's modification time, seconds since 1970 with nanoseconds.
    public var modified: Double
    public var state: State
    /// The dataset folder it was (or is being) unpacked into, by name under the spool.
    public var dataset: String
    public var files: Int = 0
    public var bytes: UInt64 = 0
    /// The files it will write in all, where the archive says so up front (a zip).
    public var expectedFiles: Int?
    /// While unpacking: how far into the archive file, 0-1, and since when (for the ETA).
    public var fraction: Double?
    public var startedAt: Date?
    /// Members not unpacked that the log lists (links, unsafe names, other formats).
    public var skipped: Int = 0
    /// A download's splits left out, the training split being the dataset (`val`, `test`).
    public var leftOutSplits: [String]?
    public var error: String?
    /// A failure that is not the archive's (a full disk) is tried again at this time.
    public var retryAt: Date?
    /// The dataset's folder was in the way: tried again once it is gone.
    public var waitsForFolder: Bool = false
    public var updatedAt: Date

    public init(size: UInt64, modified: Double, state: State, dataset: String, updatedAt: Date) {
        (self.size, self.modified, self.state, self.dataset, self.updatedAt) = (size, modified, state, dataset, updatedAt)
    }

    /// Whether this is the record of the archive file with this size and time (not of an
    /// earlier copy of it).
    public func isOf(size: UInt64, modified: Double) -> Bool { self.size == size && self.modified == modified }

    /// One line for `synthd status`. `daemonRuns` false: an unpacking under way was cut short.
    /// `folderGone`: the folder it was unpacked into has left the spool since.
    public func line(name: String, spool: String, daemonRuns: Bool = true, folderGone: Bool = false, now: Date = Date()) -> String {
        let folder = spool + "/" + dataset
        switch state {
        case .unpacking where !daemonRuns:
            return "\(name): interrupted while unpacking into \(folder); unpacked again when synthd run starts"
        case .unpacking:
            let of = expectedFiles.map { " of up to \($0)" } ?? ""
            return "\(name): unpacking into \(folder) (\(files) images\(of) so far, \(Self.megabytes(bytes))\(progress(now: now)))"
        case .unpacked:
            let skippedNote = (leftOutSplits.map { "; its training split only (\($0.joined(separator: ", ")) left out)" } ?? "")
                + (skipped > 0 ? "; \(skipped) members not unpacked (the log lists them)" : "")
            // Not unpacked again by itself: a folder removed on purpose stays removed.
            let goneNote = folderGone ? "; that folder has left the spool since (copy the archive in again to unpack it anew)" : ""
            return "\(name): unpacked into \(folder) (\(files) images, \(Self.megabytes(bytes))) at \(Self.time(updatedAt))\(skippedNote)\(goneNote)"
        case .failed:
            let retry = retryAt.map { ", tried again at \(Self.time($0))" } ?? (waitsForFolder ? "" : ", tried again when the archive changes")
            return "\(name): \(error ?? "not unpacked")\(retry)"
        }
    }

    /// ", 45%, ETA 1m20s" from how far into the file it is and for how long; nothing until
    /// both say enough (a second in, a percent done).
    func progress(now: Date) -> String {
        guard let fraction, fraction.isFinite, fraction >= 0.01 else { return "" }
        let percent = ", \(Int((min(fraction, 1) * 100).rounded(.down)))%"
        guard let startedAt, now.timeIntervalSince(startedAt) >= 1 else { return percent }
        let elapsed = now.timeIntervalSince(startedAt)
        return percent + ", ETA " + durationText(elapsed * (1 - min(fraction, 1)) / fraction)
    }

    static func megabytes(_ bytes: UInt64) -> String {
        let value = Double(bytes) / 1e6
        return value >= 100 ? "\(Int(value.rounded())) MB" : "\((value * 10).rounded() / 10) MB"
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// `archives.json`: archive name -> record.
public enum ArchiveRecords {
    public static let fileName = "archives.json"

    /// Unpacked archives `synthd status` lists, the latest first; the rest are counted.
    public static let unpackedListed = 5

    /// The lines of `synthd status`: every archive under way or failed, by name, then the
    /// latest unpacked ones (a spool where hundreds were dropped would bury the datasets), or
    /// every one (`all`: `synthd status --archives`).
    public static func summary(_ records: [String: ArchiveRecord], spool: String, daemonRuns: Bool, all: Bool = false) -> [String] {
        let open = records.filter { $0.value.state != .unpacked }.keys.sorted()
        let unpacked = records.filter { $0.value.state == .unpacked }.sorted { $0.value.updatedAt > $1.value.updatedAt }.map(\.key)
        let listed = all ? unpacked.count : unpackedListed
        var lines = (open + unpacked.prefix(listed)).map { name in
            let record = records[name]!
            let gone = record.state == .unpacked && !FileManager.default.fileExists(atPath: spool + "/" + record.dataset)
            return record.line(name: name, spool: spool, daemonRuns: daemonRuns, folderGone: gone)
        }
        if unpacked.count > listed { lines.append("... and \(unpacked.count - listed) more unpacked earlier (synthd status --archives lists them)") }
        return lines
    }

    /// The records under a state folder; empty when there are none or they cannot be read (an
    /// archive with no record is looked at again: at worst it is unpacked once more, where
    /// its folder is not already there).
    public static func read(stateFolder: String) -> [String: ArchiveRecord] {
        guard let bytes = try? readFile(path: stateFolder + "/" + fileName, maxBytes: 64 << 20) else { return [:] }
        return (try? RecordJSON.decode([String: ArchiveRecord].self, from: bytes)) ?? [:]
    }

    public static func write(_ records: [String: ArchiveRecord], stateFolder: String) throws {
        try writeFileAtomically(path: stateFolder + "/" + fileName, bytes: encode(records))
    }

    /// The records as `archives.json` holds them (and `synthd status --archives --json` prints).
    public static func encode(_ records: [String: ArchiveRecord]) throws -> [UInt8] {
        try RecordJSON.encode(records)
    }
}
