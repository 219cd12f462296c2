import Engine
import Foundation
import Imaging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The synthd binary next to this test bundle, run as a user would run it.
struct SynthdProcess {
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("synthd").path
    }

    let process = Process()
    let output = Pipe()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits for exit (at most `timeout` seconds) and returns status and output.
    func finish(timeout: Double = 120) -> (status: Int32, output: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            // One that ignores SIGTERM fails its test instead of hanging the suite.
            let asked = Date()
            while process.isRunning && Date().timeIntervalSince(asked) < 10 { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, text)
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try SynthdProcess(arguments).finish()
    }
}

func temporaryFolder(_ name: String) throws -> String {
    let path = NSTemporaryDirectory() + "synthd-cli-\(name)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func makeDataset(_ root: String, classes: [String: Int]) throws {
    for (name, count) in classes {
        try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        for i in 0..<count {
            var image = Image(width: 28, height: 28, mode: .grey)
            for y in 6..<22 { for x in 6..<22 { image[x, y, 0] = UInt8(40 + 10 * i + 60 * (name.count % 3)) } }
            try PNG.write(image, to: "\(root)/\(name)/\(i).png")
        }
    }
}

@Suite(.serialized) struct SynthdCLITests {
    @Test func interruptCheckpointsAndARerunResumes() throws {
        let data = try temporaryFolder("data"), stateRoot = try temporaryFolder("states")
        let state = stateRoot + "/pets"
        defer { for path in [data, stateRoot] { try? FileManager.default.removeItem(atPath: path) } }
        try makeDataset(data, classes: ["cat": 4, "dog": 4])
        try Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]).write(to: URL(fileURLWithPath: data + "/cat/broken.png"))

        let run = try SynthdProcess(["train", data, "--state", state, "--steps", "100000", "--batch", "4",
                                     "--checkpoint-seconds", "1000"])
        sleep(3)
        kill(run.process.processIdentifier, SIGINT)
        let stopped = run.finish(timeout: 10)
        #expect(stopped.status == 0, "exit status after SIGINT: \(stopped.output)")
        #expect(stopped.output.contains("stopped"))
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/model.json"))) as! [String: Any]
        let steps = record["steps"] as! Int
        #expect(steps > 0)

        // What a kill -9 in the middle of a checkpoint leaves: the next run removes it.
        try "half".write(toFile: state + "/checkpoint.ckpt.tmp.4194302", atomically: false, encoding: .utf8)
        let again = try SynthdProcess.run(["train", data, "--state", state, "--steps", "2", "--batch", "4", "--resolution", "64",
                                           "--seed=3"])
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("note: removed what an interrupted write left in \(state): checkpoint.ckpt.tmp.4194302"), "\(again.output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/checkpoint.ckpt.tmp.4194302"))
        #expect(again.output.contains("resuming at step \(steps) of a 32x32 model"))
        #expect(again.output.contains("note: --resolution 64, --seed 3 are for new models; \(state)'s model was made with resolution 32, "
                                      + "seed 0 (another --state trains a new model)"), "\(again.output)")
        #expect(again.output.contains("\(steps + 2) in all"))
        // A run that was stopped makes no judge; one that finished does.
        #expect(again.output.contains("judge trained"), "\(again.output)")
        #expect(FileManager.default.fileExists(atPath: state + "/judge.ckpt"))

        // status reads the state folder (alone, or as one of several under a root).
        for root in [state, stateRoot] {
            let status = try SynthdProcess.run(["status", "--state", root, "--json"])
            #expect(status.status == 0, "\(status.output)")
            let machine = try #require(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
            let entries = try #require(machine["datasets"] as? [[String: Any]])
            #expect((machine["daemon"] as? [String: Any])?["state"] as? String == "unknown", "a folder no synthd run has held")
            let mine = entries.first { $0["state_folder"] as? String == state || $0["stateFolder"] as? String == state }
            #expect(mine?["steps"] as? Int == steps + 2, "status of \(state) under \(root)")
            #expect(mine?["classes"] as? [String] == ["cat", "dog"])
            let rejected = mine?["rejected"] as? [[String: Any]]
            #expect(rejected?.first?["path"] as? String == data + "/cat/broken.png", "status lists the rejected file")
        }
        // Named datasets only; a name that is not there is an error that says what is.
        let named = try SynthdProcess.run(["status", "--state", stateRoot, "pets"])
        #expect(named.status == 0 && named.output.hasPrefix("pets: ") && named.output.contains("step \(steps + 2)"), "\(named.output)")
        let unknown = try SynthdProcess.run(["status", "--state", stateRoot, "cats"])
        #expect(unknown.status == 1 && unknown.output.contains("no dataset 'cats' under \(stateRoot) (there are: pets)"), "\(unknown.output)")
        #expect(!unknown.output.contains("Usage:"), "a data error, not a usage one: \(unknown.output)")
        // A mistyped folder is told from an idle daemon's empty one.
        let typo = try SynthdProcess.run(["status", "--state", stateRoot + "-typo"])
        #expect(typo.status == 0 && typo.output.contains("no datasets under \(stateRoot)-typo (there is no such folder"), "\(typo.output)")
        let emptyState = try temporaryFolder("empty-state")
        defer { try? FileManager.default.removeItem(atPath: emptyState) }
        let empty = try SynthdProcess.run(["status", "--state", emptyState])
        #expect(empty.output == "no datasets under \(emptyState)\n", "\(empty.output)")

        let out = try temporaryFolder("out")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let generated = try SynthdProcess.run(["generate", data, "--state", state, "--out", out, "--balance", "--to", "6"])
        #expect(generated.status == 0, "\(generated.output)")
        let name = URL(fileURLWithPath: data).lastPathComponent
        for cls in ["cat", "dog"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: "\(out)/\(name)/\(cls)")
            #expect(files.filter { $0.hasSuffix(".png") }.count == 2, "balance to 6 from 4 real images")
        }
        #expect(generated.output.contains("class check: drew"), "\(generated.output)")
        let manifest = try String(contentsOfFile: "\(out)/\(name)/manifest.jsonl", encoding: .utf8)
        #expect(manifest.contains("\"temperature\":1}"), "the class check's temperature for a small dataset: \(manifest)")

        let unchecked = try SynthdProcess.run(["generate", data, "--state", state, "--out", out, "--per-class", "1",
                                               "--seed", "9", "--no-class-check"])
        #expect(unchecked.status == 0 && !unchecked.output.contains("class check"), "\(unchecked.output)")
        let lines = try String(contentsOfFile: "\(out)/\(name)/manifest.jsonl", encoding: .utf8).split(separator: "\n")
        let seed9 = lines.filter { $0.contains("synth-s9-") }
        #expect(seed9.count == 2 && seed9.allSatisfy { $0.contains("\"checked\":false") && $0.contains("\"temperature\":1}") }, "\(seed9)")

        // An output root that holds the dataset (its parent: the synthetic images would go in among
        // the real ones), or the dataset itself (a class folder of them inside it), is refused.
        let parent = (data as NSString).deletingLastPathComponent
        let datasetFiles = try FileManager.default.subpathsOfDirectory(atPath: data).sorted()
        for (root, what) in [(parent, "\(parent)/\(name) is the dataset folder itself"),
                             (data + "/./", "\(data)/.//\(name) is inside the dataset folder \(data)")] {
            let refused = try SynthdProcess.run(["generate", data, "--state", state, "--out", root, "--per-class", "1"])
            #expect(refused.status == 1 && refused.output.contains("\(what): the synthetic images would be mixed with the real ones"),
                    "\(refused.output)")
        }
        #expect(try FileManager.default.subpathsOfDirectory(atPath: data).sorted() == datasetFiles, "nothing written into the dataset")

        // The model of another dataset (a --state mixed up) is refused, with both sets of classes.
        let other = try temporaryFolder("other")
        defer { try? FileManager.default.removeItem(atPath: other) }
        try makeDataset(other, classes: ["boot": 1, "sandal": 1])
        let mixedUp = try SynthdProcess.run(["generate", other, "--state", state, "--out", out, "--per-class", "1"])
        #expect(mixedUp.status == 1, "\(mixedUp.output)")
        #expect(mixedUp.output.contains("\(other) has none of the classes of the model in \(state) (cat, dog); its own are boot, sandal: "
                                        + "is --state the model of another dataset?"), "\(mixedUp.output)")
        let otherName = URL(fileURLWithPath: other).lastPathComponent
        #expect(!FileManager.default.fileExists(atPath: "\(out)/\(otherName)"), "nothing written")
        // Training it there would make the model one of both datasets: refused, the model as it was.
        let modelRecord = { try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/model.json"))) as? [String: Any] }
        let before = try #require(try modelRecord())
        let mixedUpTraining = try SynthdProcess.run(["train", other, "--state", state, "--steps", "1"])
        #expect(mixedUpTraining.status == 1 && mixedUpTraining.output.contains("is --state the model of another dataset? "
            + "(a new --state trains a model of its own)"), "\(mixedUpTraining.output)")
        let untouched = try #require(try modelRecord())
        #expect(untouched["steps"] as? Int == before["steps"] as? Int && untouched["classes"] as? [String] == ["cat", "dog"], "\(untouched)")
        // Colour images for the grey model: refused (it would learn them grey), the model as it was.
        let coloured = try temporaryFolder("coloured")
        defer { try? FileManager.default.removeItem(atPath: coloured) }
        try makeDataset(coloured, classes: ["cat": 2, "dog": 2])
        var red = Image(width: 28, height: 28, mode: .rgb)
        for p in 0..<(28 * 28) { red.pixels[3 * p] = 220 }
        try PNG.write(red, to: coloured + "/dog/red.png")
        let colourTraining = try SynthdProcess.run(["train", coloured, "--state", state, "--steps", "1"])
        #expect(colourTraining.status == 1 && colourTraining.output.contains("1 image of \(coloured) is in colour (\(coloured)/dog/red.png), "
            + "and the model in \(state) is grey: it would learn them as grey images (a new --state trains a colour model)"),
                "\(colourTraining.output)")
        #expect(try #require(try modelRecord())["steps"] as? Int == before["steps"] as? Int)

        // A class removed since the model learnt it is not topped up by --balance.
        try FileManager.default.moveItem(atPath: data + "/dog", toPath: data + "-dog")
        defer { try? FileManager.default.removeItem(atPath: data + "-dog") }
        #expect(try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--batch", "4"]).status == 0)
        let withoutDog = try SynthdProcess.run(["generate", data, "--state", state, "--out", out, "--balance", "--to", "6",
                                                "--seed", "11"])
        #expect(withoutDog.status == 0 && withoutDog.output.contains("note: class 'dog' has no real images now"), "\(withoutDog.output)")
        let seed11 = try String(contentsOfFile: "\(out)/\(name)/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("synth-s11-") }
        #expect(seed11.count == 2 && seed11.allSatisfy { $0.contains("\"class\":\"cat\"") }, "\(seed11)")

        // Interrupted (Ctrl-C) between chunks: whatever was written is whole and listed.
        let long = try SynthdProcess(["generate", data, "--state", state, "--out", out, "--per-class", "200000",
                                      "--seed", "12", "--no-class-check"])
        let catFolder = "\(out)/\(name)/cat"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline,
              (try? FileManager.default.contentsOfDirectory(atPath: catFolder))?.contains(where: { $0.contains("synth-s12-") }) != true {
            usleep(50_000)
        }
        kill(long.process.processIdentifier, SIGINT)
        let interrupted = long.finish(timeout: 60)
        #expect(interrupted.status == 0 && interrupted.output.contains("stopped: "), "\(interrupted.output)")
        let written = try ["cat", "dog"].flatMap { cls in
            try FileManager.default.contentsOfDirectory(atPath: "\(out)/\(name)/\(cls)").filter { $0.contains("synth-s12-") }
                .map { "\(out)/\(name)/\(cls)/\($0)" }
        }
        let listed = try String(contentsOfFile: "\(out)/\(name)/manifest.jsonl", encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("synth-s12-") }
        #expect(!written.isEmpty && written.count < 400_000 && listed.count == written.count,
                "\(written.count) files, \(listed.count) manifest lines")
        #expect(interrupted.output.contains("stopped: \(written.count) of 200000 images"), "\(interrupted.output)")
        #expect(written.allSatisfy { $0.contains("/cat/") }, "the class the dataset lost is not written under --per-class either")
        for file in written { try FileManager.default.removeItem(atPath: file) }

        // More than the disk holds: refused before a file is written, with the figures.
        let huge = try SynthdProcess.run(["generate", data, "--state", state, "--out", out, "--per-class", "\(Int.max)",
                                          "--seed", "10", "--no-class-check"])
        #expect(huge.status != 0 && huge.output.contains("No space left on device: writing these images needs up to"), "\(huge.output)")
        #expect(huge.output.contains("or a smaller --per-class"), "\(huge.output)")
        let after = try String(contentsOfFile: "\(out)/\(name)/manifest.jsonl", encoding: .utf8)
        #expect(!after.contains("synth-s10-"), "nothing of the refused run")
        for cls in ["cat", "dog"] {
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(out)/\(name)/\(cls)").allSatisfy { !$0.contains("synth-s10-") })
        }
    }

    /// `synthd train --minutes` caps an unaugmented model's passes over the images as the
    /// daemon does (`--max-epochs`, default the daemon's `max_epochs`): 2 passes of 8 images at
    /// batch 4 end the run at 4 steps, not after its minute, and say why.
    @Test func minutesStopAtTheCapOnPasses() throws {
        let data = try temporaryFolder("data"), state = try temporaryFolder("state")
        defer { for path in [data, state] { try? FileManager.default.removeItem(atPath: path) } }
        try makeDataset(data, classes: ["cat": 4, "dog": 4])
        let run = try SynthdProcess.run(["train", data, "--state", state, "--minutes", "1", "--max-epochs", "2", "--batch", "4",
                                         "--augmentation", "off"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("done: 4 steps this run"), "\(run.output)")
        #expect(run.output.contains("stopped after 2 passes over the 8 images (--max-epochs) before the minutes ran out"), "\(run.output)")
        #expect(!run.output.contains("memorises"), "2 passes: no warning")
        // --steps is never capped: past 100 passes without augmentation the run says what they mean.
        let long = try SynthdProcess.run(["train", data, "--state", state, "--steps", "206", "--batch", "4"])
        #expect(long.status == 0, "\(long.output)")
        #expect(long.output.contains("warning: the model has now made about 105 passes over its 8 images without augmentation; "
                                     + "past 100 a discriminator memorises the images"), "\(long.output)")
        let negative = try SynthdProcess.run(["train", data, "--state", state, "--minutes", "1", "--max-epochs=-1"])
        #expect(negative.status != 0 && negative.output.contains("--max-epochs must be 0 (no cap) or more"), "\(negative.output)")
    }

    @Test func badInputGetsAClearError() throws {
        let state = try temporaryFolder("state")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let missing = try SynthdProcess.run(["train", "/nonexistent/dataset", "--state", state, "--steps", "1"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("/nonexistent/dataset"))
        let both = try SynthdProcess.run(["train", "/x", "--state", state, "--steps", "1", "--minutes", "1"])
        #expect(both.status != 0 && both.output.contains("exactly one of --minutes and --steps"))
        let decay = try SynthdProcess.run(["train", "/x", "--state", state, "--steps", "1", "--ema-decay", "1"])
        #expect(decay.status != 0 && decay.output.contains("--ema-decay must be in [0, 1)"))
        let untrained = try SynthdProcess.run(["generate", "/x", "--state", state, "--out", state, "--per-class", "1"])
        #expect(untrained.status != 0 && untrained.output.contains("synthd train first"))
        // A mistyped --state is said to be missing, and not made.
        let mistyped = try SynthdProcess.run(["generate", "/x", "--state", state + "/modle", "--out", state, "--per-class", "1"])
        #expect(mistyped.status != 0 && mistyped.output.contains("\(state)/modle: no such folder"), "\(mistyped.output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/modle"))
        let device = try SynthdProcess.run(["train", "/x", "--state", state, "--steps", "1", "--device", "gpu"])
        #expect(device.status != 0 && device.output.contains("--device must be auto, cpu, cuda or cuda:N, not 'gpu'"))
        // A state folder the dataset's scan would read (its pictures taken for images of a class
        // "model" at the next run) is refused, and not made; a hidden one in it is not read.
        try makeDataset(state + "/pets", classes: ["cat": 2])
        let inside = try SynthdProcess.run(["train", state + "/pets", "--state", state + "/pets/model", "--steps", "1"])
        #expect(inside.status == 1 && inside.output.contains("\(state)/pets/model is inside the dataset folder \(state)/pets: "
            + "its pictures (samples.png, losses.png) would be read as images of the dataset"), "\(inside.output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/pets/model"))
        let itself = try SynthdProcess.run(["train", state + "/pets", "--state", state + "/pets/cat/..", "--steps", "1"])
        #expect(itself.status == 1 && itself.output.contains("is the dataset folder itself"), "\(itself.output)")
        let hidden = try SynthdProcess.run(["train", state + "/pets", "--state", state + "/pets/.synthd", "--steps", "1", "--batch", "2"])
        #expect(hidden.status == 0, "\(hidden.output)")
        // A folder that cannot be made is named with the reason (not Foundation's error domain).
        try Data([1]).write(to: URL(fileURLWithPath: state + "/file"))
        let folder = try SynthdProcess.run(["train", "/x", "--state", state + "/file/model", "--steps", "1"])
        #expect(folder.status != 0 && folder.output.contains("\(state)/file: failed to create the folder: Not a directory"),
                "\(folder.output)")
        // Files of the wrong kind are a data error: named, and no usage text after it.
        let labels = state + "/labels.idx"   // magic 0 0 8 1, one dimension (3), three labels
        try Data([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]).write(to: URL(fileURLWithPath: labels))
        let swapped = try SynthdProcess.run(["import-idx", "--images", labels, "--labels", labels, "--out", state + "/idx"])
        #expect(swapped.status == 1 && swapped.output.contains("\(labels): expected image dimensions"), "\(swapped.output)")
        #expect(!swapped.output.contains("Usage:"), "\(swapped.output)")
        // The download itself given as the dataset: what to do, not "not a folder".
        try Data([0x50, 0x4B, 5, 6] + [UInt8](repeating: 0, count: 18)).write(to: URL(fileURLWithPath: state + "/flowers.zip"))
        let archive = try SynthdProcess.run(["train", state + "/flowers.zip", "--state", state + "/model", "--steps", "1"])
        #expect(archive.status == 1 && archive.output.contains("\(state)/flowers.zip: an archive, not a dataset folder: unpack it first "
            + "(`unzip flowers.zip -d flowers`), or drop it into the spool of `synthd run`"), "\(archive.output)")
        let evaluated = try SynthdProcess.run(["eval", state + "/flowers.zip", state])
        #expect(evaluated.status == 1 && evaluated.output.contains("an archive, not a dataset folder"), "\(evaluated.output)")
    }

    /// `synthd forget` deletes a removed dataset's state and outputs, refuses one still in the
    /// spool, and says when there is no such dataset; every refusal exits 1.
    /// `synthd check`: the report on standard output and 0 for a dataset the daemon would
    /// train; 65 and why for one it would not; 78 for a wrong key in the dataset's synthd.toml.
    @Test func checkSaysWhatTheDaemonWouldDo() throws {
        let data = try temporaryFolder("check")
        defer { try? FileManager.default.removeItem(atPath: data) }
        try makeDataset(data + "/pets", classes: ["cat": 4, "dog": 2])
        let usable = try SynthdProcess.run(["check", data + "/pets"])
        #expect(usable.status == 0 && usable.output.contains("\(data)/pets: 6 images in 2 classes, grey"), "\(usable.output)")
        #expect(usable.output.contains("\n  cat    4       2\n  dog    2       1\n"), "\(usable.output)")
        let json = try SynthdProcess.run(["check", data + "/pets", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(report?["synthetic"] as? Int == 3, "\(json.output)")
        // Read in a moment, a dataset of several chunks leaves no progress line in a log or pipe.
        try makeDataset(data + "/herd", classes: Dictionary(uniqueKeysWithValues: ["cow", "goat", "ewe", "ram", "bull", "lamb", "calf", "kid"]
            .map { ($0, 9) }))  // three chunks of 32 files
        let herd = try SynthdProcess.run(["check", data + "/herd"])
        #expect(herd.status == 0 && herd.output.hasPrefix("\(data)/herd: 72 images in 8 classes"), "\(herd.output)")

        try makeDataset(data + "/junk", classes: [:])
        try FileManager.default.createDirectory(atPath: data + "/junk/cat", withIntermediateDirectories: true)
        try Data("text".utf8).write(to: URL(fileURLWithPath: data + "/junk/cat/a.jpg"))
        let unusable = try SynthdProcess.run(["check", data + "/junk"])
        #expect(unusable.status == 65 && unusable.output.contains("the daemon would not train it: \(data)/junk: no readable images"),
                "\(unusable)")
        // In the daemon's spool, a link out of it is not followed, as the daemon does not follow it.
        let outside = try temporaryFolder("outside")
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try makeDataset(outside, classes: ["cat": 1])
        try FileManager.default.createSymbolicLink(atPath: data + "/pets/cat/far.png", withDestinationPath: outside + "/cat/0.png")
        try "[paths]\nspool = \"\(data)\"\nstate = \"\(data)/.state\"\n".write(toFile: data + "/daemon.toml", atomically: true, encoding: .utf8)
        let confined = try SynthdProcess.run(["check", data + "/pets", "--config", data + "/daemon.toml"])
        #expect(confined.status == 0 && confined.output.contains("far.png: a symbolic link that leads out of"), "\(confined.output)")
        #expect(confined.output.contains("model: a new 32x32 class-conditional GAN"), "\(confined.output)")
        // With a model in the daemon's state folder for it: trained on, not made anew. The
        // daemon has not trained it yet, so a job gives it a training's budget, not a fine-tuning's.
        let trained = try SynthdProcess.run(["train", data + "/pets", "--state", data + "/.state/datasets/pets", "--steps", "2", "--batch", "4"])
        #expect(trained.status == 0, "\(trained.output)")
        let again = try SynthdProcess.run(["check", data + "/pets", "--config", data + "/daemon.toml"])
        #expect(again.output.contains("model: the daemon's 32x32 model of 2 steps: its first training goes on, up to 20m00s of it"),
                "\(again.output)")
        // A cluster's record that cannot be read (a wrong address) is one note, and the model is read without it.
        try "[paths]\nspool = \"\(data)\"\nstate = \"\(data)/.state\"\n[cluster]\ndatabase = \"postgresql://u@h/d?port=99999\"\n"
            .write(toFile: data + "/cluster.toml", atomically: true, encoding: .utf8)
        let unreachable = try SynthdProcess.run(["check", data + "/pets", "--config", data + "/cluster.toml"])
        let mentions = unreachable.output.split(separator: "\n").filter { $0.contains("99999") }
        #expect(unreachable.status == 0 && mentions.count == 1 && mentions[0].hasPrefix("note: the cluster's record of pets cannot be read ("),
                "\(unreachable.output)")
        #expect(!unreachable.output.contains("ExitCode"), "\(unreachable.output)")
        let anywhere = try SynthdProcess.run(["check", data + "/pets"])
        #expect(anywhere.output.contains("7 images in 2 classes") && !anywhere.output.contains("far.png"), "\(anywhere.output)")
        try "[training]\nminutess = 3\n".write(toFile: data + "/pets/synthd.toml", atomically: true, encoding: .utf8)
        let misspelt = try SynthdProcess.run(["check", data + "/pets"])
        #expect(misspelt.status == 78 && misspelt.output.contains("\(data)/pets/synthd.toml"), "\(misspelt)")
    }

    @Test func forgetDeletesARemovedDatasetAndRefusesTheRest() throws {
        let root = try temporaryFolder("forget")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "[paths]\nspool = \"spool\"\noutput = \"out\"\nstate = \"state\"\n".write(toFile: root + "/synthd.toml", atomically: true, encoding: .utf8)
        for folder in ["spool/live", "state/datasets/gone", "state/datasets/live"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        try Data(count: 10_000).write(to: URL(fileURLWithPath: root + "/state/datasets/gone/checkpoint.ckpt"))
        let gone = try SynthdProcess.run(["forget", "gone/", "--config", root + "/synthd.toml"])  // as shell completion gives it
        #expect(gone.status == 0 && gone.output.contains("gone: its model and state deleted"), "\(gone.output)")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/datasets/gone"))
        let refused = try SynthdProcess.run(["forget", "live", "nothing", "--config", root + "/synthd.toml"])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("\(root)/spool/live is still in the spool"), "\(refused.output)")
        #expect(refused.output.contains("no dataset 'nothing' in \(root)/state/datasets or \(root)/out: nothing deleted"), "\(refused.output)")
        #expect(FileManager.default.fileExists(atPath: root + "/state/datasets/live"))
    }

    /// `--device cuda` where there is no usable GPU exits 69 (EX_UNAVAILABLE) naming what is
    /// missing, before anything is read or written; the daemon does the same at start.
    @Test(.enabled(if: !FileManager.default.fileExists(atPath: "/dev/nvidiactl"), "this machine has an NVIDIA GPU"))
    func cudaWithoutAGPUNamesWhatIsMissing() throws {
        let state = try temporaryFolder("state")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let train = try SynthdProcess.run(["train", "/nonexistent", "--state", state + "/model", "--steps", "1", "--device", "cuda"])
        #expect(train.status == 69, "\(train.output)")
        #expect(train.output.contains("--device cuda:0: no usable GPU: the NVIDIA driver (libcuda.so.1) not found"), "\(train.output)")
        #expect(!FileManager.default.fileExists(atPath: state + "/model"))
        let run = try SynthdProcess.run(["run", "--spool", state + "/s", "--output", state + "/o", "--state", state + "/t",
                                         "--device", "cuda:1"])
        #expect(run.status == 69, "\(run.output)")
        #expect(run.output.contains("--device cuda:1: no usable GPU"), "\(run.output)")
        let info = try SynthdProcess.run(["info"])
        #expect(info.output.contains("device (auto): cpu: no usable GPU"), "\(info.output)")
    }

    /// The device line says how the CPU's products are computed: in bfloat16 by default where
    /// the CPU has a kernel for them (AMX tiles, AVX512-BF16), else FP32 with Winograd's
    /// convolutions; plain FP32 with `--fp32`; FP32 with Winograd with `--winograd`; `info` too.
    @Test func theDeviceLineNamesTheProducts() throws {
        let state = try temporaryFolder("state")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let byDefault = try SynthdProcess.run(["train", "/nonexistent", "--state", state + "/a", "--steps", "1", "--device", "cpu"])
        let fp32 = try SynthdProcess.run(["train", "/nonexistent", "--state", state + "/b", "--steps", "1", "--device", "cpu", "--fp32"])
        let winograd = try SynthdProcess.run(["train", "/nonexistent", "--state", state + "/c", "--steps", "1", "--device", "cpu",
                                              "--winograd"])
        // The kernel as synthd's own process chose it (it measures against the OpenBLAS it
        // loads, which can differ from this test process's: `BFloat16Payoff`).
        let info = try SynthdProcess.run(["info"])
        let kernel = BFloat16Kernel.allCases.first { info.output.contains("bfloat16 products: \($0.description) for training") }
        #expect(kernel == nil || kernel!.isAvailable)
        // Without one: half precision where the CPU has AVX512-FP16 (`ComputeContext.halfColumns`), else FP32.
        let withoutKernel = PanelKernel.avx512Half.isAvailable
            ? "half-precision products by AVX512-FP16, Float sums (this CPU has no bfloat16 kernel faster than FP32)"
            : ComputeContext.winogradPaysOff ? "FP32 products, 4/2/1 convolutions by Winograd (this CPU has no bfloat16 kernel faster than FP32)"
            : "FP32 products (this CPU has no bfloat16 kernel faster than FP32)"
        #expect(byDefault.output.contains(kernel.map { "bfloat16 products by \($0.description)" } ?? withoutKernel), "\(byDefault.output)")
        #expect(fp32.output.contains("), FP32 products") && !fp32.output.contains("bfloat16 products")
                    && !fp32.output.contains("Winograd"), "\(fp32.output)")
        #expect(winograd.output.contains("), FP32 products, 4/2/1 convolutions by Winograd"), "\(winograd.output)")
        #expect(kernel != nil || info.output.contains("bfloat16 products: none"), "\(info.output)")
        #expect(kernel != nil || info.output.contains("half precision by AVX512-FP16") == PanelKernel.avx512Half.isAvailable,
                "\(info.output)")
        // Where the CPU has AVX512-BF16, info says what it measured and the line it is held to.
        #expect(info.output.contains("AVX512-BF16 dot products: ") == BFloat16GEMM.isAvailable, "\(info.output)")
    }

    /// A new model keeps the learning rate, moving-average decay, discriminator, width, consistency and LeCam weights it was asked for.
    @Test func learningRateAndAverageDecayAreRecorded() throws {
        let data = try temporaryFolder("data"), state = try temporaryFolder("state")
        defer { for path in [data, state] { try? FileManager.default.removeItem(atPath: path) } }
        try makeDataset(data, classes: ["cat": 2, "dog": 2])
        let run = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--batch", "4",
                                         "--learning-rate", "0.001", "--ema-decay", "0.99", "--discriminator", "spectral",
                                         "--discriminator-learning-rate", "0.004", "--base-channels", "16",
                                         "--consistency-weight", "10", "--lecam-weight", "0.3", "--mode-seeking-weight", "0.5"])
        #expect(run.status == 0, "\(run.output)")
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/model.json"))) as! [String: Any]
        let options = record["options"] as? [String: Any] ?? [:]
        let rate = (options["learningRate"] ?? options["learning_rate"]) as? Double
        let decay = (options["emaDecay"] ?? options["ema_decay"]) as? Double
        #expect(rate.map { abs($0 - 0.001) < 1e-9 } == true, "\(options)")
        let dRate = (options["discriminatorLearningRate"] ?? options["discriminator_learning_rate"]) as? Double
        #expect(dRate.map { abs($0 - 0.004) < 1e-9 } == true, "\(options)")
        #expect(decay.map { abs($0 - 0.99) < 1e-6 } == true, "\(options)")
        let consistency = (options["consistencyWeight"] ?? options["consistency_weight"]) as? Double
        #expect(consistency.map { abs($0 - 10) < 1e-6 } == true, "\(options)")
        #expect((options["leCamWeight"] as? Double).map { abs($0 - 0.3) < 1e-6 } == true, "\(options)")
        #expect((options["modeSeekingWeight"] as? Double).map { abs($0 - 0.5) < 1e-6 } == true, "\(options)")
        let configuration = record["configuration"] as? [String: Any] ?? [:]
        #expect(configuration["discriminatorNormalization"] as? String == "spectral", "\(configuration)")
        #expect(configuration["baseChannels"] as? Int == 16, "\(configuration)")
        let narrow = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--base-channels", "4"])
        #expect(narrow.status != 0 && narrow.output.contains("--base-channels must be in 8...256"))
        let negative = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--consistency-weight=-1"])
        #expect(negative.status != 0 && negative.output.contains("--consistency-weight must be 0 or more"))
        let negativeLeCam = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--lecam-weight=-1"])
        #expect(negativeLeCam.status != 0 && negativeLeCam.output.contains("--lecam-weight must be 0 or more"))
        let negativeModeSeeking = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--mode-seeking-weight=-1"])
        #expect(negativeModeSeeking.status != 0
                && negativeModeSeeking.output.contains("--mode-seeking-weight must be auto or a weight in 0...100, not -1"),
                "\(negativeModeSeeking.output)")
        let wrong = try SynthdProcess.run(["train", data, "--state", state, "--steps", "1", "--discriminator", "layer"])
        #expect(wrong.status != 0 && wrong.output.contains("--discriminator must be batch or spectral"))
    }

    /// Into a pipe (`| tee`), what a long command prints is readable line by line while it
    /// runs, not when it ends: killed, it would otherwise lose everything it had printed.
    @Test func outputIntoAPipeComesLineByLine() throws {
        let real = try temporaryFolder("real"), test = try temporaryFolder("test")
        defer { for path in [real, test] { try? FileManager.default.removeItem(atPath: path) } }
        for folder in [real, test] { try makeDataset(folder, classes: ["cat": 8, "mouse": 8]) }
        // The headline's classifiers take many seconds after the first lines are printed.
        let eval = try SynthdProcess(["eval", real, real, "--test", test, "--epochs", "1", "--min-steps", "200",
                                      "--seeds", "6", "--multiples", "0.5,1"])
        var text = ""
        while !text.contains("own-class share: ") {
            let data = eval.output.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        // Block-buffered, the line comes with the flush at exit, and the process is gone soon after.
        usleep(500_000)
        let stillRunning = eval.process.isRunning
        kill(eval.process.processIdentifier, SIGKILL)
        eval.process.waitUntilExit()
        #expect(text.contains("own-class share: 100.0% of 16 synthetic images") && stillRunning, "\(text)")
    }

    /// A test folder with a class the real and synthetic folders lack is refused before any
    /// classifier trains (it crashed the accuracy's count after the training).
    @Test func evalRefusesATestClassWithoutRealImagesAtOnce() throws {
        let real = try temporaryFolder("real"), test = try temporaryFolder("test")
        defer { for path in [real, test] { try? FileManager.default.removeItem(atPath: path) } }
        try makeDataset(real, classes: ["cat": 4, "mouse": 4])
        try makeDataset(test, classes: ["cat": 2, "dog": 2])
        let run = try SynthdProcess.run(["eval", real, real, "--test", test, "--epochs", "1", "--seeds", "1"])
        #expect(run.status != 0)
        #expect(run.output.contains("\(test): test classes with no real or synthetic images: dog (the classes are cat, mouse)"), "\(run.output)")
        #expect(!run.output.contains("trained classifier") && !run.output.contains("Usage:"), "refused before training: \(run.output)")

        // A test folder without some class: that class has no accuracy or gain to show (it
        // printed 0.0% and +0.0).
        try FileManager.default.removeItem(atPath: test + "/dog")
        let fewer = try SynthdProcess.run(["eval", real, real, "--test", test, "--epochs", "1", "--min-steps", "20", "--seeds", "1",
                                           "--multiples", "1"])
        #expect(fewer.status == 0, "\(fewer.output)")
        #expect(fewer.output.contains("\n  mouse: no test images\n"), "\(fewer.output)")
        #expect(fewer.output.contains("    per class, mean gain: cat +") && !fewer.output.contains("mouse +"), "\(fewer.output)")
        #expect(!fewer.output.contains("is the real folder itself"), "\(fewer.output)")
        // Tested on the real folder itself (a path mixed up): measured, and said to mean nothing.
        let onItself = try SynthdProcess.run(["eval", real, real, "--test", real + "/", "--epochs", "1", "--min-steps", "20", "--seeds", "1",
                                              "--multiples", "1", "--headline-only"])
        #expect(onItself.status == 0 && onItself.output.contains("warning: --test \(real)/ is the real folder itself: the accuracies "
            + "below are on images the classifiers trained on"), "\(onItself.output)")
    }

    /// `synthd eval` end to end: synthetic images that look like the real ones are all put in
    /// their own class and every report line is there; the mixing options are checked.
    @Test func evalReportsSharesDistancesAndTestAccuracies() throws {
        let real = try temporaryFolder("real"), synth = try temporaryFolder("synth"), test = try temporaryFolder("test")
        defer { for path in [real, synth, test] { try? FileManager.default.removeItem(atPath: path) } }
        for folder in [real, synth, test] { try makeDataset(folder, classes: ["cat": 8, "mouse": 8]) }
        let run = try SynthdProcess.run(["eval", real, synth, "--test", test, "--epochs", "1", "--real-share", "0.5",
                                         "--min-steps", "200", "--seeds", "2"])
        #expect(run.status == 0, "\(run.output)")
        // The headline first: real alone against real + synthetic concatenated, per amount.
        #expect(run.output.contains("headline: real + synthetic, concatenated and sampled uniformly, against real alone; "
            + "16 real test images, 2 classifier seeds\n  real alone (16 images): 100.0% (100.0 to 100.0)\n"
            + "  + 0.5x real, the daemon's default, 8 synthetic: 100.0% (100.0 to 100.0), gain +0.0 (+0.0 to +0.0), "
            + "95% interval of the mean +0.0 to +0.0, 0 of 2 seeds higher\n    per class, mean gain: cat +0.0, mouse +0.0\n"
            + "  + 1x real, the whole synthetic folder, 16 synthetic: 100.0%"), "\(run.output)")
        #expect(run.output.contains("  2x real: not measured (the synthetic folder has no more images than the row \"1x real\" mixes)"),
                "\(run.output)")
        #expect(run.output.contains("own-class share: 100.0% of 16 synthetic images"), "\(run.output)")
        #expect(run.output.contains("frechet distance (classifier features):"))
        for name in ["cat", "mouse"] { #expect(run.output.contains("  \(name): 100.0%, 100.0%, 100.0%"), "\(run.output)") }
        #expect(run.output.contains("test accuracy on 16 real images: real only 100.0%, synthetic only 100.0% (16 images), "
            + "real + synthetic 100.0% (50% of each batch real)"), "\(run.output)")

        #expect(!run.output.contains("against as many real images"), "as many synthetic as real: no extra line\n\(run.output)")

        // Fewer synthetic images than real: the synthetic-only classifier is also compared
        // with one trained on as many real images. --seeds 0: the secondary lines only.
        let fewer = try temporaryFolder("fewer")
        defer { try? FileManager.default.removeItem(atPath: fewer) }
        try makeDataset(fewer, classes: ["cat": 4, "mouse": 4])
        let matched = try SynthdProcess.run(["eval", real, fewer, "--test", test, "--epochs", "1", "--min-steps", "200",
                                             "--seeds", "0"])
        #expect(matched.status == 0 && !matched.output.contains("headline"), "\(matched.output)")
        let line = matched.output.split(separator: "\n").first { $0.hasPrefix("synthetic only against as many real images (8): ") }
        #expect(line?.contains("synthetic 100.0%, real ") == true && line?.hasSuffix(" points") == true, "\(matched.output)")

        let augmented = try SynthdProcess.run(["eval", real, synth, "--test", test, "--epochs", "1", "--augment", "--min-steps", "200",
                                               "--seeds", "1", "--multiples", "1", "--no-whole-folder"])
        #expect(augmented.status == 0, "\(augmented.output)")
        #expect(augmented.output.contains("  + 1x real, 16 synthetic: 100.0%"), "\(augmented.output)")
        #expect(augmented.output.contains("test accuracy on 16 real images: real only 100.0%"), "\(augmented.output)")
        let headline = try SynthdProcess.run(["eval", real, synth, "--test", test, "--epochs", "1", "--min-steps", "200",
                                              "--seeds", "1", "--multiples", "0.5", "--headline-only"])
        #expect(headline.status == 0 && headline.output.contains("  real alone (16 images): 100.0%"), "\(headline.output)")
        #expect(headline.output.contains("  + the whole synthetic folder (1x), 16 synthetic: 100.0%"), "\(headline.output)")
        #expect(!headline.output.contains("secondary protocols") && !headline.output.contains("synthetic only"), "\(headline.output)")
        let noHeadline = try SynthdProcess.run(["eval", real, synth, "--test", test, "--seeds", "0", "--headline-only"])
        #expect(noHeadline.status != 0 && noHeadline.output.contains("--headline-only needs --test and --seeds 1 or more"))
        let multiples = try SynthdProcess.run(["eval", real, synth, "--multiples", "1,x"])
        #expect(multiples.status != 0 && multiples.output.contains("--multiples wants positive numbers"))
        let steps = try SynthdProcess.run(["eval", real, synth, "--min-steps=-1"])
        #expect(steps.status != 0 && steps.output.contains("--min-steps must be 0 or more"))

        let share = try SynthdProcess.run(["eval", real, synth, "--test", test, "--real-share", "1"])
        #expect(share.status != 0 && share.output.contains("--real-share must be in (0, 1)"))
        let both = try SynthdProcess.run(["eval", real, synth, "--test", test, "--real-share", "0.5", "--synthetic-first"])
        #expect(both.status != 0 && both.output.contains("not both"))
        let noTest = try SynthdProcess.run(["eval", real, synth, "--synthetic-first"])
        #expect(noTest.status != 0 && noTest.output.contains("--synthetic-first needs --test"))
    }
}
