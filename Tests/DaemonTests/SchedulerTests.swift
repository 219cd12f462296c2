@testable import Daemon
import Engine
import FileTestSupport
import Foundation
import GAN
import Imaging
import Logging
import LogTestSupport
import Spool
import Testing

@Suite struct SchedulerTests {
    /// A scheduler on a temporary spool with no settle time.
    func makeScheduler() throws -> (Scheduler, root: String) { try makeTestScheduler() }

    func addImage(_ root: String, _ relative: String) throws {
        let path = root + "/spool/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("not decoded by the scheduler".utf8).write(to: URL(fileURLWithPath: path))
    }

    /// An image dropped into `dataset` and the dataset settled at once.
    func drop(_ relative: String, into scheduler: Scheduler, root: String) throws {
        try addImage(root, relative)
        let dataset = String(relative.split(separator: "/")[0])
        scheduler.handle(.changed(dataset: dataset))
        scheduler.takeSettled()
    }

    /// A new scheduler on the same folders: the daemon after a restart (or a kill).
    func restarted(_ scheduler: Scheduler) throws -> Scheduler {
        try Scheduler(configuration: scheduler.configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
    }

    func queued(_ scheduler: Scheduler) -> [String] {
        (try! scheduler.queue.snapshot()).filter { $0.state == .queued }.map { "\($0.kind.rawValue) \($0.dataset)" }
    }

    /// `dataset` (one image of class `klass`) dropped, trained and published as the jobs would
    /// leave it: a model record of step 10 and the published generation of the daemon's settings.
    func trainAndPublish(_ dataset: String, klass: String, into scheduler: Scheduler, root: String) throws {
        try drop("\(dataset)/\(klass)/1.png", into: scheduler, root: root)
        let train = try #require(scheduler.startNext())
        let fingerprint = try DatasetFingerprint.of(root + "/spool/\(dataset)", confinedTo: nil)
        scheduler.finish(train, .completed(fingerprint: fingerprint.value), stopping: false)
        try StateFolder(scheduler.store.folder(dataset)).writeRecord(ModelRecord(
            configuration: ModelConfiguration(), classes: [klass], mode: .grey, imageWidth: 28, imageHeight: 28,
            steps: 10, imagesAtLastRun: 1, options: TrainingOptions(), checkpointID: "step-10"))
        let generate = try #require(scheduler.startNext())
        scheduler.store.update(dataset) { $0.generation = scheduler.configuration.generationID(checkpoint: "step-10") }
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
    }

    /// Writes `text` as `dataset`'s synthd.toml, and the daemon hears of it.
    func writeSettings(_ text: String, _ dataset: String, into scheduler: Scheduler, root: String) throws {
        try text.write(toFile: root + "/spool/\(dataset)/synthd.toml", atomically: true, encoding: .utf8)
        scheduler.handle(.changed(dataset: dataset))
        scheduler.takeSettled()
    }

    /// The generation `dataset`'s model (step 10) makes with its synthd.toml now.
    func wantedGeneration(_ dataset: String, _ scheduler: Scheduler, root: String) throws -> String {
        try Configuration.forDataset(at: root + "/spool/\(dataset)", base: scheduler.configuration).generationID(checkpoint: "step-10")
    }

    @Test func aSynthdTomlChangedWhileItsGenerationRanGeneratesAgain() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try trainAndPublish("pets", klass: "a", into: scheduler, root: root)
        let seen = scheduler.store.get("pets").settingsSeen
        #expect(seen == "none", "the outputs are those of no synthd.toml")
        try writeSettings("[generation]\ntemperature = 1\n", "pets", into: scheduler, root: root)
        #expect(queued(scheduler) == ["generate pets"])
        let generation = try #require(scheduler.startNext())
        let readByTheJob = try wantedGeneration("pets", scheduler, root: root)
        // Changed again while the job writes the images of the file it read when it began.
        try writeSettings("[generation]\ntemperature = 1.2\n", "pets", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty, "not while its generation runs")
        scheduler.store.update("pets") { $0.generation = readByTheJob }
        scheduler.finish(generation, .completed(fingerprint: nil), stopping: false)
        #expect(queued(scheduler) == ["generate pets"], "the outputs are not those its synthd.toml asks for now")
        #expect(scheduler.store.get("pets").phase == .queued)
        #expect(scheduler.store.get("pets").settingsSeen == seen, "not followed yet")

        let again = try #require(scheduler.startNext())
        let wanted = try wantedGeneration("pets", scheduler, root: root)
        scheduler.store.update("pets") { $0.generation = wanted }
        scheduler.finish(again, .completed(fingerprint: nil), stopping: false)
        #expect(queued(scheduler).isEmpty)
        let runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .done)
        #expect(runtime.settingsSeen == DatasetFingerprint.settingsKey(folder: root + "/spool/pets"), "the outputs are the file's now")
        // A change that asks for nothing new is followed at once.
        try writeSettings("# the same\n[generation]\ntemperature = 1.2\n", "pets", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty)
        #expect(scheduler.store.get("pets").settingsSeen == DatasetFingerprint.settingsKey(folder: root + "/spool/pets"))
    }

    @Test func aSynthdTomlThatDoesNotReadIsKeptInTheRecordUntilMended() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try trainAndPublish("pets", klass: "a", into: scheduler, root: root)
        try writeSettings("[generation]\ntempreature = 1\n", "pets", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty)
        var runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .done, "its outputs stay published")
        let error = try #require(runtime.settingsError)
        #expect(error.contains("\(root)/spool/pets/synthd.toml") && error.contains("tempreature"))
        #expect(runtime.settingsSeen == DatasetFingerprint.settingsKey(folder: root + "/spool/pets"))
        let status = try #require(try DatasetStatus.read(scheduler.configuration.state).first { $0.dataset == "pets" })
        #expect(status.summary().contains("\n  warning: its synthd.toml does not read, and its changes are not followed until it does "
            + "(the outputs are of the settings before): \(root)/spool/pets/synthd.toml"))
        // Mended: followed (here another temperature: a generation) and the error gone.
        try writeSettings("[generation]\ntemperature = 1\n", "pets", into: scheduler, root: root)
        runtime = scheduler.store.get("pets")
        #expect(runtime.settingsError == nil)
        #expect(queued(scheduler) == ["generate pets"])
        #expect(try !(DatasetStatus.read(scheduler.configuration.state).first { $0.dataset == "pets" }?.summary().contains("does not read") ?? true))
    }

    /// A new dataset whose settings write nothing (balanced, `enlarge = 0`) trains no model:
    /// it is done with nothing to write, `synthd wait` takes it as ready, and a rescan leaves it
    /// so; an image that unbalances it, a synthd.toml that asks for images, or a reload of the
    /// daemon's configuration that does, trains it.
    @Test func aDatasetThatAsksForNoImagesTrainsNoModelUntilItDoes() throws {
        let lines = CapturedLines()
        let (scheduler, root) = try makeTestScheduler(lines: lines) { $0.enlarge = 0 }
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "pets/cat/1.png")
        try drop("pets/dog/1.png", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty)
        var runtime = scheduler.store.get("pets")
        let fingerprint = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        #expect(runtime.phase == .done && runtime.nothingToWriteFor == fingerprint.value && runtime.trainedFingerprint == nil)
        #expect(runtime.detail?.hasPrefix("nothing to write (balance: every class topped up to the largest class (1)): "
                                          + "no model is trained until") == true, "\(runtime.detail ?? "")")
        #expect(lines.all.contains { $0.contains("2 images in 2 classes: nothing to write") }, "\(lines.all)")
        func readiness() throws -> DatasetReadiness {
            DatasetReadiness.of(.init(name: "pets", spool: root + "/spool", present: true,
                                      fingerprint: try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil),
                                      runtime: scheduler.store.get("pets"), published: nil))
        }
        #expect(try readiness() == .ready(outputs: nil))
        // Looked at again unchanged (a rescan): still nothing, and not said again.
        scheduler.handle(.rescan(reason: "a test"))
        scheduler.takeSettled()
        scheduler.poll()
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty && scheduler.store.get("pets").phase == .done)
        #expect(lines.all.filter { $0.contains("nothing to write") }.count == 1, "\(lines.all)")

        // Its synthd.toml asks for images: a new dataset's training.
        try "[generation]\nenlarge = 0.5\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true, encoding: .utf8)
        #expect(try readiness() != .ready(outputs: nil), "a synthd.toml edited since is waited for")
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        runtime = scheduler.store.get("pets")
        #expect(runtime.nothingToWriteFor == nil && runtime.detail?.hasPrefix("new dataset: 2 images") == true)
        #expect(try readiness() != .ready(outputs: nil))

        // An image that unbalances a dataset asking for no more than balance.
        try addImage(root, "bags/tote/1.png")
        try drop("bags/clutch/1.png", into: scheduler, root: root)
        #expect(queued(scheduler) == ["train pets"])
        try drop("bags/clutch/2.png", into: scheduler, root: root)
        #expect(queued(scheduler) == ["train pets", "train bags"])

        // The daemon's configuration reloaded with images asked for.
        try addImage(root, "cups/mug/1.png")
        try drop("cups/glass/1.png", into: scheduler, root: root)
        #expect(scheduler.store.get("cups").nothingToWriteFor != nil)
        var enlarged = scheduler.configuration
        enlarged.enlarge = 1
        scheduler.reload(enlarged)
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets", "train bags", "train cups"])
    }

    /// A job that ends after its dataset left the spool leaves the record "removed", with the
    /// removal's words: a training's last words ("training the judge for the class check")
    /// stayed beside "removed", and a generation's end said the dataset was "done".
    @Test func aJobEndingAfterItsDatasetLeftLeavesItRemoved() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        try drop("cups/mug/1.png", into: scheduler, root: root)
        let fingerprint = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        let train = try #require(scheduler.startNext())
        #expect(train.dataset == "pets")
        scheduler.store.update("pets") { $0.phase = .training; $0.detail = "training the judge for the class check" }
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        scheduler.handle(.removed(dataset: "pets"))
        scheduler.store.update("pets") { $0.detail = "training the judge for the class check: 40%" }  // the worker, still at it
        try StateFolder(scheduler.store.folder("pets")).writeRecord(ModelRecord(
            configuration: ModelConfiguration(), classes: ["cat"], mode: .grey, imageWidth: 28, imageHeight: 28,
            steps: 10, imagesAtLastRun: 1, options: TrainingOptions(), checkpointID: "step-10"))
        scheduler.finish(train, .completed(fingerprint: fingerprint.value), stopping: false)
        var runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .removed && runtime.detail == "folder left the spool; model and outputs kept", "\(runtime)")

        let cups = try #require(scheduler.startNext())
        scheduler.finish(cups, .completed(fingerprint: try DatasetFingerprint.of(root + "/spool/cups", confinedTo: nil).value), stopping: false)
        let generate = try #require(scheduler.startNext())
        #expect(generate.kind == .generate && generate.dataset == "cups")
        try FileManager.default.removeItem(atPath: root + "/spool/cups")
        scheduler.handle(.removed(dataset: "cups"))
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
        runtime = scheduler.store.get("cups")
        #expect(runtime.phase == .removed && runtime.detail == "folder left the spool; it had no model yet", "\(runtime)")
    }

    @Test func aSettledDatasetIsTrainedOnceThenGenerated() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"], "the same work is queued once")
        #expect(scheduler.store.get("pets").phase == .queued)

        let job = try #require(scheduler.startNext())
        let fingerprint = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        scheduler.finish(job, .completed(fingerprint: fingerprint.value), stopping: false)
        #expect(queued(scheduler) == ["generate pets"])

        // Nothing new (a touch, a .ready file): no training. A new image: fine-tuning.
        let generate = try #require(scheduler.startNext())
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
        #expect(scheduler.store.get("pets").phase == .done)
        try Data().write(to: URL(fileURLWithPath: root + "/spool/pets/.ready"))
        scheduler.handle(.ready(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty)
        #expect(scheduler.store.get("pets").phase == .done)
        try addImage(root, "pets/dog/1.png")
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
    }

    /// A change made while the first training runs is queued as a change, not as a new dataset.
    @Test func aChangeDuringTheFirstTrainingIsSaidToBeOne() throws {
        let (plain, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: plain.configuration, logger: .capturing(into: lines))
        try drop("pets/cat/1.png", into: scheduler, root: root)
        #expect(scheduler.store.get("pets").detail?.hasPrefix("new dataset") == true)
        let job = try #require(scheduler.startNext())
        #expect(job.kind == .train)
        // The worker has read the files it trains on (JobRunner sets this as it starts).
        scheduler.store.update("pets") { $0.trainingFingerprint = try? DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil).value }
        lines.removeAll()
        try drop("pets/dog/1.png", into: scheduler, root: root)
        #expect(queued(scheduler) == ["train pets"])
        #expect(lines.all.contains { $0.hasPrefix("info dataset changed before its first model was made: 2 images in 2 classes") }, "\(lines.all)")
        #expect(!lines.all.contains { $0.contains("new dataset") }, "\(lines.all)")
    }

    /// Images dropped straight into a dataset folder, with no class folders (the commonest
    /// first mistake), are not "no images yet": status says where they are and what to do.
    @Test func imagesOutsideClassFoldersAreSaid() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("flat/1.png", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty)
        let detail = scheduler.store.get("flat").detail ?? ""
        #expect(detail.hasPrefix("no images in class folders: 1 image lies directly in \(root)/spool/flat, outside any class folder"), "\(detail)")
        try drop("empty/cat/notes.txt", into: scheduler, root: root)
        #expect(scheduler.store.get("empty").detail == "no images yet (expected <dataset>/<class>/<image>)")
        // Images of a format synthd does not read: named, not "no images yet".
        try drop("gif/cat/1.gif", into: scheduler, root: root)
        #expect(scheduler.store.get("gif").detail == "no images synthd can read: 1 file not read (\(root)/spool/gif/cat/1.gif: "
            + "a GIF image, not read: synthd reads PNG, JPEG, WebP, BMP, PGM/PPM and TIFF (convert it, e.g. with ImageMagick's `mogrify -format png *.gif`, "
            + "and remove the original))")
        try FileManager.default.createDirectory(atPath: root + "/spool/flat/cat", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: root + "/spool/flat/1.png", toPath: root + "/spool/flat/cat/1.png")
        scheduler.handle(.changed(dataset: "flat"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train flat"])
    }

    /// Images in folders below a class folder are the class's: one added there, or a file of
    /// the same name in another such folder, is a change.
    @Test func imagesBelowAClassFolderAreInTheFingerprint() throws {
        let root = NSTemporaryDirectory() + "synthd-fingerprint-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "pets/cat/2019/1.png")
        let first = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        #expect(first.images == 1 && first.classes == 1)
        try addImage(root, "pets/cat/2020/1.png")
        let second = try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil)
        #expect(second.images == 2 && second.value != first.value)
        try FileManager.default.moveItem(atPath: root + "/spool/pets/cat/2020", toPath: root + "/spool/pets/cat/2021")
        #expect(try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil).value != second.value, "a renamed folder is a change")
    }

    /// A synthd.toml that asks for other outputs (here another temperature) regenerates with
    /// the trained model; a touch, or settings that make the published generation, do not.
    @Test func changedGenerationSettingsRegenerateWithoutTraining() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try trainAndPublish("pets", klass: "cat", into: scheduler, root: root)

        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty, "a touch changes nothing")
        try "[generation]\ntemperature = 1.3\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true, encoding: .utf8)
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["generate pets"])
        #expect(scheduler.store.get("pets").detail == "generation settings changed")
    }

    /// New [generation] defaults by a reload generate again every trained dataset whose
    /// outputs they change, as a restart does (a reload did it only for datasets touched
    /// after it); a dataset whose own synthd.toml sets them, and other keys, queue nothing.
    @Test func aReloadWithOtherGenerationDefaultsGeneratesAgain() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["pets", "cars"] { try trainAndPublish(name, klass: "a", into: scheduler, root: root) }
        try "[generation]\ntemperature = 1\n".write(toFile: root + "/spool/cars/synthd.toml", atomically: true, encoding: .utf8)
        let cars = try Configuration.forDataset(at: root + "/spool/cars", base: scheduler.configuration)
        scheduler.store.update("cars") { $0.generation = cars.generationID(checkpoint: "step-10") }  // as its file asks
        var other = scheduler.configuration
        other.settleSeconds = 5
        scheduler.reload(other)
        #expect(queued(scheduler).isEmpty, "no generation key changed")
        other.temperature = 1.3
        scheduler.reload(other)
        #expect(queued(scheduler) == ["generate pets"], "cars sets its own temperature")
        #expect(scheduler.store.get("pets").detail == "generation settings changed in the daemon's configuration")
    }

    @Test func timeSlicesTakeTurns() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "big/a/1.png")
        try addImage(root, "small/a/1.png")
        scheduler.handle(.changed(dataset: "big"))
        scheduler.takeSettled()
        scheduler.handle(.changed(dataset: "small"))
        scheduler.takeSettled()
        let big = try #require(scheduler.startNext())
        #expect(big.dataset == "big")
        scheduler.finish(big, .sliceEnded(remainingSeconds: 50, budgetSeconds: 60), stopping: false)
        let next = try #require(scheduler.startNext())
        #expect(next.dataset == "small", "the small dataset's turn comes before big's second slice")
        let requeued = try #require((try scheduler.queue.snapshot()).first { $0.id == big.id })
        #expect(requeued.remainingSeconds == 50 && requeued.budgetSeconds == 60 && requeued.state == .queued)
    }

    @Test func aRemovedDatasetIsCancelledAndKept() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        let job = try #require(scheduler.startNext())
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        scheduler.handle(.removed(dataset: "pets"))
        #expect(scheduler.isCancelled("pets"), "the running worker is told to stop")
        #expect((try scheduler.queue.snapshot()).first { $0.id == job.id }?.state == .cancelled)
        #expect(scheduler.store.get("pets").phase == .removed)
        // Dropped in again before the cancelled worker has stopped: the new job waits for it.
        try drop("pets/cat/1.png", into: scheduler, root: root)
        #expect(queued(scheduler) == ["train pets"])
        #expect(scheduler.isCancelled("pets"), "the old worker is still told to stop")
        #expect(scheduler.startNext(busy: ["pets"]) == nil, "no second worker on the same state folder")
        scheduler.finish(job, .stopped(remainingSeconds: 10, budgetSeconds: 20), stopping: false)
        #expect(scheduler.store.get("pets").phase == .queued)
        let again = try #require(scheduler.startNext(busy: []))
        #expect(again.dataset == "pets" && !scheduler.isCancelled("pets"))
    }

    /// A generation's `.partial` folder left by a node that stopped while it wrote it (a
    /// cluster's nodes sweep no leftovers at start) is removed once its dataset has left the
    /// spool and no job works on it, and only then: not while the dataset is in the spool (its
    /// next publication prunes it), has a job, or has a worker here.
    @Test func unpublishedGenerationsOfADatasetThatLeftAreSweptWhenNoJobWorksOnIt() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let generations = scheduler.configuration.output + "/" + OutputTree.generationsFolder
        func partial(_ dataset: String) throws -> String {
            let folder = generations + "/" + dataset + "/g1.partial/cat"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data([1]).write(to: URL(fileURLWithPath: folder + "/1.png"))
            return generations + "/" + dataset + "/g1.partial"
        }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        try drop("bags/tote/1.png", into: scheduler, root: root)
        let petsPartial = try partial("pets"), bagsPartial = try partial("bags"), gonePartial = try partial("gone")
        try FileManager.default.createDirectory(atPath: generations + "/gone/g0", withIntermediateDirectories: true)  // published

        #expect(scheduler.sweepUnpublished(busy: []) == [OutputTree.generationsFolder + "/gone/g1.partial"])
        #expect(!FileManager.default.fileExists(atPath: gonePartial))
        #expect(FileManager.default.fileExists(atPath: generations + "/gone/g0"), "published generations stay")
        #expect(FileManager.default.fileExists(atPath: petsPartial) && FileManager.default.fileExists(atPath: bagsPartial), "in the spool")

        // Left the spool: with a job still queued, with a worker here, then with neither.
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        try FileManager.default.removeItem(atPath: root + "/spool/bags")
        #expect(scheduler.sweepUnpublished(busy: []).isEmpty, "their training jobs are queued")
        scheduler.handle(.removed(dataset: "pets"))
        scheduler.handle(.removed(dataset: "bags"))
        // An unmounted spool's datasets have not left it: nothing is swept until it is back.
        scheduler.handle(.spoolMissing(reason: "the spool's file system was unmounted"))
        #expect(scheduler.sweepUnpublished(busy: []).isEmpty, "the spool is missing")
        scheduler.handle(.rescan(reason: "the spool's file system is mounted again"))
        #expect(scheduler.sweepUnpublished(busy: ["pets"]) == [OutputTree.generationsFolder + "/bags/g1.partial"])
        #expect(FileManager.default.fileExists(atPath: petsPartial), "its worker may still be writing it")
        #expect(scheduler.sweepUnpublished(busy: []) == [OutputTree.generationsFolder + "/pets/g1.partial"])
        #expect(scheduler.sweepUnpublished(busy: []).isEmpty)
    }

    /// While the watcher says the spool is gone (or its file system unmounted), `synthd status`
    /// says why nothing arrives; the rescan that says it is back clears that, as does the next
    /// start (a killed daemon's record).
    @Test func aMissingSpoolIsRecordedForStatusUntilItIsBack() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = scheduler.configuration.state
        #expect(SpoolAbsence.statusLine(stateFolder: state) == nil)
        scheduler.handle(.spoolMissing(reason: "/srv/spool: the spool's file system was unmounted"))
        let line = try #require(SpoolAbsence.statusLine(stateFolder: state))
        #expect(line.hasPrefix("nothing arrives since 20") && line.hasSuffix(": /srv/spool: the spool's file system was unmounted"), "\(line)")
        scheduler.handle(.rescan(reason: "/srv/spool: the spool's file system is mounted again"))
        #expect(SpoolAbsence.statusLine(stateFolder: state) == nil)

        scheduler.handle(.spoolMissing(reason: "gone"))
        _ = try restarted(scheduler)
        #expect(SpoolAbsence.statusLine(stateFolder: state) == nil, "a new daemon's watcher says it afresh")
    }

    @Test func aFullDiskIsRetriedLaterAndABadDatasetWaitsForAChange() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        let now = Date()
        var job = try #require(scheduler.startNext(now: now))
        scheduler.finish(job, .failed(message: "out/pets/cat/1.png: failed to write: No space left on device",
                                      retry: .afterSpaceFreed(folder: scheduler.configuration.output)),
                         stopping: false, now: now)
        #expect(scheduler.store.get("pets").phase == .failed)
        #expect(scheduler.store.get("pets").retryAt != nil)
        #expect(scheduler.startNext(now: now) == nil, "not before the retry time")
        job = try #require(scheduler.startNext(now: now.addingTimeInterval(3600)))
        #expect(job.attempts == 2, "failures in a row are counted")

        scheduler.finish(job, .failed(message: "pets/synthd.toml:2: unknown key", retry: .whenChanged), stopping: false)
        #expect((try scheduler.queue.snapshot()).first { $0.id == job.id }?.state == .failed)
        #expect(scheduler.store.get("pets").lastError == "pets/synthd.toml:2: unknown key")
        #expect(scheduler.startNext(now: now.addingTimeInterval(7200)) == nil)
    }

    /// A failure that is not the dataset's (an output that cannot be written, say) is retried
    /// for as long as it lasts, 30 s doubling up to every 15 minutes: an outage heals by itself
    /// instead of holding the dataset until its files change.
    @Test func aFailureNotTheDatasetsIsRetriedForAsLongAsItLasts() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        var now = Date()
        var delays: [Int] = []
        for _ in 1...8 {
            let job = try #require(scheduler.startNext(now: now), "retried after \(delays)")
            scheduler.finish(job, .failed(message: "out/pets: failed to create the folder: Read-only file system", retry: .later),
                             stopping: false, now: now)
            #expect(scheduler.store.get("pets").phase == .failed && scheduler.store.get("pets").quarantinedFor == nil)
            let retryAt = try #require(scheduler.store.get("pets").retryAt)
            delays.append(Int(retryAt.timeIntervalSince(now).rounded()))
            #expect(scheduler.startNext(now: now) == nil, "not before the retry time")
            now = retryAt.addingTimeInterval(1)
        }
        #expect(delays == [30, 60, 120, 240, 480, 900, 900, 900])
        let healed = try #require(scheduler.startNext(now: now))
        scheduler.finish(healed, .completed(fingerprint: "f"), stopping: false, now: now)
        #expect(queued(scheduler) == ["generate pets"])
    }

    @Test func unsafeNamesAndEmptyDatasetsAreNotQueued() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "bad\nname/cat/1.png")
        try FileManager.default.createDirectory(atPath: root + "/spool/empty/cat", withIntermediateDirectories: true)
        scheduler.handle(.changed(dataset: "bad\nname"))
        scheduler.handle(.changed(dataset: "empty"))
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty)
        #expect(scheduler.store.get("empty").phase == .waiting)
    }

    @Test func reconcileAtStartUpFindsChangesMadeWhileDown() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "pets/cat/1.png")
        try addImage(root, "gone/cat/1.png")
        scheduler.reconcile()
        scheduler.takeSettled()
        #expect(Set(queued(scheduler)) == ["train pets", "train gone"])

        // Down: one dataset deleted. The next start cancels its work.
        try FileManager.default.removeItem(atPath: root + "/spool/gone")
        var configuration = scheduler.configuration
        configuration.settleSeconds = 0
        let restarted = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        restarted.reconcile()
        restarted.takeSettled()
        #expect(queued(restarted) == ["train pets"])
        #expect(restarted.store.get("gone").phase == .removed)
    }

    /// A record that cannot be read (by hand, a damaged disk) is named in the log at start-up,
    /// and its dataset is taken afresh rather than skipped or failing the daemon.
    @Test func anUnreadableRecordIsNamedAndItsDatasetTakenAfresh() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        scheduler.store.update("pets") { $0.phase = .done }
        let record = scheduler.store.folder("pets") + "/daemon.json"
        try Data("{\"garbage".utf8).write(to: URL(fileURLWithPath: record))
        for job in try scheduler.queue.snapshot() { try scheduler.queue.markDone(job) }

        let lines = CapturedLines()
        let restarted = try Scheduler(configuration: scheduler.configuration,
                                      logger: .capturing(into: lines))
        #expect(lines.all.contains { $0.hasPrefix("warning \(record): unreadable record (") && $0.contains("starts afresh") },
                "\(lines.all)")
        restarted.reconcile()
        restarted.takeSettled()
        #expect(queued(restarted) == ["train pets"])
        #expect(RuntimeStore.read(record) != nil, "rewritten")
    }

    /// A damaged queue.json does not keep the daemon down: it is moved aside, said in the
    /// log, and the queue is rebuilt from the spool and the records (the dataset whose
    /// training was running is queued again).
    @Test func aDamagedQueueIsMovedAsideAndRebuilt() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        #expect(queued(scheduler) == ["train pets"])
        let queueFile = scheduler.configuration.state + "/queue.json"
        try Data("[{\"id\": 1, \"dataset\": \"pets\", \"kind\": \"tra".utf8).write(to: URL(fileURLWithPath: queueFile))

        let lines = CapturedLines()
        let restarted = try Scheduler(configuration: scheduler.configuration,
                                      logger: .capturing(into: lines))
        #expect(lines.all.contains {
            $0.hasPrefix("error \(queueFile): unreadable job queue (not valid JSON") && $0.contains("moved aside to \(queueFile).unreadable-")
        }, "\(lines.all)")
        restarted.reconcile()
        restarted.takeSettled()
        #expect(queued(restarted) == ["train pets"])
        let kept = try FileManager.default.contentsOfDirectory(atPath: scheduler.configuration.state).filter { $0.hasPrefix("queue.json.unreadable-") }
        #expect(kept.count == 1)
    }

    /// And a dataset whose files are dated an hour ahead (written before the wall clock was
    /// set back an hour) is waited for the settle time, not for the hour.
    @Test func atStartUpAQuietDatasetIsTakenAtOnceAndOneBeingCopiedIsWaitedFor() throws {
        let root = NSTemporaryDirectory() + "synthd-scheduler-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = Configuration()
        (configuration.spool, configuration.output, configuration.state) = (root + "/spool", root + "/out", root + "/state")
        configuration.settleSeconds = 60
        configuration.maxSyntheticPerReal = 0  // an image a class has something to write (see makeTestScheduler)
        try addImage(root, "quiet/cat/1.png")
        try addImage(root, "copying/cat/1.png")
        try addImage(root, "ahead/cat/1.png")
        try addImage(root, "marked/cat/1.png")
        try addImage(root, "marked/.ready")   // copied just now, then marked complete
        let hourAgo = Date().addingTimeInterval(-3600), hourAhead = Date().addingTimeInterval(3600)
        for path in ["quiet", "quiet/cat", "quiet/cat/1.png"] {
            try FileManager.default.setAttributes([.modificationDate: hourAgo], ofItemAtPath: root + "/spool/" + path)
        }
        for path in ["ahead", "ahead/cat", "ahead/cat/1.png"] {
            try FileManager.default.setAttributes([.modificationDate: hourAhead], ofItemAtPath: root + "/spool/" + path)
        }
        let scheduler = try Scheduler(configuration: configuration, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        scheduler.reconcile()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train quiet"])
        scheduler.takeSettled(now: .now.advanced(by: .seconds(SettleTracker.readyQuiet + 1)))
        #expect(queued(scheduler) == ["train quiet", "train marked"], "a .ready file: its quiet time, not the settle time")
        scheduler.takeSettled(now: .now.advanced(by: .seconds(61)))
        #expect(Set(queued(scheduler)) == ["train quiet", "train marked", "train copying", "train ahead"])
    }

    /// The age of a dataset's last change, from a scan that answers a question asked earlier:
    /// a change before the question dates back from it; one after it (a copy that went on while
    /// the scan ran) is dated when it happened, not at the question; a time ahead of the
    /// answer (a clock set back) counts as a change at the answer.
    @Test func aChangeSeenByALateScanIsDatedWhenItHappened() {
        let asked = Date(timeIntervalSince1970: 1_800_000_000), moment = Moment.now
        let answered = moment.adding(seconds: 5)
        func seconds(_ modified: Date?) -> Double {
            let at = Scheduler.changeMoment(modified: modified, askedAt: asked, moment, now: answered)
            return Double((at - moment).components.seconds) + Double((at - moment).components.attoseconds) * 1e-18
        }
        #expect(abs(seconds(asked.addingTimeInterval(-100)) - -100) < 1e-6)
        #expect(abs(seconds(asked.addingTimeInterval(3)) - 3) < 1e-6, "written while the scan ran")
        #expect(abs(seconds(asked.addingTimeInterval(3600)) - 5) < 1e-6, "dated ahead: changed as the answer came")
        #expect(abs(seconds(nil)) < 1e-6)
    }

    /// A dataset whose job failed for good stays failed across restarts, `.ready` files,
    /// touches and rescans, until its files or its synthd.toml change.
    @Test func aFailedDatasetIsQuarantinedUntilItChanges() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        let job = try #require(scheduler.startNext())
        scheduler.finish(job, .failed(message: "pets: no readable images", retry: .whenChanged), stopping: false)
        let failed = scheduler.store.get("pets")
        #expect(failed.phase == .failed && failed.quarantinedFor != nil)
        #expect(failed.detail == "tried again when its images, classes or synthd.toml change; "
            + "to try again as it is: touch \(root)/spool/pets/synthd.toml")

        // A restart (reconcile), a .ready file, a touch of the folder, a rescan: nothing queued.
        let restarted = try restarted(scheduler)
        restarted.reconcile()
        restarted.takeSettled()
        try Data().write(to: URL(fileURLWithPath: root + "/spool/pets/.ready"))
        restarted.handle(.ready(dataset: "pets"))
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: root + "/spool/pets")
        restarted.handle(.changed(dataset: "pets"))
        restarted.handle(.rescan(reason: "test"))
        restarted.takeSettled()
        #expect(queued(restarted).isEmpty)
        #expect(restarted.store.get("pets").phase == .failed)

        // An empty synthd.toml made (the `touch` that status suggests): tried again as it is.
        #expect(FileManager.default.createFile(atPath: root + "/spool/pets/synthd.toml", contents: Data()))
        restarted.handle(.changed(dataset: "pets"))
        restarted.takeSettled()
        #expect(queued(restarted) == ["train pets"])
        #expect(restarted.store.get("pets").quarantinedFor == nil)
    }

    /// A dataset whose synthd.toml does not read is held at once, its error in the log and its
    /// record, rather than queued for a training that fails when its turn comes (behind another
    /// dataset's twenty minutes, a typo was reported twenty minutes late); mended, it trains.
    /// A trained dataset's new images meet the same rule.
    @Test func aSynthdTomlThatDoesNotReadHoldsTheDatasetAtOnce() throws {
        let (plain, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: plain.configuration, logger: .capturing(into: lines))
        let toml = root + "/spool/pets/synthd.toml"
        try addImage(root, "pets/cat/1.png")
        try "[generation]\nper_clas = 5\n".write(toFile: toml, atomically: true, encoding: .utf8)
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty)
        let held = scheduler.store.get("pets")
        #expect(held.phase == .failed && held.quarantinedFor != nil)
        #expect(held.lastError?.hasPrefix("\(toml):2: unknown key 'per_clas' in [generation]") == true, "\(held)")
        #expect(held.detail == "held until its synthd.toml reads: mend the mistake under \"last error\" and save the file")
        #expect(lines.all.contains { $0.hasPrefix("error not trained: \(toml):2: unknown key 'per_clas'") }, "\(lines.all)")

        // Looked at again as it is (a rescan): held, and said once.
        lines.removeAll()
        scheduler.handle(.rescan(reason: "test"))
        scheduler.takeSettled()
        #expect(queued(scheduler).isEmpty)
        #expect(lines.all.filter { $0.contains("per_clas") }.isEmpty, "\(lines.all)")
        // An image added, the file as it was: held again, the mistake not said again.
        try drop("pets/dog/1.png", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty && scheduler.store.get("pets").phase == .failed)
        #expect(lines.all.filter { $0.contains("per_clas") }.isEmpty, "\(lines.all)")
        #expect(lines.all.contains("info still not trained: its synthd.toml does not read, as before (synthd status shows why)"), "\(lines.all)")

        try "[generation]\nper_class = 5\n".write(toFile: toml, atomically: true, encoding: .utf8)
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        let train = try #require(scheduler.startNext())
        scheduler.finish(train, .completed(fingerprint: try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil).value), stopping: false)
        let generate = try #require(scheduler.startNext())
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)

        // A trained dataset, then new images with a synthd.toml that does not read: held, no
        // fine-tuning queued.
        try trainAndPublish("bags", klass: "tote", into: scheduler, root: root)
        try "[generation]\ntemperature = \"warm\"\n".write(toFile: root + "/spool/bags/synthd.toml", atomically: true, encoding: .utf8)
        try drop("bags/clutch/1.png", into: scheduler, root: root)
        #expect(queued(scheduler).isEmpty)
        #expect(scheduler.store.get("bags").phase == .failed)
        #expect(scheduler.store.get("bags").lastError?.contains("temperature") == true, "\(scheduler.store.get("bags"))")
    }

    /// Published outputs removed while the daemon runs (the output folder cleaned by hand) are
    /// generated again, as a restart would; outputs that are there, or a dataset that is not
    /// done, are left alone.
    @Test func removedOutputsAreGeneratedAgain() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        scheduler.republishRemovedOutputs()
        #expect(queued(scheduler) == ["train pets"], "not done yet: nothing more")
        let train = try #require(scheduler.startNext())
        scheduler.finish(train, .completed(fingerprint: try DatasetFingerprint.of(root + "/spool/pets", confinedTo: nil).value), stopping: false)
        let generate = try #require(scheduler.startNext())
        scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
        let generation = "step-10-abc"
        scheduler.store.update("pets") { $0.generation = generation }
        let folder = scheduler.output.generationPath("pets", generation)
        try FileManager.default.createDirectory(atPath: folder + "/cat", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: scheduler.output.linkPath("pets"),
                                                   withDestinationPath: OutputTree.generationsFolder + "/pets/" + generation)
        #expect(scheduler.store.get("pets").phase == .done && scheduler.output.isPublished("pets"))
        scheduler.republishRemovedOutputs()
        #expect(queued(scheduler).isEmpty, "published: nothing to do")

        try FileManager.default.removeItem(atPath: scheduler.configuration.output + "/" + OutputTree.generationsFolder)
        #expect(!scheduler.output.isPublished("pets"), "a link to nothing is not published outputs")
        scheduler.republishRemovedOutputs()
        #expect(queued(scheduler) == ["generate pets"])
        #expect(scheduler.store.get("pets").detail?.hasPrefix("outputs removed from ") == true)
        scheduler.republishRemovedOutputs()
        #expect(queued(scheduler) == ["generate pets"], "queued once")
    }

    /// A dataset's state removed by hand (to train it afresh), or the whole state folder with
    /// the queue: the dataset is trained again as a new one, its stale waiting jobs go, and the
    /// queue's file is written again from memory. A running job's dataset is left to its job;
    /// a record never written (a full disk) is not a removed one.
    @Test func aDatasetsRemovedStateIsTrainedAfresh() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = scheduler.configuration.state
        for name in ["pets", "cars"] {
            try drop("\(name)/cat/1.png", into: scheduler, root: root)
            let train = try #require(scheduler.startNext())
            scheduler.finish(train, .completed(fingerprint: try DatasetFingerprint.of(root + "/spool/" + name, confinedTo: nil).value),
                             stopping: false)
            let generate = try #require(scheduler.startNext())
            if name == "pets" { scheduler.finish(generate, .completed(fingerprint: nil), stopping: false) }
        }
        #expect(scheduler.store.get("pets").phase == .done && queued(scheduler).isEmpty, "pets done, cars generating")
        scheduler.isRunning = { $0 == "cars" }
        scheduler.forgetRemovedState()
        #expect(scheduler.store.get("pets").trainedFingerprint != nil, "nothing removed: nothing changes")

        try FileManager.default.removeItem(atPath: state)
        scheduler.forgetRemovedState()
        #expect(scheduler.store.get("pets").trainedFingerprint == nil)
        #expect(scheduler.store.get("cars").trainedFingerprint != nil, "cars's running job keeps its record")
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"], "trained afresh, as a new dataset")
        #expect(scheduler.store.get("pets").detail?.hasPrefix("new dataset") == true, "\(scheduler.store.get("pets"))")
        scheduler.saveQueueIfBehind()
        let saved = try JobQueue(path: state + "/queue.json").jobs.filter { [.queued, .running].contains($0.state) }
        #expect(saved.map { "\($0.kind.rawValue) \($0.dataset)" } == ["generate cars", "train pets"], "the queue's file is back, as in memory")
        scheduler.store.update("cars") { $0.progress = 0.5 }  // its job's progress writes its record again
        scheduler.isRunning = { _ in false }
        scheduler.forgetRemovedState()
        #expect(queued(scheduler) == ["train pets"])
        #expect(scheduler.store.get("cars").trainedFingerprint != nil, "records written again are not removed ones")
    }

    /// A dataset folder renamed (`mv spool/pets spool/animals`): the new name takes over the
    /// old one's state folder, so its model carries on: trained, it is only published again;
    /// renamed while training (its job stopping: waited for), its training goes on from the
    /// model. A copy whose original is still in the spool, or other images, train anew.
    @Test func aRenamedDatasetTakesItsModelAlong() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let spool = scheduler.configuration.spool
        func train(_ name: String) throws {
            try drop("\(name)/cat/1.png", into: scheduler, root: root)
            let job = try #require(scheduler.startNext())
            scheduler.finish(job, .completed(fingerprint: try DatasetFingerprint.of(spool + "/" + name, confinedTo: nil).value), stopping: false)
            let generate = try #require(scheduler.startNext())
            scheduler.finish(generate, .completed(fingerprint: nil), stopping: false)
        }
        func settle(_ name: String) {
            scheduler.handle(.changed(dataset: name))
            scheduler.takeSettled()
        }
        try train("pets")
        try "model".write(toFile: scheduler.store.folder("pets") + "/model.json", atomically: true, encoding: .utf8)

        // A copy while the original is there: a dataset of its own.
        try FileManager.default.copyItem(atPath: spool + "/pets", toPath: spool + "/copy")
        settle("copy")
        #expect(queued(scheduler) == ["train copy"])
        #expect(FileManager.default.fileExists(atPath: scheduler.store.folder("pets") + "/model.json"))
        _ = try scheduler.queue.cancel(dataset: "copy")

        try FileManager.default.moveItem(atPath: spool + "/pets", toPath: spool + "/animals")
        scheduler.handle(.removed(dataset: "pets"))
        settle("animals")
        #expect(queued(scheduler) == ["generate animals"], "trained: published under the new name")
        #expect(try String(contentsOfFile: scheduler.store.folder("animals") + "/model.json", encoding: .utf8) == "model")
        #expect(!FileManager.default.fileExists(atPath: scheduler.store.folder("pets")))
        #expect(scheduler.store.get("animals").detail?.hasPrefix("renamed from pets") == true)
        #expect(scheduler.store.get("animals").trainedFingerprint != nil)

        // Renamed while training: its stopping job is waited for, then its model goes on.
        _ = try scheduler.queue.cancel(dataset: "animals")
        try addImage(root, "animals/dog/1.png")
        settle("animals")
        let training = try #require(scheduler.startNext())
        #expect(training.kind == .train && training.dataset == "animals")
        scheduler.store.update("animals") { $0.trainingFingerprint = try? DatasetFingerprint.of(spool + "/animals", confinedTo: nil).value }
        try FileManager.default.moveItem(atPath: spool + "/animals", toPath: spool + "/beasts")
        scheduler.handle(.removed(dataset: "animals"))
        scheduler.isRunning = { $0 == "animals" }
        settle("beasts")
        #expect(queued(scheduler).isEmpty && !FileManager.default.fileExists(atPath: scheduler.store.folder("beasts")),
                "the old name's job is still stopping")
        scheduler.finish(training, .stopped(remainingSeconds: 10, budgetSeconds: 20), stopping: false)
        scheduler.isRunning = { _ in false }
        scheduler.takeSettled(now: .now.advanced(by: .seconds(1)))
        #expect(queued(scheduler) == ["train beasts"])
        #expect(scheduler.store.get("beasts").detail?.hasPrefix("renamed from animals before its training ended") == true)
        #expect(FileManager.default.fileExists(atPath: scheduler.store.folder("beasts") + "/model.json"))

        // Other images under a new name: a new model.
        try FileManager.default.moveItem(atPath: spool + "/beasts", toPath: spool + "/other")
        scheduler.handle(.removed(dataset: "beasts"))
        try addImage(root, "other/dog/2.png")
        _ = try scheduler.queue.cancel(dataset: "beasts")
        settle("other")
        #expect(queued(scheduler).contains("train other"))
        #expect(scheduler.store.get("other").detail?.hasPrefix("new dataset") == true)
    }

    /// A queued job whose dataset left the spool while synthd was down, its state folder
    /// removed by hand as well, is cancelled at start-up, not run into "not a folder".
    @Test func aQueuedJobOfADatasetGoneWithItsStateIsCancelledAtStartUp() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "kept/cat/1.png")
        _ = try scheduler.queue.enqueue(.train, dataset: "ghost", now: Date())
        #expect(!FileManager.default.fileExists(atPath: scheduler.store.folder("ghost")))
        scheduler.reconcile()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train kept"])
        #expect(!FileManager.default.fileExists(atPath: scheduler.store.folder("ghost")), "no state made for it")
    }

    /// A spool folder whose name is not UTF-8 (`caf\xE9`, from a Latin-1 archive) is said once,
    /// by its bytes and with what to do, however it is seen (the listing at start-up, an event
    /// with the name as U+FFFD, its removal), and is never a dataset nor one that left.
    @Test func aSpoolFolderWhoseNameIsNotUTF8IsReportedOnce() throws {
        let (plain, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: plain.configuration, logger: .capturing(into: lines))
        #expect(makeEntry(in: scheduler.configuration.spool, rawName: Array("caf".utf8) + [0xE9], folder: true))
        try addImage(root, "tea/cup/1.png")
        scheduler.reconcile()
        scheduler.takeSettled()
        let lossy = "caf\u{FFFD}"
        scheduler.handle(.changed(dataset: lossy))
        scheduler.takeSettled()
        scheduler.handle(.removed(dataset: lossy))
        scheduler.poll()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train tea"])
        let reports = lines.all.filter { $0.contains("ignored") }
        #expect(reports == ["warning spool entry 'caf\\xE9' ignored: name is not valid UTF-8; " + FolderListing.renameAdvice], "\(lines.all)")
        #expect(!lines.all.contains { $0.contains("left the spool") }, "\(lines.all)")
        #expect(!scheduler.store.datasets.contains(lossy))
    }

    /// A zip made on a Mac, unpacked into the spool, leaves `__MACOSX` (resource forks, `._`
    /// files) beside the dataset, and may leave one in it: neither is a dataset or a class;
    /// the spool's is said once, the dataset trains on its real classes.
    @Test func macOSArchiveFoldersAreNeitherDatasetsNorClasses() throws {
        let (plain, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: plain.configuration, logger: .capturing(into: lines))
        try addImage(root, "__MACOSX/pets/cat/._1.png")
        try addImage(root, "pets/__MACOSX/cat/._1.png")
        try addImage(root, "copying.part/cat/1.png")
        try addImage(root, "pets/cat/1.png")
        scheduler.reconcile()
        scheduler.takeSettled()
        for name in ["__MACOSX", "pets", "__MACOSX", "copying.part"] { scheduler.handle(.changed(dataset: name)) }
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["train pets"])
        #expect(!scheduler.store.datasets.contains("__MACOSX") && !scheduler.store.datasets.contains("copying.part"))
        let reports = lines.all.filter { $0.contains("ignored") }
        #expect(reports == ["warning spool entry '__MACOSX' ignored: macOS's resource forks from an unpacked zip, not a dataset (it may be deleted)"],
                "\(lines.all)")
        let scan = try ImageFolder.scan(root + "/spool/pets")
        #expect(scan.classNames == ["cat"] && scan.emptyClasses.isEmpty, "an empty class is warned about")
    }

    /// A spool on a network file system is scanned every 10 s (inotify hears only this
    /// machine's writes there) unless `poll_seconds` says otherwise; a local one is not scanned.
    @Test func aSpoolOnANetworkFileSystemIsScannedPeriodically() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        scheduler.reconcile()
        #expect(scheduler.spoolFileSystem == nil && scheduler.pollSeconds == nil, "a temporary folder is local")
        scheduler.spoolFileSystem = "NFS"
        #expect(scheduler.pollSeconds == 10)
        var configuration = scheduler.configuration
        configuration.pollSeconds = 300
        scheduler.reload(configuration)
        #expect(scheduler.pollSeconds == 300, "as configured")
        #expect(RemoteFileSystem.name(forType: 0x6969) == "NFS" && RemoteFileSystem.name(forType: 0xFF53_4D42) == "CIFS")
        #expect(RemoteFileSystem.name(forType: 0xEF53) == nil, "ext4 is local")
        #expect(RemoteFileSystem.name(at: "/proc") == nil)
    }

    /// A dataset's synthd.toml written where inotify does not hear it (another machine's write
    /// to an NFS spool) is seen by the next periodic look: looks compared the images only, so
    /// new settings waited for an image to change or a restart.
    @Test func aPeriodicLookSeesASynthdTomlWrittenUnheard() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try trainAndPublish("pets", klass: "cat", into: scheduler, root: root)
        for _ in 0..<2 {
            scheduler.poll()
            scheduler.takeSettled()
        }
        #expect(queued(scheduler).isEmpty, "nothing changed")
        try "[generation]\ntemperature = 1.3\n".write(toFile: root + "/spool/pets/synthd.toml", atomically: true, encoding: .utf8)
        scheduler.poll()
        scheduler.takeSettled()
        #expect(queued(scheduler) == ["generate pets"])
    }

    /// A file dropped directly into the spool (an archive, with unpacking off) is not a
    /// dataset: said once, with what to do, whether it arrives while the daemon runs or was
    /// there at start-up; a README there is documentation, not a mistake. An archive of a
    /// format synthd does not unpack is named as such.
    @Test func aFileDirectlyInTheSpoolIsSaidOnce() throws {
        let root = NSTemporaryDirectory() + "synthd-stray-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var configuration = Configuration()
        configuration.unpackArchives = false
        (configuration.spool, configuration.output, configuration.state) = (root + "/spool", root + "/out", root + "/state")
        try FileManager.default.createDirectory(atPath: configuration.spool, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: configuration.spool + "/old.tar.gz", contents: Data([1])))
        #expect(FileManager.default.createFile(atPath: configuration.spool + "/.hidden", contents: Data([1])))
        #expect(FileManager.default.createFile(atPath: configuration.spool + "/README.md", contents: Data([1])))
        let lines = CapturedLines()
        let scheduler = try Scheduler(configuration: configuration, logger: .capturing(into: lines))
        scheduler.reconcile()
        scheduler.handle(.strayFile(name: "shoes.zip"))
        scheduler.handle(.strayFile(name: "shoes.zip"))
        scheduler.handle(.strayFile(name: "notes.txt"))
        scheduler.handle(.strayFile(name: "copying.part"))
        scheduler.handle(.strayFile(name: "photos.rar"))
        let stray = lines.all.filter { $0.contains("a file directly in the spool is not a dataset") }
        let unpackByHand = "unpack the archive into the spool as a folder, <dataset>/<class>/<images> (or set [watch] unpack_archives = true)"
        #expect(stray == [
            "warning \(configuration.spool)/old.tar.gz: a file directly in the spool is not a dataset; \(unpackByHand)",
            "warning \(configuration.spool)/shoes.zip: a file directly in the spool is not a dataset; \(unpackByHand)",
            "warning \(configuration.spool)/notes.txt: a file directly in the spool is not a dataset; a dataset is a folder of class folders of images, <dataset>/<class>/<images>",
            "warning \(configuration.spool)/photos.rar: a file directly in the spool is not a dataset; a RAR file, which synthd does not unpack (it unpacks .zip, .7z, .tar, .tar.gz, .tar.xz, .tar.zst and .tar.bz2): unpack it into the spool as a folder",
        ], "\(lines.all)")
        #expect(queued(scheduler).isEmpty)
    }

    /// A rescan lets go of datasets no longer in the spool (moved away with the spool itself:
    /// no event named them), but not while the spool cannot be listed (gone, unmounted): that
    /// says nothing about its datasets.
    @Test func aRescanForgetsVanishedDatasetsOnlyWhenTheSpoolCanBeListed() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        try drop("bags/tote/1.png", into: scheduler, root: root)
        let spool = scheduler.configuration.spool
        try FileManager.default.moveItem(atPath: spool, toPath: root + "/elsewhere")
        scheduler.handle(.spoolMissing(reason: "gone"))
        scheduler.handle(.rescan(reason: "test"))
        #expect(scheduler.store.get("pets").phase == .queued && queued(scheduler) == ["train pets", "train bags"], "nothing forgotten")

        try FileManager.default.createDirectory(atPath: spool + "/bags", withIntermediateDirectories: true)
        scheduler.handle(.rescan(reason: "the spool folder is there again"))
        #expect(scheduler.store.get("pets").phase == .removed)
        #expect(queued(scheduler) == ["train bags"])
    }

    /// The three-deaths rule: the queue fails the job at load, and the scheduler quarantines
    /// the dataset instead of training it again at start-up.
    @Test func aDatasetThatKilledTheDaemonIsNotQueuedAtStartUp() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("poison/cat/1.png", into: scheduler, root: root)
        var current = scheduler
        for _ in 1...3 {
            _ = try #require(current.startNext())
            current = try restarted(current)  // killed while running
        }
        current.reconcile()
        current.takeSettled()
        #expect(queued(current).isEmpty)
        let runtime = current.store.get("poison")
        #expect(runtime.phase == .failed && runtime.quarantinedFor != nil)
        #expect(runtime.lastError?.contains("3 times in a row") == true)
        try addImage(root, "poison/cat/2.png")
        current.handle(.changed(dataset: "poison"))
        current.takeSettled()
        #expect(queued(current) == ["train poison"], "a change lifts the quarantine")
    }

    /// 30 datasets dropped at once: each one's generation runs as soon as its training is done,
    /// ahead of the other datasets' trainings, so its first images do not wait for the rest.
    @Test func generationRunsAheadOfOtherDatasetsTraining() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let names = (0..<30).map { String(format: "set%02d", $0) }
        for name in names {
            try addImage(root, name + "/a/1.png")
            scheduler.handle(.changed(dataset: name))
        }
        scheduler.takeSettled()
        // Jobs run one at a time; each takes one tick. Record the tick of each dataset's first
        // published generation.
        var firstImages: [String: Int] = [:]
        var tick = 0
        while let job = scheduler.startNext() {
            tick += 1
            if job.kind == .train {
                let fingerprint = try DatasetFingerprint.of(root + "/spool/" + job.dataset, confinedTo: nil)
                scheduler.finish(job, .completed(fingerprint: fingerprint.value), stopping: false)
            } else {
                firstImages[job.dataset] = firstImages[job.dataset] ?? tick
                scheduler.finish(job, .completed(fingerprint: nil), stopping: false)
            }
        }
        #expect(firstImages.count == 30)
        // The k-th dataset trained gets its images at tick 2k: independent of the 30 - k behind it.
        for (k, name) in names.enumerated() { #expect(firstImages[name] == 2 * (k + 1), "\(name)") }
    }

    /// A disk that stays full: retried on a timer a few times, then the job waits until space
    /// is freed (or the dataset changes) instead of retrying forever.
    @Test func aDiskThatStaysFullStopsTheRetriesUntilSpaceIsFreed() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try addImage(root, "pets/cat/1.png")
        let full = "out/pets/cat/1.png: failed to write: No space left on device"
        _ = try scheduler.queue.enqueue(.generate, dataset: "pets", now: Date())
        var now = Date()
        for attempt in 1...6 {
            let job = try #require(scheduler.startNext(now: now), "attempt \(attempt)")
            scheduler.finish(job, .failed(message: full, retry: .afterSpaceFreed(folder: scheduler.configuration.output)),
                             stopping: false, now: now)
            now = now.addingTimeInterval(3600)
        }
        #expect(scheduler.startNext(now: now) == nil, "no timer retries after six")
        let runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .failed && runtime.failedJob == .generate && runtime.freeBytesAtFailure != nil)
        #expect(runtime.detail?.contains("tried again when space is freed") == true)

        scheduler.retryWhereSpaceWasFreed()
        #expect(queued(scheduler).isEmpty, "no more space than at the failure")
        scheduler.store.update("pets") { $0.freeBytesAtFailure = max(0, $0.freeBytesAtFailure! - (1 << 30)) }
        scheduler.retryWhereSpaceWasFreed()
        #expect(queued(scheduler) == ["generate pets"], "a gigabyte more free than at the failure")
        #expect(scheduler.store.get("pets").freeBytesAtFailure == nil)

        // A full state folder (a checkpoint that could not be written): its file system is the
        // one watched, and said.
        _ = try scheduler.queue.cancel(dataset: "pets")
        let checkpoint = "\(scheduler.configuration.state)/datasets/pets/checkpoint.ckpt: failed to write: No space left on device"
        _ = try scheduler.queue.enqueue(.train, dataset: "pets", now: Date())
        for attempt in 1...6 {
            let job = try #require(scheduler.startNext(now: now), "attempt \(attempt)")
            scheduler.finish(job, .failed(message: checkpoint, retry: .afterSpaceFreed(folder: scheduler.configuration.state)),
                             stopping: false, now: now)
            now = now.addingTimeInterval(3600)
        }
        let held = scheduler.store.get("pets")
        #expect(held.fullFolder == scheduler.configuration.state && held.failedJob == .train)
        #expect(held.detail?.contains("tried again when space is freed on the state folder's file system") == true, "\(held.detail ?? "")")
        scheduler.store.update("pets") { $0.fullFolder = "/proc/self"; $0.freeBytesAtFailure = 0 }
        scheduler.retryWhereSpaceWasFreed()
        #expect(queued(scheduler).isEmpty, "the recorded folder's file system is the one asked (here /proc's: never any free)")
        scheduler.store.update("pets") { $0.fullFolder = scheduler.configuration.state }
        scheduler.retryWhereSpaceWasFreed()
        #expect(queued(scheduler) == ["train pets"])
    }

    /// A job that failed on a full disk holds the others until space is freed or its retry
    /// time: they used to start in turn and fail the same way, one error line each (fifteen in
    /// a minute of the soak), a training job after the minutes before its first checkpoint.
    @Test func aFullDiskHoldsTheOtherJobsUntilSpaceIsFreedOrTheRetryTime() throws {
        let lines = CapturedLines()
        let (scheduler, root) = try makeTestScheduler(lines: lines)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for name in ["cars", "pets", "ships"] {
            try addImage(root, "\(name)/a/1.png")
            _ = try scheduler.queue.enqueue(.generate, dataset: name, now: Date())
        }
        // /proc's file system never has space: only the time can end this hold.
        let full = "/proc/self: No space left on device", now = Date()
        let first = try #require(scheduler.startNext(now: now))
        scheduler.finish(first, .failed(message: full, retry: .afterSpaceFreed(folder: "/proc/self")), stopping: false, now: now)
        #expect(scheduler.startNext(now: now.addingTimeInterval(29)) == nil, "the other two wait with the failed one")
        #expect(scheduler.summary(running: []) == "3 jobs waiting for space on the file system of /proc/self")
        #expect(lines.all.filter { $0.hasPrefix("warning the file system of /proc/self is full") }.count == 1, "\(lines.all)")
        #expect(lines.all.contains { $0.hasPrefix("warning") && $0.hasSuffix("or for 30 s; 3 queued jobs wait") }, "\(lines.all)")
        // `synthd status` says it first, while it lasts.
        let said = try #require(SpaceHold.statusLine(stateFolder: scheduler.configuration.state, now: now))
        #expect(said.hasPrefix("no job starts: a job failed on a full disk (the file system of /proc/self); they start again when "
                               + "64 MiB are free there, or at "), "\(said)")
        #expect(SpaceHold.statusLine(stateFolder: scheduler.configuration.state, now: now.addingTimeInterval(31)) == nil)

        let second = try #require(scheduler.startNext(now: now.addingTimeInterval(31)), "its retry time ends the hold")
        #expect(lines.all.last == "info jobs start again (the file system of /proc/self: 0.0 MiB free)")
        scheduler.finish(second, .failed(message: full, retry: .afterSpaceFreed(folder: "/proc/self")), stopping: false,
                         now: now.addingTimeInterval(31))
        #expect(scheduler.startNext(now: now.addingTimeInterval(32)) == nil)
        // Space freed there ends it before its time (the test's folder has 64 MiB more than none).
        scheduler.spaceHold = SpaceHold(folder: root, freeBytesAtFailure: 0, until: now.addingTimeInterval(3600))
        #expect(scheduler.startNext(now: now.addingTimeInterval(33)) != nil)
        #expect(scheduler.spaceHold == nil)
        #expect(SpaceHold.statusLine(stateFolder: scheduler.configuration.state, now: now) == nil, "its record gone")

        // A failure that is not a full disk holds nothing.
        let third = try #require(scheduler.startNext(now: now.addingTimeInterval(34)))
        scheduler.finish(third, .failed(message: "out away", retry: .later), stopping: false, now: now.addingTimeInterval(34))
        #expect(scheduler.spaceHold == nil)
    }

    /// In a cluster the hold is the node's: each change goes to its heartbeat
    /// (`spaceHoldChanged`), and no file in the shared state folder says it for every node.
    @Test func inAClusterTheHoldIsTheNodesToSay() throws {
        let (scheduler, root) = try makeTestScheduler { $0.database = "postgresql://synthd@localhost/synthd" }
        defer { try? FileManager.default.removeItem(atPath: root) }
        nonisolated(unsafe) var heard: [SpaceHold?] = []
        scheduler.spaceHoldChanged = { heard.append($0) }
        scheduler.holdForSpace(on: "/proc/self", until: Date().addingTimeInterval(60), now: Date())
        #expect(heard.count == 1 && heard.first??.folder == "/proc/self")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/space-hold.json"))
        scheduler.spaceHold = nil
        #expect(heard.count == 2 && heard.last! == nil)
    }

    /// A dataset renamed or moved out while its job read it: the job fails on a folder that is
    /// gone. That held the dataset as failed until it changed, with an error line (twice in a
    /// soak); it now ends as a removal does. A file in the folder's place is still an error.
    @Test func aJobWhoseDatasetLeftWhileItRanEndsAsARemoval() throws {
        let lines = CapturedLines()
        let (scheduler, root) = try makeTestScheduler(lines: lines)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        let job = try #require(scheduler.startNext())
        try FileManager.default.moveItem(atPath: root + "/spool/pets", toPath: root + "/pets-elsewhere")
        let notAFolder = "\(root)/spool/pets: not a folder (a dataset is a folder of class folders of images)"
        scheduler.finish(job, .failed(message: notAFolder, retry: .whenChanged), stopping: false)
        let runtime = scheduler.store.get("pets")
        #expect(runtime.phase == .removed && runtime.quarantinedFor == nil, "\(runtime)")
        #expect(!lines.all.contains { $0.hasPrefix("error") }, "\(lines.all)")
        #expect(lines.all.contains("info train ended: the dataset left the spool while it ran (\(notAFolder))"), "\(lines.all)")
        #expect(try scheduler.queue.pending(dataset: "pets").isEmpty)
        // The removal's own event, after: nothing more to do.
        scheduler.handle(.removed(dataset: "pets"))
        #expect(scheduler.store.get("pets").phase == .removed)

        // Back, and a file where the folder was: that is the dataset's error, held until it changes.
        try FileManager.default.moveItem(atPath: root + "/pets-elsewhere", toPath: root + "/spool/pets")
        scheduler.handle(.changed(dataset: "pets"))
        scheduler.takeSettled()
        let again = try #require(scheduler.startNext())
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/spool/pets"))
        scheduler.finish(again, .failed(message: notAFolder, retry: .whenChanged), stopping: false)
        #expect(scheduler.store.get("pets").phase == .failed)
        #expect(lines.all.last?.hasPrefix("error train failed") == true, "\(lines.all.suffix(2))")
    }

    /// A job cancelled while it ran (its dataset left the spool) that then fails is not
    /// retried, and a full disk it met holds no other job: a soak saw a dataset deleted to free
    /// space while its last checkpoint waited, and its job retried on a timer.
    @Test func aCancelledJobsFailureIsNotRetried() throws {
        let lines = CapturedLines()
        let (scheduler, root) = try makeTestScheduler(lines: lines)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        let job = try #require(scheduler.startNext())
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        scheduler.handle(.removed(dataset: "pets"))
        let full = "\(root)/state/datasets/pets/checkpoint.ckpt: failed to write: No space left on device"
        scheduler.finish(job, .failed(message: full, retry: .afterSpaceFreed(folder: root + "/state")), stopping: false)
        #expect(try scheduler.queue.pending(dataset: "pets").isEmpty, "not retried")
        #expect(scheduler.spaceHold == nil)
        #expect(scheduler.store.get("pets").phase == .removed)
        #expect(!lines.all.contains { $0.hasPrefix("error") || $0.hasPrefix("warning") }, "\(lines.all)")
        #expect(lines.all.last == "info train ended after it was cancelled (the dataset left the spool): \(full)")
    }

    /// A training job killed after it moved its model on is not a crash loop: its deaths
    /// count afresh, and it resumes with the budget it had left (not a whole new budget).
    @Test func aKilledTrainingJobThatMadeProgressResumesWithItsBudget() throws {
        let (scheduler, root) = try makeScheduler()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try drop("pets/cat/1.png", into: scheduler, root: root)
        var current = scheduler
        for death in 1...5 {
            let job = try #require(current.startNext(), "death \(death)")
            #expect(job.attempts == 1)
            // What the worker leaves as it trains: a checkpoint further on, its budget and how far
            // through it is.
            try StateFolder(current.store.folder("pets")).writeRecord(ModelRecord(
                configuration: ModelConfiguration(), classes: ["cat"], mode: .grey, imageWidth: 28, imageHeight: 28,
                steps: 100 * death, imagesAtLastRun: 1, options: TrainingOptions(), checkpointID: "step-\(100 * death)"))
            current.store.update("pets") { $0.budgetSeconds = 600; $0.progress = 0.1 * Double(death) }
            current = try restarted(current)  // killed
            let resumed = try #require((try current.queue.snapshot()).first { $0.id == job.id })
            #expect(resumed.state == .queued && resumed.attempts == 0)
            #expect(abs((resumed.remainingSeconds ?? 0) - 600 * (1 - 0.1 * Double(death))) < 1e-6)
            #expect(resumed.budgetSeconds == 600)
        }
        #expect(current.store.get("pets").phase != .failed)
    }
}
