import Archives
import CLinux
import Engine
import Foundation
import Imaging
import Logging
import Synchronization

/// Archives dropped into the spool (`flowers.zip`, `pets.tar.gz`): each is unpacked, once it
/// has stopped changing, into a folder beside it named after it (`spool/flowers`), which the
/// daemon then takes as any dataset dropped there. The archive itself is left as it is.
///
/// Unpacking runs on a thread of its own, one archive at a time, into a hidden folder of the
/// spool (`.synthd-unpacking.<pid>.<name>`, which nothing reads; in a cluster
/// `.synthd-unpacking.<node>@<pid>.<name>`), and the dataset's folder appears by one rename
/// when every image is in: the daemon never sees half an archive, and a kill leaves only the
/// hidden folder, removed at the next start (in a cluster, the same node's), which unpacks it again.
/// What became of each archive is kept in the state folder's `archives.json` (`synthd status`
/// shows it): an archive is unpacked once; copied again (a new size or time), it is looked
/// at again. A folder of its name already there is never written into or replaced.
///
/// Not thread-safe: the service's main loop owns it (through the scheduler).
public final class ArchiveIntake {
    let spool: String
    let stateFolder: String
    let logger: Logger
    private(set) var settleSeconds: Double
    private(set) var limits: Unpacker.Limits
    public private(set) var records: [String: ArchiveRecord]
    /// Archives seen and not yet unpacked: their size and time when last looked at, and since
    /// when those have not changed.
    private var candidates: [String: Candidate] = [:]
    private var worker: Worker?
    /// Links in the spool named like archives, said once each.
    private var reportedLinks: Set<String> = []
    /// In a cluster, whether this node unpacks the archive of this dataset name (one node does).
    public var mayUnpack: (String) -> Bool = { _ in true }
    /// Records that `archives.json` did not take (a full disk), written again every
    /// `saveRetrySeconds`; until then the ones in memory are the truth.
    private var unsaved: Set<String> = []
    private var lastSaveTry = Moment.now
    /// Whether the last write of `archives.json` failed (said once until one succeeds).
    private var writeFailing = false
    /// Archives waiting for their record to be writable before they are unpacked (said once).
    private var waitingForRecord: Set<String> = []
    public var saveRetrySeconds = 30.0

    /// The prefix of unpacking folders in the spool.
    public static let stagingPrefix = ".synthd-unpacking."
    /// The prefix of this daemon's own unpacking folders: in a cluster the node's name and an
    /// `@` (which a node's name cannot hold, so no node's prefix starts another's).
    let ownStagingPrefix: String

    struct Candidate {
        var size: UInt64
        var modified: Double
        var stableSince: Moment
    }

    /// Removes the unpacking folders an interrupted run left in the spool: on one machine
    /// every one; in a cluster (`node`: this node's name) only this node's, since another
    /// node's may be in progress. A node is one process, so its earlier folders are a kill's.
    public init(configuration: Configuration, logger: Logger, node: String? = nil) {
        spool = configuration.spool
        stateFolder = configuration.state
        self.logger = logger
        settleSeconds = configuration.settleSeconds
        limits = Self.limits(configuration)
        records = ArchiveRecords.read(stateFolder: configuration.state)
        ownStagingPrefix = Self.stagingPrefix + (node.map { $0 + "@" } ?? "")
        sweepLeftovers(clustered: node != nil)
    }

    static func limits(_ configuration: Configuration) -> Unpacker.Limits {
        Unpacker.Limits(maxBytes: UInt64(configuration.maxUnpackedGigabytes * Double(1 << 30)), reserveBytes: 512 << 20)
    }

    public func reload(_ configuration: Configuration) {
        settleSeconds = configuration.settleSeconds
        limits = Self.limits(configuration)
    }

    /// Whether an unpacking is under way.
    public var isUnpacking: Bool { worker != nil }

