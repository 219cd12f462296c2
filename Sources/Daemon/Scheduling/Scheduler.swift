import Engine
import CUDA
import Foundation
import GAN
import Archives
import Imaging
import Logging
import Spool

/// Turns spool events into jobs and job outcomes into the next jobs.
///
///     new or changed dataset (settled)  -> train (new model, or fine-tune the existing one)
///     training slice ended              -> train again, at the back of the queue
///     training completed                -> generate (publishes a new output generation)
///     dataset removed                   -> cancel its jobs; keep model and outputs
///     failure                           -> retry later (full disk), or wait for a change
///
/// Not thread-safe: the service's main loop owns it. Workers only read `isCancelled`.
public final class Scheduler {
    public private(set) var configuration: Configuration
    /// `queue.json` on one machine, the cluster's database with several nodes.
    public let queue: any JobStore
    public let store: RuntimeStore
    public private(set) var output: OutputTree
    let logger: Logger
    var settle: SettleTracker
    /// Datasets whose workers should stop (they left the spool); workers read it.
    public let cancellations = Cancellations()
    /// A dataset name that is not a safe path component is reported once.
    private var reportedUnsafe: Set<String> = []
    /// Files directly in the spool already reported (once each per run of the daemon).
    private var reportedStray: Set<String> = []
    /// Full-disk failures in a row before the job waits for space instead of retrying on a
    /// timer (30 s doubling: about 15 minutes of tries). Other failures that are not the
    /// dataset's (`Retry.later`: an output that cannot be written, a model another process
    /// holds, a GPU error) are retried for as long as they last, 30 s doubling up to every
    /// `maxRetryDelay`: after three tries they used to hold the dataset until its files
    /// changed, so an output share away for five minutes left every dataset that tried to
    /// publish failed for good, and nothing said what would bring it back.
    static let maxDiskFullAttempts = 6
    static let maxRetryDelay: TimeInterval = 900
    /// Set when a job failed on a full disk: no job starts meanwhile (see `SpaceHold`). On one
    /// machine recorded for `synthd status`.
    var spaceHold: SpaceHold? {
        didSet {
            guard spaceHold != oldValue else { return }
            if configuration.isClustered { spaceHoldChanged(spaceHold) } else { SpaceHold.record(spaceHold, stateFolder: configuration.state) }
        }
    }
    /// Set while the watcher says the spool is gone or unmounted (see `SpoolAbsence`), until
    /// it is back. On one machine recorded for `synthd status`; in a cluster handed to
    /// `spoolAbsenceChanged` (the node's heartbeat carries it).
    var spoolAbsence: SpoolAbsence? {
        didSet {
            guard spoolAbsence != oldValue else { return }
            if configuration.isClustered { spoolAbsenceChanged(spoolAbsence) } else { SpoolAbsence.record(spoolAbsence, stateFolder: configuration.state) }
        }
    }
    /// In a cluster: hears each change of `spoolAbsence`.
    public var spoolAbsenceChanged: (SpoolAbsence?) -> Void = { _ in }
    /// In a cluster: hears each change of the hold (the node's heartbeat carries it).
    public var spaceHoldChanged: (SpaceHold?) -> Void = { _ in }

    /// Where jobs compute ("cpu", "cuda:0 (NVIDIA H200)"), shown by `synthd status`.
    public let compute: ComputeDevice

    /// Fingerprints datasets: on a thread of its own in the daemon, inline in tests.
    public let scanner: DatasetScanner

    /// Archives dropped into the spool, unpacked into datasets (`[watch] unpack_archives`).
    public let archives: ArchiveIntake

    /// Whether this daemon should fingerprint a settled dataset now. In a cluster one node
    /// looks at each change (the others see it settle too, from their periodic scans).
    public var mayScan: (String) -> Bool = { _ in true }

