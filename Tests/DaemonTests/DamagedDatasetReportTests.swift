@testable import Daemon
import Foundation
import GAN
import Logging
import LogTestSupport
import Testing

/// A damaged `dataset.json` (the image counts of the last training, which size the next
/// generation: `balance` tops every class up to the largest): every count at Int's ends, and
/// bytes that do not decode. The generation job says which file and why in its log, counts the
/// images by file name instead, and writes the plan those counts give; before 2026-12-03 a
/// count of -1 or 2^63 - 1 overflowed the plan's arithmetic, a crash at every retry.
@Suite final class DamagedDatasetReportTests {
    let root = NSTemporaryDirectory() + "synthd-report-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: root) }

    @Test func aDamagedReportIsNamedAndTheImagesAreCountedByName() throws {
        var configuration = try JobRunnerTests.petsUnder(root)  // classes a and b, three images each
        configuration.trainingMinutes = 0.005
        configuration.classCheck = false
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        let train = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(train, shouldStop: { false }) else { Issue.record("training failed"); return }
        let state = try StateFolder(scheduler.store.folder("pets"))
        let sound = try Data(contentsOf: URL(fileURLWithPath: state.datasetReportPath))
        #expect(try state.readDatasetReport()?.imagesPerClass == ["a": 3, "b": 3])

        // Balance of 3 and 3, then enlarge 0.5 of 3 (2), capped at 0.5 per real image: 1 each.
        let expected = ["a": 1, "b": 1]
        var damaged: [(what: String, bytes: Data)] = [("unreadable", Data("{\"imagesPerClass\": {\"a\": ".utf8))]
        let json = try JSONSerialization.jsonObject(with: sound) as! [String: Any]
        for value in [-1, Int.max, Int.min, (1 << 32) + 1] {
            var copy = json
            copy["imagesPerClass"] = ["a": value, "b": 3]
            damaged.append(("a: \(value)", try JSONSerialization.data(withJSONObject: copy)))
        }
        var negative = json
        negative["ignoredFiles"] = -5
        damaged.append(("ignored -5", try JSONSerialization.data(withJSONObject: negative)))

        for (what, bytes) in damaged {
            try bytes.write(to: URL(fileURLWithPath: state.datasetReportPath))
            #expect(throws: StateFolder.Error.self, "\(what)") { try state.readDatasetReport() }
            lines.removeAll()
            let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
            let outcome = scheduler.runner.run(generate, shouldStop: { false })
            guard case .completed = outcome else { Issue.record("\(what): \(outcome)"); continue }
            #expect(scheduler.store.get("pets").planned == expected, "\(what)")
            let warning = lines.all.first { $0.hasPrefix("warning \(state.datasetReportPath): ") }
            #expect(warning?.contains(what == "unreadable" ? "unreadable dataset report" : "damaged dataset report") == true,
                    "\(what): \(lines.all)")
            #expect(warning?.hasSuffix("the next training writes it anew; images counted by file name instead") == true, "\(what)")
            for status in try DatasetStatus.read(configuration.state) { _ = status.summary() }
        }

        // Without the report (a model from before synthd kept one), the files are counted too.
        try FileManager.default.removeItem(atPath: state.datasetReportPath)
        let generate = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        guard case .completed = scheduler.runner.run(generate, shouldStop: { false }) else { Issue.record("no report"); return }
        #expect(scheduler.store.get("pets").planned == expected)
    }
}