    /// An archive arrived in the spool, or was seen there (at start, by a scan): it is
    /// unpacked once it has not changed for the settle time, unless its record says it was
    /// already, or failed in a way only a new copy mends.
    public func note(_ name: String, now: Moment = .now) {
        // A link is not followed, as a dataset's links out of the spool are not: the daemon
        // may read what the user who made it may not.
        var status = stat()
        if lstat(spool + "/" + name, &status) == 0, status.st_mode & S_IFMT == S_IFLNK {
            if reportedLinks.insert(name).inserted {
                logger.warning("\(spool)/\(name): a symbolic link; not followed (copy or move the archive into the spool)")
            }
            return
        }
        guard let (size, modified) = Self.fileSize(spool + "/" + name) else {
            candidates[name] = nil
            return
        }
        // Being unpacked now: a scan meanwhile (`poll_seconds`) must not make this copy a
        // candidate again, which, tried once the unpacking ended, found its own folder there
        // and recorded a failure whose retry unpacked the archive anew when the user removed
        // that folder. (A new copy written meanwhile is a candidate.)
        if let worker, worker.name == name, worker.record.isOf(size: size, modified: modified) { return }
        // Done with, or failed in a way only a new copy mends (a failure worth another try
        // comes back through `retryDue`).
        if let record = records[name], record.isOf(size: size, modified: modified), record.state != .unpacking { return }
        if let known = candidates[name], known.size == size, known.modified == modified { return }
        // A file untouched for the settle time already (there before the daemon started) goes at once.
        let age = Date().timeIntervalSince1970 - modified
        candidates[name] = Candidate(size: size, modified: modified,
                                     stableSince: age >= settleSeconds ? now.adding(seconds: -settleSeconds) : now)
    }

    /// Called every turn of the daemon's loop: takes a finished unpacking's outcome, starts
    /// the next settled archive's. Returns the datasets whose folders just appeared.
    public func tick(now: Moment = .now) -> [String] {
        var published: [String] = []
        if let name = unsaved.first, lastSaveTry.seconds(to: now) >= saveRetrySeconds, let record = records[name] {
            save(name, record)
        }
        if let worker {
            if let outcome = worker.outcome.withLock({ $0 }) {
                self.worker = nil
                if let dataset = finish(worker.name, worker.record, outcome) { published.append(dataset) }
            } else if worker.lastSaved.secondsAgo >= 1 {
                let progress = worker.progress.withLock { $0 }
                update(worker.name) {
                    ($0.files, $0.bytes, $0.expectedFiles, $0.fraction) = (progress.files, progress.bytes, progress.expectedFiles, progress.fraction)
                }
                worker.lastSaved = now
            }
        }
        retryDue(now: now)
        guard worker == nil else { return published }
        for name in candidates.keys.sorted() {
            guard var candidate = candidates[name] else { continue }
            guard let (size, modified) = Self.fileSize(spool + "/" + name) else {
                candidates[name] = nil  // removed before it was unpacked
                continue
            }
            if size != candidate.size || modified != candidate.modified {
                candidate = Candidate(size: size, modified: modified, stableSince: now)
                candidates[name] = candidate
                continue
            }
            guard candidate.stableSince.seconds(to: now) >= settleSeconds, let stem = ArchiveFormat.of(name: name)?.stem else { continue }
            candidates[name] = nil
            // In a cluster another node took it (its record comes through the shared file).
            guard mayUnpack(stem) else { continue }
            start(name, stem: stem, size: size, modified: modified)
            break
        }
        return published
    }

    /// Archives whose failure is worth trying again now: a later time reached (a full disk),
    /// or the folder that was in the way gone.
    private func retryDue(now: Moment) {
        let date = Date()
        for (name, record) in records where record.state == .failed && candidates[name] == nil && worker?.name != name {
            let due = record.retryAt.map { $0 <= date } ?? false
            let cleared = record.waitsForFolder && !FileManager.default.fileExists(atPath: spool + "/" + record.dataset)
            guard due || cleared else { continue }
            update(name) { $0.retryAt = nil; $0.waitsForFolder = false; $0.modified = -1 }  // no longer "the same file, done"
            note(name, now: now.adding(seconds: -settleSeconds))
        }
    }

