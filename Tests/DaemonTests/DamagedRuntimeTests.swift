import Daemon
import Foundation
import Logging
import Testing

/// A damaged `daemon.json` (read at every start, by `synthd status`, and by the free-space
/// retry every 30 s): every number in it at Int's ends and beyond, and the record is still
/// read, shown and acted on, without a crash. Before 2026-12-03 a free-space figure of
/// 2^63 - 1 overflowed the retry's check: a crash every 30 s, a restart loop.
@Suite struct DamagedRuntimeTests {
    @Test func everyNumberAtItsBoundariesIsReadShownAndRetried() throws {
        let root = NSTemporaryDirectory() + "synthd-runtime-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (root + "/spool", root + "/out", root + "/state")
        for folder in [configuration.spool + "/pets/cat", configuration.output, configuration.state + "/datasets/pets"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        var runtime = DatasetRuntime()
        runtime.phase = .failed
        runtime.progress = 0.5
        runtime.eta = Date(timeIntervalSince1970: 1_800_000_000)
        runtime.step = 1_200
        runtime.budgetSeconds = 1_200
        runtime.roundStartStep = 1_000
        runtime.trainedMinutes = 20
        runtime.roundMinutes = 60
        runtime.trainedFingerprint = "trained"
        runtime.outputsWritten = 500
        runtime.freeBytesAtFailure = 1 << 20
        runtime.fullFolder = configuration.output
        runtime.failedJob = .train
        runtime.quarantinedFor = "key"
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let json = try JSONSerialization.jsonObject(with: encoder.encode(runtime)) as! [String: Any]
        let numbers = json.keys.filter { json[$0] is NSNumber && !(json[$0] is Bool) || ["progress", "step"].contains($0) }.sorted()
        #expect(Set(["progress", "step", "budgetSeconds", "roundStartStep", "outputsWritten", "freeBytesAtFailure",
                     "trainedMinutes", "roundMinutes"]).isSubset(of: numbers),
                "\(numbers)")
        let path = configuration.state + "/datasets/pets/daemon.json"
        let logger = Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }
        var decoded = 0
        for key in numbers {
            for value in [0, -1, Int.max, Int.min, 1e300, -1e300, 2.5] as [Any] {
                var damaged = json
                damaged[key] = value
                try JSONSerialization.data(withJSONObject: damaged).write(to: URL(fileURLWithPath: path))
                // A value of another type (1e300 for an Int) does not decode: the record is
                // unreadable, as any damaged JSON (status says so; the daemon rebuilds it).
                if let read = RuntimeStore.read(path) {
                    decoded += 1
                    #expect(read.phase == .failed && read.quarantinedFor == "key", "\(key) = \(value): the quarantine stays")
                    // Minutes a round would train on for stay what `minutes` may be (a budget of
                    // 1e300 s overflowed the log line's whole seconds).
                    var asked = configuration
                    asked.trainingMinutes = 100_000
                    let on = TrainingOn.asked(by: asked, over: configuration, of: read)
                    #expect((on?.minutes ?? 0) <= 100_000, "\(key) = \(value): \(String(describing: on))")
                }
                for status in try DatasetStatus.read(configuration.state) { _ = status.summary() }
                let scheduler = try Scheduler(configuration: configuration, logger: logger)
                scheduler.retryWhereSpaceWasFreed()
            }
        }
        #expect(decoded >= numbers.count * 4, "\(decoded) damaged records decoded")
    }
}
