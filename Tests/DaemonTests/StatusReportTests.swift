import Daemon
import Foundation
import GAN
import Testing

/// `synthd status`'s text over many datasets: a first line that counts them by state and names
/// what runs and what failed; a dataset's rejected files listed up to a limit.
@Suite struct StatusReportTests {
    func status(_ name: String, state: String?, progress: Double? = nil, eta: String? = nil,
                rejected: Int = 0) throws -> DatasetStatus {
        var fields: [String: Any] = ["dataset": name, "stateFolder": "/s/" + name, "classes": ["a"], "mode": "grey",
                                     "imageWidth": 28, "imageHeight": 28, "steps": 10, "checkpoint": "step-10",
                                     "imagesAtLastRun": 5, "samples": "/s/\(name)/samples.png"]
        if let state { fields["state"] = state }
        if let progress { fields["progress"] = progress }
        if let eta { fields["eta"] = eta }
        if rejected > 0 {
            fields["rejected"] = (0..<rejected).map { ["path": "/sp/\(name)/a/\($0).png", "reason": "/sp/\(name)/a/\($0).png: not a PNG or JPEG file"] }
        }
        return try JSONDecoder().decode(DatasetStatus.self, from: JSONSerialization.data(withJSONObject: fields))
    }

    @Test func theOverviewCountsStatesAndNamesWhatRunsAndWhatFailed() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let eta = ISO8601DateFormatter().string(from: now.addingTimeInterval(185))
        let statuses = try [status("a", state: "done"), status("b", state: "training", progress: 0.42, eta: eta),
                            status("c", state: "queued"), status("d", state: "failed"), status("e", state: "done"),
                            status("f", state: nil)]
        #expect(DatasetStatus.overview(statuses, now: now) == """
            6 datasets: 1 training, 1 queued, 1 failed, 2 done, 1 trained by hand
              now: b training 42%, ETA 3m05s
              failed: d (synthd status NAME shows why)
            """)
        #expect(DatasetStatus.overview(Array(statuses.prefix(1))) == nil, "one dataset needs no overview")
        let many = try (0..<12).map { try status("x\($0)", state: "failed") }
        #expect(DatasetStatus.overview(many)!.hasSuffix("failed: x0, x1, x2, x3, x4, x5, x6, x7, x8, x9 and 2 more (synthd status NAME shows why)"))
    }

    @Test func rejectedFilesAreListedUpToALimit() throws {
        let few = try status("a", state: "done", rejected: 20).summary()
        #expect(few.components(separatedBy: "\n  rejected: ").count == 21 && !few.contains("more rejected"))
        let many = try status("a", state: "done", rejected: 50_000).summary()
        #expect(many.components(separatedBy: "\n  rejected: ").count == 21)
        #expect(many.hasSuffix("\n  ... and 49980 more rejected files (synthd status --json lists them all)"), "\(many.suffix(200))")
    }
}