    private func start(_ name: String, stem: String, size: UInt64, modified: Double) {
        var record = ArchiveRecord(size: size, modified: modified, state: .unpacking, dataset: stem, updatedAt: Date())
        record.startedAt = record.updatedAt
        let destination = spool + "/" + stem
        if let problem = SafeName.problem(with: stem) {
            record.state = .failed
            record.error = "not unpacked: '\(stem)' cannot name a dataset (\(problem)); rename the archive"
            fail(name, record)
            return
        }
        if FileManager.default.fileExists(atPath: destination) {
            record.state = .failed
            let earlier = records[name]?.state == .unpacked ? ", unpacked from an earlier copy of it," : ""
            record.error = "not unpacked: \(destination)\(earlier) is there already, and synthd does not write into it; "
                + "remove or rename that folder (the archive is then unpacked), or rename the archive"
            record.waitsForFolder = true
            fail(name, record)
            return
        }
        // Never unpacked without a record of it on disk: killed before one was written, the
        // next start found the dataset's folder, took it for the user's ("is there already"),
        // and unpacked the archive again once the user removed that folder (a soak's full
        // disk, twice). Tried again when the record can be written.
        let before = records[name]
        guard save(name, record) else {
            unsaved.remove(name)
            records[name] = before
            candidates[name] = Candidate(size: size, modified: modified, stableSince: Moment.now.adding(seconds: saveRetrySeconds - settleSeconds))
            if waitingForRecord.insert(name).inserted {
                logger.warning("\(spool)/\(name): not unpacked yet: its record cannot be written; tried again every \(Int(saveRetrySeconds)) s")
            }
            return
        }
        waitingForRecord.remove(name)
        logger.info("\(spool)/\(name): unpacking into \(destination)")
        let worker = Worker(name: name, record: record)
        self.worker = worker
        let (path, staging, limits) = (spool + "/" + name, spool + "/" + ownStagingPrefix + "\(getpid()).\(stem)", limits)
        let thread = Thread {
            let outcome = Self.unpack(path, staging: staging, destination: destination, limits: limits, worker: worker)
            worker.outcome.withLock { $0 = outcome }
        }
        thread.name = "synthd unpack \(name)"
        thread.start()
    }

    /// Unpacks, then moves the dataset's folder into place; the staging folder is removed
    /// either way.
    static func unpack(_ path: String, staging: String, destination: String, limits: Unpacker.Limits, worker: Worker) -> Outcome {
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let started = Moment.now
        do {
            guard let (format, _) = ArchiveFormat.of(name: (path as NSString).lastPathComponent) else {
                return .failure(.unreadable(archive: path, reason: "not an archive by its name"))
            }
            let reader = try ArchiveFormat.open(path: path, named: format)
            var spool = stat()
            let shared = stat((destination as NSString).deletingLastPathComponent, &spool) == 0 && spool.st_mode & S_IWGRP != 0
            let result = try Unpacker(limits: limits, groupWritable: shared).unpack(reader, into: staging, progress: { progress in
                worker.progress.withLock { $0 = progress }
            }, shouldStop: { worker.stop.load(ordering: .relaxed) })
            // Durable before it is visible: a power cut after the rename must not leave a
            // dataset of empty files.
            syncFileSystem(containing: staging)
            guard synthd_rename_noreplace(result.root, destination) == 0 else {
                let code = errno
                if code == EEXIST || code == ENOTEMPTY {
                    return .failure(.write(archive: path, path: destination, reason: "appeared while the archive was unpacked; left as it is", errno: code))
                }
                return .failure(.write(archive: path, path: destination, reason: String(cString: strerror(code)), errno: code))
            }
            return .success(result, seconds: started.secondsAgo)
        } catch {
            return .failure(error)
        }
    }

    /// Records the outcome; returns the dataset when its folder appeared.
    private func finish(_ name: String, _ started: ArchiveRecord, _ outcome: Outcome) -> String? {
        var record = started
        record.updatedAt = Date()
        record.fraction = nil
        switch outcome {
        case .success(let result, let seconds):
            record.state = .unpacked
            record.files = result.files
            record.bytes = result.bytes
            record.skipped = result.skipped.count
            record.leftOutSplits = result.leftOutSplits.isEmpty ? nil : result.leftOutSplits.map(\.name)
            save(name, record)
            logger.notice("\(spool)/\(name): unpacked \(result.files) images (\(ArchiveRecord.megabytes(result.bytes))) into \(spool)/\(record.dataset) in \(String(format: "%.1f", seconds)) s")
            if !result.leftOutSplits.isEmpty {
                let splits = result.leftOutSplits.map { "\($0.name) (\($0.files) images)" }.joined(separator: ", ")
                logger.notice("\(spool)/\(name): a download's splits: its training split is the dataset, and \(splits) left out, since a model trained on them would leak them into the synthetic images and so into a classifier's evaluation")
            }
            for skipped in result.skipped.prefix(10) { logger.warning("\(spool)/\(name): \(skipped.path): \(skipped.reason)") }
            if result.skipped.count > 10 { logger.warning("\(spool)/\(name): \(result.skipped.count - 10) more members not unpacked") }
            return record.dataset
        case .failure(.stopped):
            // Unpacked again at the next start: no record of this try.
            forget(name)
            return nil
        case .failure(let error):
            record.state = .failed
            record.error = error.reason
            if error.isTransient { record.retryAt = Date().addingTimeInterval(Self.retrySeconds) }
            if case .write(_, _, _, let code) = error, code == EEXIST || code == ENOTEMPTY { record.waitsForFolder = true; record.retryAt = nil }
            fail(name, record)
            return nil
        }
    }

