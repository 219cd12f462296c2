import Daemon
import Foundation
import Logging
import LogTestSupport

/// A scheduler on a fresh temporary spool with no settle time, its output and state folders
/// beside the spool under `root` (the caller removes it). `configure` changes the
/// configuration first; `background`: scans on the scanner's thread, as the daemon runs them.
func makeTestScheduler(background: Bool = false, lines: CapturedLines? = nil,
                       _ configure: (inout Configuration) -> Void = { _ in }) throws -> (Scheduler, root: String) {
    let root = NSTemporaryDirectory() + "synthd-scheduler-\(UUID().uuidString)"
    var configuration = Configuration()
    configuration.spool = root + "/spool"
    configuration.output = root + "/out"
    configuration.state = root + "/state"
    configuration.settleSeconds = 0
    // Uncapped, so that the tests' datasets of an image a class have something to write (under
    // the default cap of half a synthetic image per real one they write nothing, and no model
    // is trained for them: `Scheduler.needsNoModel`).
    configuration.maxSyntheticPerReal = 0
    configure(&configuration)
    try FileManager.default.createDirectory(atPath: configuration.spool, withIntermediateDirectories: true)
    let logger = Logger(label: "test") { _ in lines.map { CapturingHandler(lines: $0) as any LogHandler } ?? SwiftLogNoOpLogHandler() }
    return (try Scheduler(configuration: configuration, logger: logger, scanInBackground: background), root)
}
