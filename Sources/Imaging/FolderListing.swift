import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder's entries as the kernel names them. A Linux name is any bytes but `/` and NUL;
/// synthd handles names as UTF-8 strings, and Foundation's listing quietly replaces bytes
/// that are not UTF-8 (a Latin-1 `café.png` from an old archive or a Windows share), leaving a
/// name that opens nothing: such a folder was passed over in silence, such an image rejected
/// as "gone while listed", and a dataset of them said to have "no images yet". Here they
/// come back apart, with their kind and their bytes escaped for messages, to be reported.
public struct FolderListing: Sendable, Equatable {
    /// An entry whose name is not UTF-8.
    public struct Undecodable: Sendable, Equatable {
        /// The name with each byte outside printable ASCII as `\xHH` (`caf\xE9.png`).
        public let escaped: String
        /// The name decoded with U+FFFD for what is not UTF-8 (its extension, say, is still read).
        public let lossy: String
        /// `S_IFDIR`, `S_IFREG`, ... of what it leads to (links followed); nil if nothing.
        public let kind: mode_t?
    }

    /// The entries whose names are UTF-8, sorted (`.` and `..` left out).
    public let names: [String]
    public let undecodable: [Undecodable]

    /// What to tell a user whose names are not UTF-8.
    public static let renameAdvice = "synthd reads names in UTF-8: rename it (`convmv -f latin1 -t utf8 -r --notest <folder>` "
        + "renames a Latin-1 tree)"

    /// Lists `path`; the error is the system's words for why it cannot be.
    public static func of(_ path: String) throws(FileListingError) -> FolderListing {
        guard let folder = opendir(path) else { throw FileListingError(path: path, reason: String(cString: strerror(errno))) }
        defer { closedir(folder) }
        let descriptor = dirfd(folder)
        var names: [String] = [], undecodable: [Undecodable] = []
        while let entry = readdir(folder) {
            let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw in Array(raw.prefix { $0 != 0 }) }
            if bytes == [0x2E] || bytes == [0x2E, 0x2E] { continue }
            if let name = String(validating: bytes, as: UTF8.self) {
                names.append(name)
                continue
            }
            var status = stat()
            let found = (bytes + [0]).withUnsafeBufferPointer { name in
                name.withMemoryRebound(to: CChar.self) { fstatat(descriptor, $0.baseAddress!, &status, 0) }
            }
            undecodable.append(Undecodable(escaped: escape(bytes), lossy: String(decoding: bytes, as: UTF8.self),
                                           kind: found == 0 ? status.st_mode & S_IFMT : nil))
        }
        return FolderListing(names: names.sorted(), undecodable: undecodable.sorted { $0.escaped < $1.escaped })
    }

    public static func escape(_ bytes: [UInt8]) -> String {
        bytes.map { $0 >= 0x20 && $0 < 0x7F && $0 != 0x5C ? String(UnicodeScalar($0)) : String(format: "\\x%02X", $0) }.joined()
    }
}

public struct FileListingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): cannot list: \(reason)" }
}