    /// After a failure that is not the archive's (a full disk), seconds before the next try.
    static let retrySeconds: TimeInterval = 300

    private func fail(_ name: String, _ record: ArchiveRecord) {
        save(name, record)
        let line: Logger.Message = "\(spool)/\(name): \(record.error ?? "not unpacked")"
        // A folder of its name in the way is the user's to settle, and the archive waits for
        // it (nothing is lost): a warning. A failure of the archive or the disk is an error.
        if record.waitsForFolder { logger.warning(line) } else { logger.error(line) }
    }

    private func update(_ name: String, _ change: (inout ArchiveRecord) -> Void) {
        guard var record = records[name] else { return }
        change(&record)
        record.updatedAt = Date()
        save(name, record)
    }

    /// Writes `archives.json` with this record; false when it could not (said once, and the
    /// record is written again later with the next try of any).
    @discardableResult
    private func save(_ name: String, _ record: ArchiveRecord) -> Bool {
        // The file as it is now, for the other names (in a cluster the nodes share it), but
        // this process's records that the file did not take yet.
        let mine = records.filter { unsaved.contains($0.key) }.merging([name: record]) { _, latest in latest }
        records = ArchiveRecords.read(stateFolder: stateFolder).merging(mine) { _, own in own }
        // Records of archives no longer in the spool go with the next write.
        records = records.filter { mine[$0.key] != nil || FileManager.default.fileExists(atPath: spool + "/" + $0.key) }
        lastSaveTry = .now
        do {
            try ArchiveRecords.write(records, stateFolder: stateFolder)
            if writeFailing { logger.info("\(stateFolder)/\(ArchiveRecords.fileName): written again") }
            unsaved = []
            writeFailing = false
            return true
        } catch {
            if !writeFailing {
                logger.error("\(stateFolder)/\(ArchiveRecords.fileName): cannot write: \(error); the records are kept in memory and written again every \(Int(saveRetrySeconds)) s")
            }
            writeFailing = true
            unsaved.insert(name)
            return false
        }
    }

    private func forget(_ name: String) {
        unsaved.remove(name)
        let mine = records.filter { unsaved.contains($0.key) }
        records = ArchiveRecords.read(stateFolder: stateFolder).merging(mine) { _, own in own }
        guard records.removeValue(forKey: name) != nil else { return }
        try? ArchiveRecords.write(records, stateFolder: stateFolder)
    }

    /// Asks a running unpacking to stop and waits for it (a few seconds at most: it stops
    /// between chunks of a megabyte).
    public func stop() {
        guard let worker else { return }
        worker.stop.store(true, ordering: .relaxed)
        let deadline = Moment.now.adding(seconds: 5)
        while worker.outcome.withLock({ $0 }) == nil && Moment.now < deadline { usleep(20_000) }
        if let outcome = worker.outcome.withLock({ $0 }) { _ = finish(worker.name, worker.record, outcome) }
        self.worker = nil
    }

    private func sweepLeftovers(clustered: Bool) {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] where name.hasPrefix(ownStagingPrefix) {
            logger.info("\(spool)/\(name): removing what an interrupted unpacking left")
            try? FileManager.default.removeItem(atPath: spool + "/" + name)
        }
        // A record left "unpacking" by a killed daemon: that try is void. (In a cluster the
        // record may be another node's unpacking; a node takes one over when it unpacks.)
        guard !clustered else { return }
        for (name, record) in records where record.state == .unpacking { forget(name) }
    }

    /// A regular file's size and time; nil for anything else (links not followed).
    public static func fileSize(_ path: String) -> (UInt64, Double)? {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
        return (UInt64(status.st_size), Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1e9)
    }

    enum Outcome: Sendable, Equatable {
        case success(Unpacker.Result, seconds: Double)
        case failure(ArchiveError)
    }

    /// The unpacking thread's side: progress and outcome, read by the loop.
    final class Worker: Sendable {
        let name: String
        let record: ArchiveRecord
        let progress = Mutex(Unpacker.Progress())
        let outcome = Mutex<Outcome?>(nil)
        let stop = Atomic<Bool>(false)
        nonisolated(unsafe) var lastSaved = Moment.now

        init(name: String, record: ArchiveRecord) {
            self.name = name
            self.record = record
        }
    }
}
