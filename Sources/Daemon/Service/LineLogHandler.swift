import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One readable line per event on stderr.
///
/// Under systemd (stderr connected to the journal, which `JOURNAL_STREAM` says) each line
/// starts with the syslog priority in angle brackets, `<4>`, which journald turns into the
/// entry's priority and strips; it adds its own time stamp. Elsewhere a line starts with the
/// time and the level. Metadata follows the message as `key=value`.
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let journal: Bool

    /// One handler serves every logger: lines carry no label (synthd has one source).
    public init(journal: Bool = LineLogHandler.stderrIsJournal()) {
        self.journal = journal
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = format(level: event.level, message: event.message.description,
                          metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        lineLock.lock()
        FileHandle.standardError.write(Data((line + "\n").utf8))
        lineLock.unlock()
    }

    public func format(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var text = Self.oneLine(message)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { text += " \(Self.oneLine(key))=\(Self.value(value.description))" }
        if journal { return "<\(Self.priority(level))>\(text)" }
        let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withInternetDateTime])
        // The longest level, "critical", still gets its space before the message.
        return "\(stamp) \(level.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0))\(text)"
    }

    /// Text that cannot start another line or forge a priority prefix: a line break reads
    /// ` | `, every other control character (a carriage return, an escape sequence) `\u{..}`.
    public static func oneLine(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += " | "
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}":
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// A metadata value (a dataset's folder name, say) escaped like a message, and quoted when
    /// it holds a space, a quote or `=`, so that `key=value` pairs cannot be forged either.
    static func value(_ text: String) -> String {
        let line = oneLine(text)
        guard line.isEmpty || line.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return line }
        return "\"" + line.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// sd-daemon(3) priorities.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected; stderr is the
    /// journal when its own device and inode match (systemd.exec(5)).
    public static func stderrIsJournal(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":").compactMap { UInt64($0) }
        var status = stat()
        guard parts.count == 2, fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == parts[0] && UInt64(status.st_ino) == parts[1]
    }
}

/// Lines from several threads must not interleave.
private let lineLock = NSLock()
