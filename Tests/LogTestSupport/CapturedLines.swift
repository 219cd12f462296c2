import Foundation
import Logging

/// Log lines as "level message", for tests that read what the daemon said.
public final class CapturedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    public init() {}
    public func append(_ line: String) { lock.withLock { lines.append(line) } }
    public var all: [String] { lock.withLock { lines } }
    public func removeAll() { lock.withLock { lines.removeAll() } }
}

/// Collects every line logged at info and above into `lines`.
public struct CapturingHandler: LogHandler {
    public let lines: CapturedLines
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public init(lines: CapturedLines) { self.lines = lines }
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    public func log(event: LogEvent) { lines.append("\(event.level) \(event.message)") }
}

extension Logger {
    /// A logger whose lines `lines` collects.
    public static func capturing(into lines: CapturedLines) -> Logger {
        Logger(label: "test") { _ in CapturingHandler(lines: lines) }
    }
}
