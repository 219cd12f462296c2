import Engine
import Foundation

/// What the daemon is doing with one dataset, as `synthd status` shows it. Saved as
/// `daemon.json` in the dataset's state folder (atomically), so status reads it from another
/// process while the daemon runs, and the daemon finds it again after a restart.
public struct DatasetRuntime: Codable, Equatable, Sendable {
    public enum Phase: String, Codable, Sendable {
        /// Seen; waiting for the folder to settle (or to get images).
        case waiting
        case queued
        case training
        case generating
        case done
        case failed
        /// The folder left the spool; model and outputs are kept.
        case removed
    }

    public var phase: Phase = .waiting
    /// What the phase means right now, in words ("fine-tuning: 120 images added").
    public var detail: String?
    /// Of the current job, 0...1.
    public var progress: Double?
    /// When the current job should end (ISO 8601).
    public var eta: Date?
    public var step: Int?
    /// The running training job's whole budget, in seconds (with `progress`, what a job
    /// interrupted by a kill has left).
    public var budgetSeconds: Double?
    /// The model's step when the current training round began (kept across its time slices
    /// and restarts): where the cap on passes over the data (`max_epochs`) counts from.
    public var roundStartStep: Int?
    /// Where the latest job computed ("cpu", "cuda:0 (NVIDIA H200)").
    public var device: String?
    /// Images in the published generation, and which checkpoint made them.
    public var outputsWritten: Int = 0
    public var generation: String?
    /// The size its images were written at ("341x256"), where that is not the dataset's
    /// (`[generation] max_short_side`).
    public var outputSize: String?
    /// Synthetic images per class of the latest generation job, and the rule that chose them.
    public var planned: [String: Int]?
    public var plannedRule: String?
    /// Per class, the published images' diversity (`SyntheticWriter.Summary.diversity`: their
    /// spread in the judge's features over the real images'); under 0.5 they have collapsed.
    public var diversity: [String: Double]?
    public var lastError: String?
    /// When a failed job is tried again.
    public var retryAt: Date?
    /// Fingerprint of the files the model was last trained on (see DatasetFingerprint).
    public var trainedFingerprint: String?
    /// Set when a dataset without a model asked for no synthetic images (a balanced one with
    /// `enlarge = 0`): the fingerprint of its files then. No model is trained for it (twenty
    /// minutes of training for nothing, other datasets waiting behind it) until its files, its
    /// synthd.toml (`settingsSeen`) or the daemon's configuration ask for images.
    public var nothingToWriteFor: String?
    /// Fingerprint of the files the running (or interrupted) training job loaded.
    public var trainingFingerprint: String?
    /// The training minutes the model has had, as asked (`TrainingOn`): its first training's
    /// `minutes`, then each larger `minutes` a dataset's synthd.toml asked for and the model
    /// trained on to. Fine-tuning rounds do not count. nil: a model trained before synthd kept
    /// it (read as the daemon's `minutes`).
    public var trainedMinutes: Double?
    /// The `minutes` the running training round brings the model to, when it is a first
    /// training or trains on (nil for fine-tuning): `trainedMinutes` once it completes. Kept
    /// across its time slices and restarts, as `roundStartStep`.
    public var roundMinutes: Double?
    /// The dataset's `synthd.toml` (`DatasetFingerprint.settingsKey`) as the daemon last
    /// followed it with nothing left to do: the published outputs are those it asks for.
    /// `synthd wait` waits while the file there now is another. nil: not followed since synthd
    /// kept it.
    public var settingsSeen: String?
    /// Why that `synthd.toml` does not read (a wrong key, a value out of range), while it
    /// does not: its changes are not followed, and `synthd status` and `synthd wait` say so.
    public var settingsError: String?
    /// Set when a job failed for good (a fault of the dataset or its settings, or a dataset
    /// that killed synthd three times): the dataset's files and `synthd.toml` as they were then
    /// (`Scheduler.changeKey`). Until they change, nothing (a restart, a `.ready` file, a
    /// touch, a rescan) queues the dataset again.
    public var quarantinedFor: String?
    /// Set when the disk stayed full through every retry: the free bytes then, the folder
    /// whose file system was full (the output's, or the state folder's: checkpoints), and the
    /// job that failed, which is queued again when space is freed there.
    public var freeBytesAtFailure: Int?
    public var fullFolder: String?
    public var failedJob: Job.Kind?
    public var updatedAt = Date()

