/// Why an archive dropped into the spool was not unpacked. Every case names the archive; the
/// entry, where one is at fault; and what to do.
public enum ArchiveError: Error, Equatable, CustomStringConvertible {
    /// The archive cannot be opened or read (permissions, an I/O error).
    case unreadable(archive: String, reason: String)
    /// Not a well-formed archive of its kind: cut short (still being copied?) or damaged.
    case malformed(archive: String, reason: String)
    /// An entry synthd cannot unpack (encrypted, a compression method it does not read).
    case unsupported(archive: String, entry: String, reason: String)
    /// An entry whose data does not check out (CRC, length, a damaged compressed stream).
    case damagedEntry(archive: String, entry: String, reason: String)
    /// Over a limit on what one archive may unpack to (bytes, files).
    case overLimit(archive: String, reason: String)
    /// Writing what was unpacked failed (a full disk: ENOSPC).
    case write(archive: String, path: String, reason: String, errno: Int32)
    /// Nothing in it is an image; `archives`: the archives it holds instead (a Kaggle
    /// competition's download holds `train.zip` and `test.zip`).
    case noImages(archive: String, archives: [String] = [])
    /// Asked to stop (the daemon is stopping).
    case stopped(archive: String)

    public var description: String {
        switch self {
        case .unreadable(let archive, let reason): return "\(archive): cannot read: \(reason)"
        case .malformed(let archive, let reason):
            return "\(archive): not unpacked: \(reason) (a copy cut short, or a damaged archive: copy it again)"
        case .unsupported(let archive, let entry, let reason):
            return "\(archive): not unpacked: \(entry): \(reason); unpack it by hand into the spool as a folder"
        case .damagedEntry(let archive, let entry, let reason):
            return "\(archive): not unpacked: \(entry) is damaged (\(reason)); copy the archive again"
        case .overLimit(let archive, let reason): return "\(archive): not unpacked: \(reason)"
        case .write(let archive, let path, let reason, _): return "\(archive): not unpacked: \(path): \(reason)"
        case .noImages(let archive, let inner) where !inner.isEmpty:
            let listed = inner.prefix(5).joined(separator: ", ") + (inner.count > 5 ? ", ..." : "")
            return "\(archive): not unpacked: it holds no images but archives (\(listed)); unpack it by hand and drop "
                + "the archive of the images into the spool"
        case .noImages(let archive, _):
            return "\(archive): not unpacked: it holds no images synthd reads (PNG, JPEG, WebP, BMP, PGM/PPM, TIFF)"
        case .stopped(let archive): return "\(archive): unpacking stopped; it starts again with the daemon"
        }
    }

    /// The archive's path, which the description begins with.
    public var archive: String {
        switch self {
        case .unreadable(let archive, _), .malformed(let archive, _), .unsupported(let archive, _, _), .damagedEntry(let archive, _, _),
             .overLimit(let archive, _), .write(let archive, _, _, _), .noImages(let archive, _), .stopped(let archive):
            return archive
        }
    }

    /// The description without the archive's path in front (for lines that name it already).
    public var reason: String { String(description.dropFirst(archive.count + 2)) }

    /// A failure that is the machine's, not the archive's: worth trying again as it is.
    public var isTransient: Bool {
        switch self {
        case .unreadable, .write, .stopped: return true
        case .overLimit(_, let reason): return reason.contains("free")
        default: return false
        }
    }
}
