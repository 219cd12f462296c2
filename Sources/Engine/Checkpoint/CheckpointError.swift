/// Why a checkpoint could not be written or read. Each message names the file and says what
/// to do about it.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case notACheckpoint(path: String)
    case unsupportedVersion(path: String, found: UInt32, supported: UInt32)
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case checksumMismatch(path: String, stored: UInt32, computed: UInt32)
    case malformed(path: String, reason: String)
    case io(path: String, operation: String, errno: Int32)
    case missingTensor(path: String, name: String)
    case shapeMismatch(path: String, name: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case .notACheckpoint(let path):
            return "\(path): not a synthd checkpoint (bad magic bytes)"
        case .unsupportedVersion(let path, let found, let supported):
            return "\(path): checkpoint format version \(found), this synthd reads version \(supported); "
                + "retrain, or use the synthd release that wrote it"
        case .truncated(let path, let expected, let actual):
            return "\(path): checkpoint is truncated: \(actual) bytes, expected \(expected) "
                + "(an interrupted copy?); the previous checkpoint, if any, is intact"
        case .checksumMismatch(let path, let stored, let computed):
            // synthd replaces a checkpoint whole (temporary file, fsync, rename): a bad checksum
            // is damage after the write, which only a copy or a new training undoes.
            return "\(path): checkpoint is corrupt: checksum \(hex(computed)) does not match the stored \(hex(stored)) "
                + "(damaged after it was written: the disk, or a copy); restore it from a backup, or delete its state folder to train afresh"
        case .malformed(let path, let reason):
            return "\(path): checkpoint is corrupt: \(reason)"
        case .io(let path, let operation, let errno):
            return "\(path): failed to \(operation): \(errorString(errno))"
        case .missingTensor(let path, let name):
            return "\(path): checkpoint has no tensor '\(name)': it was written for a different model"
        case .shapeMismatch(let path, let name, let expected, let found):
            return "\(path): tensor '\(name)' has shape \(found) in the checkpoint, the model expects \(expected)"
        }
    }
}

extension CheckpointError {
    init(_ error: FileError) {
        switch error {
        case .io(let path, let operation, let code): self = .io(path: path, operation: operation, errno: code)
        case .tooLarge(let path, let bytes, _): self = .malformed(path: path, reason: "\(bytes) bytes is too large")
        // Not damaged data but the wrong kind of file: nothing can replace it (a rename over a
        // folder fails), so it is an I/O error, not a checkpoint to make again.
        case .notRegular(let path, let kind):
            self = .io(path: path, operation: "read (a \(kind), not a regular file)", errno: kind == "folder" ? EISDIR : EINVAL)
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func errorString(_ code: Int32) -> String {
    guard let message = strerror(code) else { return "errno \(code)" }
    return String(cString: message)
}