    public init() {}

    /// Whether a model in the state folder has yet to finish its first training: none of its
    /// rounds has completed (the first was stopped between slices, or `synthd train` left the
    /// model there). Its next job continues that training, with the training budget, instead
    /// of fine-tuning: `JobRunner` decides by this, and `synthd check` says so.
    public var firstTrainingUnfinished: Bool { trainedFingerprint == nil }

    /// Clears what a quarantine set (the change key and the wait for disk space).
    mutating func liftQuarantine() {
        quarantinedFor = nil
        freeBytesAtFailure = nil
        fullFolder = nil
        failedJob = nil
    }
}

/// Where the records live when several nodes share them: the cluster's database, which
/// changes a record in one transaction, so that two nodes' changes never overwrite each other.
public protocol SharedRuntime: Sendable {
    func load(_ dataset: String) throws -> DatasetRuntime?
    /// Reads, changes and writes the dataset's record as one step; returns the new record.
    func update(_ dataset: String, _ change: (inout DatasetRuntime) -> Void) throws -> DatasetRuntime
    func datasets() throws -> [String]
    /// Deletes the dataset's record unless a job of it is queued or running (then throws a
    /// `Forgetting.Error` naming the job). `deletingFiles` runs while the record is held, so
    /// no node starts a job of the dataset meanwhile, and a failure there keeps the record.
    /// Returns whether there was a record.
    @discardableResult
    func forget(_ dataset: String, deletingFiles: () throws -> Void) throws -> Bool
}

/// Reads and writes every dataset's record: `daemon.json` in its state folder on one machine,
/// the cluster's database (`shared`) with several nodes. Workers and the main loop both
/// update records, so access goes through a lock; each update replaces the file atomically.
public final class RuntimeStore: @unchecked Sendable {
    /// `<state>/datasets`: one state folder per dataset.
    public let root: String
    /// The cluster's records; nil: `daemon.json` files, cached (this process is their only writer).
    public let shared: (any SharedRuntime)?
    private let lock = NSLock()
    private var cache: [String: DatasetRuntime] = [:]
    /// Local records read or written at least once: one of these whose file is gone was
    /// removed by hand (see `removedRecords`), not never written (a full disk).
    private var onDisk: Set<String> = []

    public init(root: String, shared: (any SharedRuntime)? = nil) {
        self.root = root
        self.shared = shared
    }

    public func folder(_ dataset: String) -> String { root + "/" + dataset }
    func path(_ dataset: String) -> String { folder(dataset) + "/daemon.json" }

    /// Datasets that have a state folder (or, in a cluster, a record).
    public var datasets: [String] {
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { !$0.hasPrefix(".") }
        return Set(folders + ((try? shared?.datasets()) ?? [])).sorted()
    }

    /// The dataset's record. In a cluster it is read afresh (other nodes change it); when the
    /// database cannot be reached, the last record seen.
    public func get(_ dataset: String) -> DatasetRuntime {
        lock.lock()
        defer { lock.unlock() }
        if let shared {
            if let loaded = try? shared.load(dataset) { cache[dataset] = loaded; return loaded }
            return cache[dataset] ?? DatasetRuntime()
        }
        if let cached = cache[dataset] { return cached }
        guard let runtime = Self.read(path(dataset)) else {
            cache[dataset] = DatasetRuntime()
            return DatasetRuntime()
        }
        cache[dataset] = runtime
        onDisk.insert(dataset)
        return runtime
    }

    /// Changes the dataset's record and saves it. A failed save (disk full, the database out
    /// of reach) is returned, not thrown: status is informative, and the in-memory record stays right.
    @discardableResult
    public func update(_ dataset: String, _ change: (inout DatasetRuntime) -> Void) -> (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        if let shared {
            do {
                cache[dataset] = try shared.update(dataset) { runtime in
                    change(&runtime)
                    runtime.updatedAt = Date()
                }
                return nil
            } catch {
                var runtime = cache[dataset] ?? DatasetRuntime()
                change(&runtime)
                cache[dataset] = runtime
                return error
            }
        }
        var runtime = cache[dataset] ?? Self.read(path(dataset)) ?? DatasetRuntime()
        change(&runtime)
        runtime.updatedAt = Date()
        cache[dataset] = runtime
        do {
            try createFolders(folder(dataset))
            try writeFileAtomically(path: path(dataset), bytes: Self.encode(runtime), durable: false)
            onDisk.insert(dataset)
            return nil
        } catch {
            return error
        }
    }

