import Daemon
import Foundation
import GAN
import Testing

/// `synthd status`'s text over many datasets: a first line that counts them by state and names
/// what runs and what failed; a dataset's rejected files listed up to a limit.
@Suite struct StatusReportTests {
    func status(_ name: String, state: String?, progress: Double? = nil, eta: String? = nil,
                rejected: Int = 0, diversity: [String: Double]? = nil, unaugmentedPasses: Double? = nil,
                lastError: String? = nil, losses: (d: Float, g: Float, spread: Float?)? = nil) throws -> DatasetStatus {
        var fields: [String: Any] = ["dataset": name, "stateFolder": "/s/" + name, "classes": ["a"], "mode": "grey",
                                     "imageWidth": 28, "imageHeight": 28, "steps": 10, "checkpoint": "step-10",
                                     "imagesAtLastRun": 5, "samples": "/s/\(name)/samples.png"]
        if let state { fields["state"] = state }
        if let progress { fields["progress"] = progress }
        if let eta { fields["eta"] = eta }
        if let diversity { fields["diversity"] = diversity }
        if let unaugmentedPasses { fields["unaugmentedPasses"] = unaugmentedPasses }
        if let lastError { fields["lastError"] = lastError }
        if let losses {
            fields["lastDiscriminatorLoss"] = losses.d
            fields["lastGeneratorLoss"] = losses.g
            if let spread = losses.spread { fields["lastPairSpread"] = spread }
        }
        if rejected > 0 {
            fields["rejected"] = (0..<rejected).map { ["path": "/sp/\(name)/a/\($0).png", "reason": "/sp/\(name)/a/\($0).png: not a PNG or JPEG file"] }
        }
        return try JSONDecoder().decode(DatasetStatus.self, from: JSONSerialization.data(withJSONObject: fields))
    }

    /// The model line: the last step's losses and, for a model with the mode-seeking term, its
    /// pair spread.
    @Test func theModelLineShowsTheLastLossesAndPairSpread() throws {
        let plain = try status("a", state: "done", losses: (0.8, 1.5, nil)).summary()
        #expect(plain.contains("step 10, losses D 0.800 G 1.500") && !plain.contains("pair spread"), "\(plain)")
        let seeking = try status("a", state: "done", losses: (0.8, 1.5, 0.41)).summary()
        #expect(seeking.contains("step 10, losses D 0.800 G 1.500, pair spread 0.410"), "\(seeking)")
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
        #expect(statuses[0].summary(now: now).contains("\n  pictures: /s/a/samples.png, losses.png"), "\(statuses[0].summary(now: now))")
        let many = try (0..<12).map { try status("x\($0)", state: "failed") }
        #expect(DatasetStatus.overview(many)!.hasSuffix("failed: x0, x1, x2, x3, x4, x5, x6, x7, x8, x9 and 2 more (synthd status NAME shows why)"))
    }

