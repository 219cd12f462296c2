import Engine
import Foundation

/// A small record the daemon keeps in its state folder for `synthd status` (`SpaceHold`,
/// `SpoolAbsence`): JSON with ISO 8601 dates, written atomically, removed when there is none.
enum StateRecordFile {
    /// The record at `path`; nil when there is none or it cannot be read.
    static func read<Record: Decodable>(_ type: Record.Type, at path: String) -> Record? {
        guard let bytes = FileManager.default.contents(atPath: path) else { return nil }
        return try? RecordJSON.decode(type, from: bytes)
    }

    /// Writes `record` at `path` (nil: removes it). Best effort, not flushed: the log says the
    /// same, and a record lost with the machine is one of a daemon that is gone.
    static func write<Record: Encodable>(_ record: Record?, at path: String) {
        guard let record else { unlink(path); return }
        guard let bytes = try? RecordJSON.encode(record) else { return }
        try? writeFileAtomically(path: path, bytes: bytes, durable: false)
    }
}

/// A record the daemon keeps in its state folder for `synthd status` (`SpoolAbsence`,
/// `ReloadFailure`; `SpaceHold` reads its own, which expires): its file's name and what status says of it; where it
/// lies, how it is read and written, the extension's.
public protocol StatusRecord: Codable {
    static var fileName: String { get }
    var statusText: String { get }
}

extension StatusRecord {
    static func path(stateFolder: String) -> String { stateFolder + "/" + fileName }

    /// The record the daemon of `stateFolder` keeps now; nil when there is none (or it is unreadable).
    static func current(stateFolder: String) -> Self? { StateRecordFile.read(Self.self, at: path(stateFolder: stateFolder)) }

    /// What `synthd status` says first while the record stands; nil while it does not.
    public static func statusLine(stateFolder: String) -> String? { current(stateFolder: stateFolder)?.statusText }

    /// Records it for `synthd status` (nil: removes it). Best effort: the log says the same.
    static func record(_ record: Self?, stateFolder: String) { StateRecordFile.write(record, at: path(stateFolder: stateFolder)) }
}