    /// `scanInBackground`: scans run on the scanner's thread and their results are applied by
    /// `takeSettled` on a later turn of the loop (the daemon); else at once (tests, tools).
    /// `jobs`: where the jobs live; nil: `queue.json` in the state folder.
    /// `shared`: the datasets' records in a cluster's database; nil: files in the state folder.
    public init(configuration: Configuration, logger: Logger, compute: ComputeDevice = .cpu(), scanInBackground: Bool = false,
                jobs: (any JobStore)? = nil, shared: (any SharedRuntime)? = nil) throws {
        self.configuration = configuration
        self.logger = logger
        self.compute = compute
        scanner = DatasetScanner(spool: configuration.spool, inline: !scanInBackground)
        archives = ArchiveIntake(configuration: configuration, logger: logger, node: shared == nil ? nil : configuration.nodeName)
        try createFolders(configuration.state + "/datasets")
        try createFolders(configuration.output)
        if let jobs {
            queue = jobs
        } else {
            let local = try JobQueue(path: configuration.state + "/queue.json")
            if let (path, reason) = local.setAside {
                logger.error("\(configuration.state)/queue.json: unreadable job queue (\(reason)); moved aside to \(path) and started afresh: every dataset is looked at again, and trained or generated where its model or outputs are behind its files")
            }
            queue = local
        }
        store = RuntimeStore(root: configuration.state + "/datasets", shared: shared)
        for (path, reason) in store.unreadableRecords() {
            logger.warning("\(path): unreadable record (\(reason)); its dataset starts afresh: the model is kept, fine-tuned and generated again, and the record rewritten")
        }
        output = OutputTree(root: configuration.output, keep: configuration.keepGenerations)
        settle = SettleTracker(settle: configuration.settleSeconds)
        if !configuration.isClustered {  // a killed daemon's
            SpaceHold.record(nil, stateFolder: configuration.state)
            SpoolAbsence.record(nil, stateFolder: configuration.state)
            ReloadFailure.record(nil, stateFolder: configuration.state)
        }
        takeInterrupted()
    }

    /// The dataset's queued and running jobs; empty (and logged) when the store cannot say.
    func pending(_ name: String) -> [Job] {
        do { return try queue.pending(dataset: name) } catch {
            logger.error("cannot read the job queue: \(error)")
            return []
        }
    }

    /// The training steps in the dataset's last checkpoint (what a restart resumes from).
    func checkpointedSteps(_ name: String) -> Int {
        (try? StateFolder(reading: store.folder(name)).readRecord())?.steps ?? 0
    }

    /// Applies a reloaded configuration. Paths need a restart (the watcher, queue and output
    /// tree live there); the rest applies to the next job.
    public func reload(_ new: Configuration) {
        var applied = new
        if (new.spool, new.output, new.state) != (configuration.spool, configuration.output, configuration.state) {
            logger.warning("paths changed in the configuration; they take effect at the next start")
            applied.spool = configuration.spool
            applied.output = configuration.output
            applied.state = configuration.state
        }
        configuration = applied
        archives.reload(applied)
        output = OutputTree(root: applied.output, keep: applied.keepGenerations)
        settle = SettleTracker(settle: applied.settleSeconds, carrying: settle)
        // A restart looks at every dataset again, and generates again those whose outputs the
        // new [generation] defaults change; a reload did the same only for each dataset touched
        // after it.
        followEverySettings(generationReason: "generation settings changed in the daemon's configuration")
        lookAgainAtDatasetsWithNothingToWrite()
    }

    public var runner: JobRunner {
        JobRunner(configuration: configuration, store: store, output: output, logger: logger, compute: compute, memory: memory)
    }
    /// The memory this node's running jobs share.
    public let memory = MemoryLedger()

    /// Whether workers on `dataset` should stop (it left the spool).
    public func isCancelled(_ dataset: String) -> Bool { cancellations.contains(dataset) }

    /// Another node cancelled the dataset's job that runs here (the folder left the spool).
    public func cancelledElsewhere(_ dataset: String) { cancellations.insert(dataset) }

    // MARK: Events

