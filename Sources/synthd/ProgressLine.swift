import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Shows progress on standard error: a bar redrawn in place on a terminal, or a plain line
/// every `logInterval` seconds when the output goes to a file or the journal (the first one
/// `logInterval` seconds in: work that ends sooner, such as reading a small dataset, leaves no
/// "6% ... ETA 0s" line in a log before its result).
final class ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    let logInterval: Double
    private var lastDraw: Moment?
    private var startedAt: Moment?
    private var startFraction = 0.0

    init(logInterval: Double = 30) { self.logInterval = logInterval }

    /// `remaining` nan: estimated from the rate since the first update.
    func update(fraction: Double, remaining: Double, text: String, force: Bool = false) {
        let now = Moment.now
        if startedAt == nil || fraction < startFraction { startedAt = now; startFraction = fraction }
        var remaining = remaining
        if remaining.isNaN, let startedAt, fraction > startFraction {
            remaining = startedAt.seconds(to: now) / (fraction - startFraction) * (1 - fraction)
        }
        let interval = isTerminal ? 0.2 : logInterval
        let since = lastDraw ?? (isTerminal ? nil : startedAt)
        guard force || since.map({ $0.seconds(to: now) >= interval }) ?? true else { return }
        lastDraw = now
        let percent = Int((fraction * 100).rounded(.down))
        if isTerminal {
            let width = 24, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            write("\r[\(bar)] \(percent)% \(text) ETA \(durationText(remaining))\u{1B}[K")
        } else {
            write("\(percent)% \(text) ETA \(durationText(remaining))\n")
        }
    }

    func finish(_ message: String) {
        startedAt = nil
        write(isTerminal ? "\r\(message)\u{1B}[K\n" : "\(message)\n")
    }

    /// Takes a drawn line off the terminal, leaving nothing in its place (a log gets nothing).
    func clear() {
        startedAt = nil
        if isTerminal && lastDraw != nil { write("\r\u{1B}[K") }
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