    /// Whether the dataset has a record: its state folder on one machine; in a cluster, a row
    /// in the database (a node that never ran a job of the dataset has no state folder of it).
    /// When the database cannot be reached, whether this process has seen one.
    public func hasRecord(_ dataset: String) -> Bool {
        if let shared {
            do { return try shared.load(dataset) != nil } catch { return lock.withLock { cache[dataset] != nil } }
        }
        return FileManager.default.fileExists(atPath: folder(dataset))
    }

    /// Local datasets whose record this process read or wrote and whose file is gone now
    /// (their state folder removed by hand, or the whole state folder). Never in a cluster.
    public func removedRecords() -> [String] {
        lock.lock()
        defer { lock.unlock() }
        guard shared == nil else { return [] }
        return onDisk.filter { !FileManager.default.fileExists(atPath: path($0)) }.sorted()
    }

    /// Forgets what this process knew of the dataset's record: the next read is the file's.
    public func forget(_ dataset: String) {
        lock.lock()
        defer { lock.unlock() }
        cache[dataset] = nil
        onDisk.remove(dataset)
    }

    /// Deletes the dataset's files (`deletingFiles`: its state folder, where the record is on
    /// one machine) and, in a cluster, its record in the database, refused there while a job
    /// of it is queued or running (`SharedRuntime.forget`).
    public func forget<T>(_ dataset: String, deletingFiles: () throws -> T) throws -> T {
        var result: T?
        if let shared {
            try shared.forget(dataset) { result = try deletingFiles() }
        } else {
            result = try deletingFiles()
        }
        forget(dataset)
        return result!
    }

    public static func encode(_ runtime: DatasetRuntime) throws -> [UInt8] {
        try RecordJSON.encode(runtime)
    }

    /// The local records that exist but cannot be read (written by hand, or a damaged disk:
    /// synthd replaces them atomically), with why: their datasets start afresh, and the
    /// daemon says so at start-up rather than silently retraining them.
    public func unreadableRecords() -> [(path: String, reason: String)] {
        guard shared == nil else { return [] }
        return datasets.compactMap { dataset in
            guard case .failure(let error) = Self.load(path(dataset)) else { return nil }
            return (path(dataset), describeDecodingFailure(error))
        }
    }

    public static func read(_ path: String) -> DatasetRuntime? { try? load(path)?.get() }

    /// The record at `path` decoded, or why not; nil when there is no file to read.
    static func load(_ path: String) -> Result<DatasetRuntime, any Error>? {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)) else { return nil }
        return Result { try decode(data) }
    }

    public static func decode(_ data: Data) throws -> DatasetRuntime {
        try RecordJSON.decode(DatasetRuntime.self, from: data).withinBounds
    }
}

extension DatasetRuntime {
    /// The record with each number out of what synthd writes dropped (or, where a field must
    /// stay, clamped), rather than the record refused: it carries a quarantine and the wait for
    /// disk space, which matter more than a damaged progress figure. Unchecked, a free-space
    /// figure of 2^63 - 1 overflowed the retry check every 30 s (a restart loop), and a step
    /// of -2^63 the cap on passes.
    var withinBounds: DatasetRuntime {
        var r = self
        if let p = r.progress, !(0...1).contains(p) { r.progress = nil }
        if let s = r.step, s < 0 { r.step = nil }
        if let b = r.budgetSeconds, !(b.isFinite && b >= 0) { r.budgetSeconds = nil }
        if let s = r.roundStartStep, s < 0 { r.roundStartStep = nil }
        // As `[training] minutes` reads them: a round's budget is made of them.
        if let m = r.trainedMinutes, !(0...100_000).contains(m) { r.trainedMinutes = nil }
        if let m = r.roundMinutes, !(0...100_000).contains(m) { r.roundMinutes = nil }
        r.outputsWritten = max(0, r.outputsWritten)
        r.freeBytesAtFailure = r.freeBytesAtFailure.map { min(max($0, 0), 1 << 62) }
        return r
    }
}