    /// At start-up: every dataset in the spool is noted as changed at its last modification,
    /// so one untouched for the settle time is looked at (and trained if its files differ from
    /// what its model saw) at once, and one being copied right now is waited for. Datasets
    /// that vanished are cancelled; a trained model whose outputs were never published gets a
    /// generation job.
    public func reconcile() {
        spoolFileSystem = RemoteFileSystem.name(at: configuration.spool)
        if let remote = spoolFileSystem, configuration.effectivePollSeconds == nil {
            logger.notice("the spool is on \(remote), where inotify hears only what this machine writes: it is also scanned every 10 s for what other machines copy there ([watch] poll_seconds sets another interval)")
        }
        let listed = listedSpool(), present = listed ?? []
        noteAll(present)
        forgetVanished(listed)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: configuration.spool)) ?? []
        where !present.contains(name) && isRegularFile(configuration.spool + "/" + name) {
            reportStray(name)
        }
        for name in present where store.get(name).quarantinedFor == nil && pending(name).isEmpty {
            guard let record = try? StateFolder(reading: store.folder(name)).readRecord(), !record.checkpointID.isEmpty,
                  let wanted = wantedGeneration(name), output.current(name) != wanted,
                  store.get(name).trainedFingerprint != nil else { continue }
            enqueue(.generate, name, detail: "outputs of \(record.generatorID) not yet published")
        }
    }

    /// Says once that a file directly in the spool is not a dataset, with what to do (an archive:
    /// unpack it there). Hidden and partial names (a copy in progress) are passed over, and so
    /// is a README (the repository's own spool/README.md said this at every start).
    func reportStray(_ name: String) {
        guard ImageFolder.isVisible(name), !name.lowercased().hasPrefix("readme") else { return }
        if configuration.unpackArchives, ArchiveFormat.of(name: name) != nil {
            archives.note(name)
            return
        }
        guard reportedStray.insert(name).inserted else { return }
        let what = ArchiveFormat.unreadReason(name: name)
            ?? (ArchiveFormat.of(name: name) != nil ? "unpack the archive into the spool as a folder, <dataset>/<class>/<images> "
                + "(or set [watch] unpack_archives = true)"
                : "a dataset is a folder of class folders of images, <dataset>/<class>/<images>")
        logger.warning("\(configuration.spool)/\(LineLogHandler.oneLine(name)): a file directly in the spool is not a dataset; \(what)")
    }

    /// Unpacks archives that settled, one at a time; a dataset whose folder an archive just
    /// made is taken at once (it appeared complete, by one rename). Called every turn of the
    /// loop.
    public func takeArchives() {
        for dataset in archives.tick() { settle.note(.ready(dataset: dataset)) }
    }

    /// The spool's files looked at again (a periodic scan: archives copied from other
    /// machines onto a network spool send no event here).
    func noteStrayFiles() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: configuration.spool)) ?? []
        where isRegularFile(configuration.spool + "/" + name) {
            reportStray(name)
        }
    }

    public enum TakeOver: Equatable { case none, waitForItsJob, takenOver(from: String, trained: Bool) }

    /// A dataset new to the daemon with the very images of one that left the spool (a renamed
    /// folder, `mv spool/shoes spool/footwear`, also while synthd was down): its state folder
    /// (model, checkpoints, judge, record) is moved to the new name, so the model carries on
    /// instead of a new one trained from nothing, and a trained one only publishes its images
    /// under the new name. The old name's published outputs stay where they are, as any removed
    /// dataset's do. A job of the old name still stopping is waited for. Same images: the same
    /// files (names below the dataset, sizes, times) as the model trained or was training on.
    /// Not in a cluster (records in the database), nor for a folder of the same images that is
    /// still in the spool (a copy: trained on its own).
    func takeOverRenamed(_ name: String, fingerprint: DatasetFingerprint) -> TakeOver {
        let target = store.folder(name)
        guard store.shared == nil, !FileManager.default.fileExists(atPath: target) else { return .none }
        let origin = store.datasets.first { other in
            guard other != name, !directoryExists(configuration.spool + "/" + other) else { return false }
            let runtime = store.get(other)
            return runtime.phase == .removed && runtime.quarantinedFor == nil
                && [runtime.trainedFingerprint, runtime.trainingFingerprint].contains(fingerprint.value)
        }
        guard let origin else { return .none }
        if isRunning(origin) || !pending(origin).isEmpty { return .waitForItsJob }
        guard rename(store.folder(origin), target) == 0 else {
            logger.error("cannot move the model of \(origin), renamed \(name), to \(target): \(String(cString: strerror(errno))); training a new one",
                         metadata: ["dataset": "\(name)"])
            return .none
        }
        store.forget(origin)
        store.forget(name)
        let trained = store.get(name).trainedFingerprint == fingerprint.value
        store.update(name) { $0.phase = .waiting; $0.detail = "renamed from \(origin): its model came with it" }
        logger.notice("the images of \(origin), which left the spool: renamed, so its model carries on here (\(store.folder(origin)) moved to \(target))",
                      metadata: ["dataset": "\(name)"])
        return .takenOver(from: origin, trained: trained)
    }

    /// Whether a dataset has a worker now (set by the daemon's loop, which runs them).
    public var isRunning: (String) -> Bool = { _ in false }
    /// Datasets whose forgetting failed, said once each (`forgetLongRemoved`).
    var reportedForgetFailure: Set<String> = []
    /// Why the queue's file could not be written, said once until it is again (`saveQueueIfBehind`).
    var queueSaveProblem: String?

    /// Datasets the daemon knows that are not in the spool now (gone while it was down, or
    /// while events were lost): each is removed as if its folder had left. Nothing, when the
    /// spool cannot be listed.
    func forgetVanished(_ listed: [String]?) {
        guard let present = listed.map(Set.init) else { return }
        // The queue's datasets too: a job whose dataset left while synthd was down, its state
        // folder removed by hand, ran and failed with "not a folder".
        let queued = ((try? queue.snapshot()) ?? []).filter { $0.state == .queued }.map(\.dataset)
        for name in Set(store.datasets).union(queued).sorted() where !present.contains(name) && store.get(name).phase != .removed {
            removed(name)
        }
    }

    public func handle(_ event: SpoolEvent, now: Moment = .now) {
        switch event {
        case .removed(let name):
            settle.note(event, at: now)
            // An unusable name (see `settled`) was never a dataset.
            if SafeName.isSafe(name) && !directoryExists(configuration.spool + "/" + name) { removed(name) }
        case .watchLimit(let reason):
            if !needsPolling { logger.warning("\(reason)") }
            needsPolling = true
            noteAll(spoolDatasets())
        case .rescan(let reason):
            logger.warning("rescanning the spool: \(reason)")
            spoolAbsence = nil  // the watcher's word that the spool is back, if it was gone
            let listed = listedSpool()
            forgetVanished(listed)
            noteAll(listed ?? [])
        case .strayFile(let name):
            reportStray(name)
        case .spoolMissing(let reason):
            // Its datasets stay as they are until the folder is back (a rescan then lets go of
            // those not in it): an unmounted spool is not a spool emptied on purpose.
            logger.warning("\(reason)")
            spoolAbsence = SpoolAbsence(reason: reason, since: Date())
        case .changed(let name), .ready(let name):
            settle.note(event, at: now)
            if store.get(name).phase == .removed || store.get(name).phase == .done {
                // Seen again: waiting for it to settle.
                store.update(name) { $0.phase = .waiting; $0.detail = "changes seen; waiting for the folder to settle" }
            }
        }
    }

    /// Whether some folders of the spool are not watched (the watch limit): the daemon then
    /// scans the spool periodically (`[watch] poll_seconds`, at least every minute).
    public private(set) var needsPolling = false

    /// The network file system the spool is on (`RemoteFileSystem`: NFS, SMB, FUSE, ...),
    /// looked at by `reconcile`; nil on a local one. inotify hears only this machine's writes
    /// there, so the spool is then scanned every 10 s unless `poll_seconds` says otherwise.
    public var spoolFileSystem: String?

    /// Seconds between scans of the whole spool: `[watch] poll_seconds` (a cluster's 10 s when
    /// unset); else every 10 s on a network file system, every 60 s once some folders could
    /// not be watched; nil: none.
    public var pollSeconds: Double? {
        configuration.effectivePollSeconds ?? (spoolFileSystem != nil ? 10 : nil) ?? (needsPolling ? 60 : nil)
    }

    /// A periodic look at every dataset (for folders inotify does not watch): each is noted
    /// as changed when its files last changed, so one that changed is taken once settled and
    /// the others come out as they were (their fingerprints match).
    ///
    /// Only the datasets whose files differ from the last look are noted, and a scan is not
    /// asked for while the last one is still under way. Before, every poll noted every
    /// dataset, so each was scanned twice a poll, and a dataset whose scan took longer than
    /// the interval (60,000 images with `poll_seconds = 1`; 200,000 over NFS at its 10 s) was
    /// noted again while its fingerprint was taken: that result was thrown away as stale and
    /// the scan asked for again, behind a queue of polls that grew without end. It was never
    /// trained (seen: ten minutes without taking an unpacked archive's 60,000 images).
    public func poll() {
        noteStrayFiles()
        guard !periodicScanUnderWay else { return }
        periodicScanUnderWay = true
        scanner.request(.lastModified(datasets: spoolDatasets(), asOf: Date(), at: .now, periodic: true))
        applyScans()
    }

    /// Notes datasets as changed when their files last changed (found by the scanner). While
    /// such a look is under way, the names of the next are gathered and asked for when it
    /// ends: a burst of rescans (inotify overflows, watch-limit errors during a copy of many
    /// folders) makes one more look, not one each behind the others.
    func noteAll(_ names: [String]) {
        guard !fullLookUnderWay else {
            fullLookWanted.formUnion(names)
            return
        }
        fullLookUnderWay = true
        scanner.request(.lastModified(datasets: names, asOf: Date(), at: .now, periodic: false))
        applyScans()
    }

    private var fullLookUnderWay = false, fullLookWanted: Set<String> = []

    /// Each dataset's change key (fingerprint and synthd.toml) at the last look at the whole
    /// spool (start-up, rescan, periodic scan): what the next look compares with.
    private var lookedAt: [String: String] = [:]
    private var periodicScanUnderWay = false

    /// Whether a dataset unchanged since the last look needs nothing from this one: its
    /// fingerprint is being taken now, or these files were decided on (trained or being
    /// trained, a job waiting, held until they change, or needing no model). One that is none of these (a
    /// cluster node that claimed it and died before queueing its job) is noted again.
    func isSettled(_ name: String, on fingerprint: String) -> Bool {
        if scanning.contains(name) { return true }
        let runtime = store.get(name)
        return [runtime.trainedFingerprint, runtime.trainingFingerprint, runtime.nothingToWriteFor].contains(fingerprint)
            || runtime.quarantinedFor != nil || !pending(name).isEmpty
    }

    /// Acts on the datasets that have settled, and on the scans that have come back. Call it
    /// regularly.
    public func takeSettled(now: Moment = .now) {
        applyScans()
        for name in settle.takeReady(at: now) { settled(name) }
        applyScans()
    }

    /// Applies what the scanner found since the last call.
    func applyScans() {
        for result in scanner.takeResults() {
            switch result {
            case .fingerprint(let name, let fingerprint):
                if scanAgain.remove(name) != nil {
                    scanner.request(.fingerprint(dataset: name))
                    continue
                }
                scanning.remove(name)
                decide(name, fingerprint: fingerprint)
            case .lastModified(let looks, let wall, let moment, let periodic):
                if periodic { periodicScanUnderWay = false } else { fullLookUnderWay = false }
                let now = Moment.now
                for look in looks {
                    let before = lookedAt[look.dataset]
                    lookedAt[look.dataset] = look.changeKey
                    // Unchanged since the last look (its files and its synthd.toml) and decided
                    // on: nothing to do (a rescan's look too; the first look after start-up
                    // notes every dataset).
                    if let value = look.fingerprint, before == look.changeKey, isSettled(look.dataset, on: value) { continue }
                    // One holding its `.ready` file (moved into the spool whole with it before the
                    // daemon started: `scripts/run --demo`) is taken after the ready file's quiet
                    // time, as the watcher takes one moved in while it runs, not the settle time.
                    let change: SpoolEvent = look.markedReady ? .ready(dataset: look.dataset) : .changed(dataset: look.dataset)
                    settle.note(change, at: Self.changeMoment(modified: look.modified, askedAt: wall, moment, now: now))
                }
                if !periodic, !fullLookWanted.isEmpty {
                    let wanted = fullLookWanted.sorted()
                    fullLookWanted = []
                    noteAll(wanted)
                }
            }
        }
    }

    /// When, on the monotonic clock, a dataset whose files last changed at `modified` (wall
    /// clock; nil: unknown, taken as when asked) changed, asked at wall time `wall` = `moment`
    /// and answered by `now`. The scan runs after the question, so a file written meanwhile
    /// (a copy under way while the daemon starts) is dated after it: that change is noted when
    /// it happened, not when the question was asked, which took a dataset still being copied
    /// as settled. A time ahead of `now` (a clock set back) counts as a change now.
    public static func changeMoment(modified: Date?, askedAt wall: Date, _ moment: Moment, now: Moment) -> Moment {
        min(moment.adding(seconds: (modified ?? wall).timeIntervalSince(wall)), now)
    }

    /// Datasets whose fingerprint is being taken (not asked for twice at once), and those
    /// that settled again meanwhile.
    private var scanning: Set<String> = [], scanAgain: Set<String> = []

    func settled(_ name: String) {
        let folder = configuration.spool + "/" + name
        // An archive being unpacked (`ArchiveIntake`): its folder appears under its own name.
        if name.hasPrefix(ArchiveIntake.stagingPrefix) { return }
        // Before the folder's existence: a name that is not UTF-8 reads as one that does not
        // exist, and is not a dataset that left.
        if let problem = SafeName.problem(with: name) {
            reportUnusable(name, shown: name.debugDescription, problem: problem)
            return
        }
        guard ImageFolder.isVisible(name) else {
            if name == "__MACOSX" {
                reportUnusable(name, shown: name, problem: "macOS's resource forks from an unpacked zip, not a dataset (it may be deleted)")
            }
            return  // a partial copy (".part", ".tmp"): taken under its final name
        }
        guard directoryExists(folder) else { return removed(name) }
        // Settled again while its scan runs: the files may have changed behind the scan, so
        // scan once more when it is back (its result is then stale, not acted on).
        if scanning.contains(name) { scanAgain.insert(name); return }
        guard mayScan(name) else { return }
        scanning.insert(name)
        scanner.request(.fingerprint(dataset: name))
    }

    /// The second half of `settled`, when the scanner has the dataset's fingerprint.
    func decide(_ name: String, fingerprint result: Swift.Result<DatasetFingerprint, any Error>) {
        guard directoryExists(configuration.spool + "/" + name) else { return removed(name) }
        let fingerprint: DatasetFingerprint
        do { fingerprint = try result.get() } catch {
            logger.warning("\(error)")
            store.update(name) { $0.phase = .failed; $0.lastError = "\(error)" }
            return
        }
        switch takeOverRenamed(name, fingerprint: fingerprint) {
        case .none: break
        case .waitForItsJob:
            settle.note(.changed(dataset: name), at: .now)  // the old name's job is stopping
            return
        case .takenOver(let origin, let trained):
            if trained {
                enqueue(.generate, name, detail: "renamed from \(origin): its model's images published under the new name")
            } else {
                enqueue(.train, name, detail: "renamed from \(origin) before its training ended: "
                                              + "\(counted(fingerprint.images, "image")) in \(counted(fingerprint.classes, "class"))")
            }
            return
        }
        if let quarantined = store.get(name).quarantinedFor {
            guard changeKey(name, fingerprint: fingerprint) != quarantined else { return }  // still as it failed
            logger.info("files or settings changed since the failure; trying again", metadata: ["dataset": "\(name)"])
            store.update(name) { $0.liftQuarantine(); $0.phase = .waiting; $0.detail = nil }
        }
        // The jobs before the record: a worker records the trained fingerprint before it marks
        // its training job done, so read in this order one of the two always shows the training
        // (read the other way round, another node finishing in between hides both).
        let jobs = pending(name)
        let runtime = store.get(name)
        if fingerprint.images == 0 {
            if let why = fingerprint.whyNoImages {
                logger.warning("\(why)", metadata: ["dataset": "\(name)"])
                store.update(name) { $0.phase = .waiting; $0.detail = why }
            } else {
                logger.info("dataset has no images yet", metadata: ["dataset": "\(name)"])
                store.update(name) { $0.phase = .waiting; $0.detail = "no images yet (expected <dataset>/<class>/<image>)" }
            }
            return
        }
        if fingerprint.value == runtime.trainedFingerprint {
            // Nothing new to learn (a touch, a .ready file, a synthd.toml); but a synthd.toml
            // may ask for another model, more training or other outputs than the published ones.
            if followSettings(name, jobs: jobs) { return }
            if jobs.isEmpty && [.waiting, .removed].contains(runtime.phase) {
                store.update(name) { $0.phase = .done; $0.detail = nil }
            }
            return
        }
        if jobs.contains(where: { $0.kind == .train }) && fingerprint.value == runtime.trainingFingerprint {
            return  // the pending training job already covers these files (a restart, say)
        }
        if jobs.contains(where: { $0.kind == .train && $0.state == .queued }) {
            // A queued training reads the files as they are when it starts: it covers these.
            // (Asking `enqueue` instead raced in a cluster: when another node claimed that job
            // between this read and the enqueue's own, the enqueue saw no queued training and
            // queued a second one, a needless fine-tuning round of `finetune_minutes`.)
            return
        }
        if jobs.contains(where: { $0.kind == .train && $0.state == .running }) && runtime.trainingFingerprint == nil {
            // Its worker is taking the fingerprint of the files it will train on: whether
            // these are newer is known once it has; look again after the settle time.
            settle.note(.changed(dataset: name), at: .now)
            return
        }
        // With no job under way (one that runs would end its record as it ends), a synthd.toml that
        // does not read holds the dataset now rather than when a queued training starts.
        if jobs.isEmpty, settingsRefused(name, fingerprint: fingerprint) { return }
        if runtime.trainedFingerprint == nil, runtime.trainingFingerprint == nil, jobs.isEmpty, checkpointedSteps(name) == 0,
           needsNoModel(name, fingerprint: fingerprint) {
            return
        }
        // A dataset whose first training has taken its files' fingerprint is not new any more:
        // the change is trained in a round after that one.
        let what = runtime.trainedFingerprint != nil ? "dataset changed"
            : runtime.trainingFingerprint != nil ? "dataset changed before its first model was made" : "new dataset"
        enqueue(.train, name, detail: "\(what): \(counted(fingerprint.images, "image")) in \(counted(fingerprint.classes, "class"))")
    }

    func removed(_ name: String) {
        lookedAt[name] = nil  // back with the same files, it is a dataset to look at again
        let cancelled: [Int]
        do { cancelled = try queue.cancel(dataset: name) } catch {
            logger.error("cannot cancel the jobs of \(name): \(error)")
            cancelled = []
        }
        cancellations.insert(name)
        let kept = whatIsKept(name)
        logger.info("dataset left the spool; \(cancelled.isEmpty ? "no jobs" : "jobs \(cancelled) cancelled"), \(kept)",
                    metadata: ["dataset": "\(name)"])
        // Not a record made for a name never decided on (it would be said "removed" for ever);
        // in a cluster a record with no state folder here (before its first training, or
        // trained on another node), which stayed "queued" for a dataset gone, and was said to
        // leave at every look.
        if store.hasRecord(name) { markRemoved(name, kept: kept) }
    }

    /// The record of a dataset that left the spool. Also when its cancelled job ends: the
    /// job's last words ("training the judge for the class check") stayed beside "removed".
    func markRemoved(_ name: String, kept: String? = nil) {
        let kept = kept ?? whatIsKept(name)
        store.update(name) { $0.phase = .removed; $0.detail = "folder left the spool; \(kept)"; $0.progress = nil; $0.eta = nil }
    }

    /// What synthd keeps of a dataset that left, in words: its model and outputs, or nothing
    /// yet (one that left before its first checkpoint, or that needed no model) where "model
    /// and outputs kept" said what was not there.
    func whatIsKept(_ name: String) -> String {
        checkpointedSteps(name) > 0 || output.isPublished(name) ? "model and outputs kept" : "it had no model yet"
    }

    func enqueue(_ kind: Job.Kind, _ name: String, detail: String) {
        do {
            let before = try queue.pending(dataset: name)
            if before.contains(where: { $0.kind == kind && $0.state == .queued }) { return }
            let job = try queue.enqueue(kind, dataset: name, now: Date())
            logger.info("\(detail): \(kind.rawValue) job \(job.id) queued", metadata: ["dataset": "\(name)"])
            if before.allSatisfy({ $0.state != .running }) {
                store.update(name) { $0.phase = .queued; $0.detail = detail; $0.progress = nil; $0.eta = nil }
            }
        } catch {
            logger.error("cannot save the job queue: \(error)")
        }
    }

    // MARK: Spool

    /// Folders directly under the spool (datasets), those `ImageFolder.isVisible` passes over
    /// (hidden, partial copies, `__MACOSX`) left out.
    func spoolDatasets() -> [String] { listedSpool() ?? [] }

    /// The spool's dataset folders; nil when the spool cannot be listed (gone, unmounted, not
    /// readable), which says nothing about whether its datasets are still there.
    func listedSpool() -> [String]? {
        guard let listing = try? FolderListing.of(configuration.spool) else { return nil }
        for entry in listing.undecodable where entry.kind == S_IFDIR {
            reportUnusable(entry.lossy, shown: entry.escaped, problem: "name is not valid UTF-8; \(FolderListing.renameAdvice)")
        }
        return listing.names.filter { ImageFolder.isVisible($0) && directoryExists(configuration.spool + "/" + $0) }
    }

    /// Says once that a spool entry is not taken as a dataset, and why.
    func reportUnusable(_ name: String, shown: String, problem: String) {
        if reportedUnsafe.insert(name).inserted { logger.warning("spool entry '\(shown)' ignored: \(problem)") }
    }

    func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG
    }

    func directoryExists(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
    }

    /// A one-line summary for systemd's STATUS=.
    public func summary(running: [Job]) -> String {
        if running.isEmpty {
            let waiting = (try? queue.queuedCount()) ?? 0
            if waiting > 0, let hold = spaceHold { return "\(waiting) jobs waiting for space on the file system of \(hold.folder)" }
            return waiting == 0 ? "idle; watching \(configuration.spool)" : "\(waiting) jobs waiting"
        }
        return running.map { job in
            let runtime = store.get(job.dataset)
            var text = "\(job.kind == .train ? "training" : "generating") \(job.dataset)"
            if let progress = runtime.progress { text += String(format: " %.0f%%", progress * 100) }
            if let step = runtime.step, job.kind == .train { text += " step \(step)" }
            return text
        }.joined(separator: "; ")
    }
}