    /// The whole listing shows the datasets in the spool in full and names those that left in
    /// one line; with none in the spool, those that left are shown in full.
    @Test func datasetsThatLeftAreNamedInOneLine() throws {
        let statuses = try [status("a", state: "done"), status("b", state: "removed"), status("c", state: "training")]
            + (0..<22).map { try status("old\($0)", state: "removed") }
        let listing = DatasetStatus.listing(statuses)
        #expect(listing.hasPrefix(statuses[0].summary() + "\n" + statuses[2].summary() + "\n"), "\(listing)")
        #expect(listing.hasSuffix("\nleft the spool, kept until forgotten (synthd status NAME shows one; synthd forget NAME deletes one): "
                                  + "b, " + (0..<19).map { "old\($0)" }.joined(separator: ", ") + " and 3 more"), "\(listing)")
        #expect(!listing.contains("b: removed"))
        let onlyLeft = [statuses[1], statuses[3]]
        #expect(DatasetStatus.listing(onlyLeft) == onlyLeft.map { $0.summary() }.joined(separator: "\n"))
    }

    /// A state folder this user may not list is an error that says so, not "no datasets".
    /// A dataset's synthd.toml with several mistakes fails its job with one line each: they
    /// stay under "last error", not at the margin where a dataset's name would be.
    @Test func anErrorOfSeveralLinesStaysIndented() throws {
        let text = try status("a", state: "failed", lastError: "s/a/synthd.toml:2: unknown key 'x' in [training]\ns/a/synthd.toml:3: unknown key 'y' in [training]").summary()
        #expect(text.contains("\n  last error: s/a/synthd.toml:2: unknown key 'x' in [training]\n    s/a/synthd.toml:3: unknown key 'y' in [training]"), "\(text)")
    }

    @Test(.enabled(if: geteuid() != 0, "root may list any folder")) func anUnlistableStateFolderIsAnError() throws {
        let root = NSTemporaryDirectory() + "synthd-status-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/datasets/a", withIntermediateDirectories: true)
        defer { chmod(root, 0o755); try? FileManager.default.removeItem(atPath: root) }
        #expect(chmod(root, 0) == 0)
        let error = #expect(throws: UnreadableStateFolder.self) { try DatasetStatus.read(root) }
        #expect(error?.description.hasPrefix("\(root): cannot read the state folder (Permission denied); run synthd status as a user") == true)
    }

    /// A cluster's records name datasets that have no state folder yet: shown, and no folder
    /// made for them (status may run as a user who cannot write there).
    @Test func readingMakesNoStateFolders() throws {
        let root = NSTemporaryDirectory() + "synthd-status-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/datasets", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        var runtime = DatasetRuntime()
        runtime.phase = .queued
        let statuses = try DatasetStatus.read(root, runtimes: ["pets": runtime])
        #expect(statuses.map(\.dataset) == ["pets"] && statuses.first?.state == "queued")
        #expect(!FileManager.default.fileExists(atPath: root + "/datasets/pets"))
        #expect(try DatasetStatus.read(root + "/datasets/cats").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/datasets/cats"))
    }

    /// A file where the state folder should be, and a state folder not made yet.
    @Test func aStateFolderThatIsAFileIsAnErrorAndOneNotMadeYetIsEmpty() throws {
        let root = NSTemporaryDirectory() + "synthd-status-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try DatasetStatus.read(root).isEmpty)
        #expect(FileManager.default.createFile(atPath: root, contents: Data("x".utf8)))
        let error = #expect(throws: UnreadableStateFolder.self) { try DatasetStatus.read(root) }
        #expect(error?.description.hasPrefix("\(root): cannot read the state folder (Not a directory)") == true)
    }

    /// The minutes a model has had, and how to give it more, under its model line.
    @Test func theMinutesAModelHasHadAreSaidWithTheWayToMore() throws {
        var dataset = try status("a", state: "done")
        #expect(!dataset.summary().contains("training:"), "not known: not said")
        dataset.trainedMinutes = 20
        #expect(dataset.summary().contains(", checkpoint") == false && dataset.summary().contains(
            "step 10\n  training: 20m00s so far, fine-tuning aside (a larger [training] minutes in the dataset's synthd.toml trains it on)\n"),
                "\(dataset.summary())")
    }

    @Test func adviceIsAWarningLine() throws {
        var dataset = try status("a", state: "done")
        dataset.advice = ["class folders test and train each hold folders of the same names (cat and dog): ..."]
        #expect(dataset.summary().contains("\n  warning: class folders test and train each hold folders of the same names (cat and dog): ..."))
        #expect(try !status("a", state: "done").summary().contains("warning"))
    }

    @Test func rejectedFilesAreListedUpToALimit() throws {
        let few = try status("a", state: "done", rejected: 20).summary()
        #expect(few.components(separatedBy: "\n  rejected: ").count == 21 && !few.contains("more rejected"))
        let many = try status("a", state: "done", rejected: 50_000).summary()
        #expect(many.components(separatedBy: "\n  rejected: ").count == 21)
        #expect(many.hasSuffix("\n  ... and 49980 more rejected files (synthd status --json lists them all)"), "\(many.suffix(200))")
    }

    /// A dataset of 150 classes lists its first 20 and counts the rest (with their images);
    /// the collapsed ones are named up to 20 too. `--json` keeps every class.
    @Test func classesAreListedUpToALimit() throws {
        #expect(try !classes(20).contains("more classes") && classes(20).split(separator: "\n").filter { $0.hasPrefix("    c") }.count == 20)
        let text = try classes(150)
        let classLines = text.split(separator: "\n").filter { $0.hasPrefix("    c") }
        #expect(classLines.count == 20 && classLines.first == "    c000: 2 (real: 3), diversity 0.30 (collapsed)", "\(text)")
        #expect(text.contains("\n    ... and 130 more classes: 260 synthetic images for 390 real (synthd status --json lists each)"))
        #expect(text.contains("the samples of c000, c001, c002, c003, c004, c005, c006, c007, c008, c009, c010, c011, c012, c013, "
                              + "c014, c015, c016, c017, c018, c019 and 130 more classes have collapsed"), "\(text)")
        #expect(text.split(separator: "\n").count < 30, "\(text.split(separator: "\n").count) lines")
    }

    /// The summary of a done dataset of `count` classes, each with 3 real and 2 synthetic
    /// images, all collapsed.
    func classes(_ count: Int) throws -> String {
        let names = (0..<count).map { String(format: "c%03d", $0) }
        var fields: [String: Any] = ["dataset": "many", "stateFolder": "/s/many", "classes": names, "mode": "grey",
                                     "imageWidth": 28, "imageHeight": 28, "steps": 10, "checkpoint": "step-10",
                                     "imagesAtLastRun": 3 * count, "samples": "/s/many/samples.png", "state": "done",
                                     "syntheticRule": "balance"]
        fields["synthetic"] = Dictionary(uniqueKeysWithValues: names.map { ($0, 2) })
        fields["imagesPerClass"] = Dictionary(uniqueKeysWithValues: names.map { ($0, 3) })
        fields["diversity"] = Dictionary(uniqueKeysWithValues: names.map { ($0, 0.3) })
        return try JSONDecoder().decode(DatasetStatus.self, from: JSONSerialization.data(withJSONObject: fields)).summary()
    }

    /// A collapsed class's advice follows the model's passes over its images without
    /// augmentation: past 100 the discriminator has memorised them, and more training, the
    /// advice for a model trained briefly, would make it worse.
    @Test func theCollapseAdviceFollowsThePassesWithoutAugmentation() throws {
        let brief = try status("a", state: "done", diversity: ["a": 0.3]).summary()
        #expect(brief.contains("\n  warning: the samples of a have collapsed (they vary less than half as much as the real images); "
                               + "more images of the class, or more training, usually help"), "\(brief)")
        let capped = try status("a", state: "done", diversity: ["a": 0.3], unaugmentedPasses: 100).summary()
        #expect(capped.contains("more training, usually help"), "at the daemon's cap of 100 passes: \(capped)")
        let memorised = try status("a", state: "done", diversity: ["a": 0.3, "b": 0.9], unaugmentedPasses: 286.4).summary()
        #expect(memorised.contains("have collapsed (they vary less than half as much as the real images); the discriminator has "
                                   + "seen each real image about 286 times without augmentation and memorised them: more "
                                   + "images of the class, or a new model with augmentation"), "\(memorised)")
        #expect(memorised.contains("more training does not") && !memorised.contains("usually help"))
        let varied = try status("a", state: "done", diversity: ["a": 0.9], unaugmentedPasses: 286.4).summary()
        #expect(!varied.contains("warning"), "no collapse, no warning: \(varied)")
    }
}
