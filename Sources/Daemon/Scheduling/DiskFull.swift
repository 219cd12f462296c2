import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Recognises a full disk (or quota) in the errors that file writes throw.
public enum DiskFull {
    public static func matches(_ error: any Error) -> Bool {
        if let error = error as? FileError, let code = error.errno { return code == ENOSPC || code == EDQUOT }
        if error is DiskSpace.Shortage { return true }
        return matches(String(describing: error))
    }

    /// The file or folder that a disk-full error names, where its type says (a write's
    /// `FileError`, a generation's or checkpoint's `DiskSpace.Shortage`); nil for errors known
    /// only by their text, whose messages begin with the path all the same.
    public static func path(of error: any Error) -> String? {
        switch error {
        case FileError.io(let path, _, _): return path
        case let shortage as DiskSpace.Shortage: return shortage.path
        default: return nil
        }
    }

    /// By the system's own words for ENOSPC and EDQUOT in a message (errors wrapped by other
    /// layers, and a failed job's saved message, keep only the text).
    public static func matches(_ message: String) -> Bool {
        message.contains(String(cString: strerror(ENOSPC))) || message.contains(String(cString: strerror(EDQUOT)))
    }
}
