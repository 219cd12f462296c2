import Foundation
import GAN
import Logging
import Spool

/// What the daemon does now and then besides its jobs (its loop calls these every half
/// minute, or where a cluster's leases expire): interrupted jobs judged, what others removed
/// by hand (outputs, state) noticed, datasets long gone forgotten, unpublished leftovers of a
/// dataset that left removed, and the queue's file written again after a failure.
extension Scheduler {
    /// Judges the jobs whose runner died (see `judgeInterruption`). The embedded queue finds
    /// them when it loads; a cluster's when their leases expire, so its nodes call this now
    /// and then.
    public func takeInterrupted() {
        do {
            for job in try queue.takeInterrupted() {
                if let node = job.node {
                    logger.warning("job \(job.id) (\(job.kind.rawValue)) was running on node \(node), whose lease expired; it goes back to the queue",
                                   metadata: ["dataset": "\(job.dataset)"])
                }
                judgeInterruption(job)
            }
        } catch {
            logger.error("cannot look for interrupted jobs: \(error)")
        }
    }

    /// Removes the unpublished generation folders of datasets that left the spool and that no
    /// job works on (none queued or running, none winding down; `busy`: datasets with a worker
    /// here). A cluster's node killed while generating leaves its `.partial` folder, and no node
    /// sweeps leftovers at start (another's files may be in progress); where the dataset stays
    /// in the spool its next publication prunes it, but one that left was never published
    /// again (found by a three-node soak). Nothing while the spool is missing: an unmounted
    /// spool's datasets have not left it. Returns what was removed, as paths under the output.
    @discardableResult
    public func sweepUnpublished(busy: Set<String>) -> [String] {
        var removed: [String] = []
        guard spoolAbsence == nil else { return removed }
        for dataset in output.datasetsWithUnpublished() where !busy.contains(dataset) {
            guard !entryExists(configuration.spool + "/" + dataset) else { continue }
            do { if try queue.holdsWork(dataset: dataset) { continue } } catch {
                logger.error("cannot read the job queue: \(error)")
                return removed
            }
            let names = output.removeUnpublished(dataset)
            if names.isEmpty { continue }
            let message = "removed the unpublished generation \(names.joined(separator: ", ")) of a dataset that left the spool "
                + "while it was generated (its node stopped)"
            logger.notice("\(message)", metadata: ["dataset": "\(dataset)"])
            removed += names.map { OutputTree.generationsFolder + "/" + dataset + "/" + $0 }
        }
        return removed
    }

    /// Datasets whose published outputs were removed while the daemon ran (the output folder
    /// cleaned by hand): generated again, as a restart would (see `reconcile`), instead of
    /// staying without outputs while `synthd status` still lists them. Called every half
    /// minute.
    public func republishRemovedOutputs() {
        // The output tree first: it costs a readlink and a stat, where a cluster's record is a
        // query, and nearly every dataset has its outputs.
        for name in spoolDatasets() where !output.isPublished(name) {
            let runtime = store.get(name)
            guard runtime.phase == .done, runtime.generation != nil, runtime.quarantinedFor == nil,
                  pending(name).isEmpty else { continue }
            enqueue(.generate, name, detail: "outputs removed from \(output.linkPath(name)); generating them again")
        }
    }

    /// Datasets whose state was removed while the daemon ran (`rm -rf <state>/datasets/<name>`
    /// to train one afresh, or the whole state folder): their records in memory still said
    /// trained, so nothing happened until a restart, and a generation found no model. Each
    /// is forgotten, its waiting jobs cancelled, and looked at afresh once settled, as a new
    /// dataset. A dataset with a running job (`isRunning`) is left to it (its progress writes
    /// its record again, and its checkpoints the model). Called every half minute, and when the
    /// state folder's lock had to be taken again.
    public func forgetRemovedState() {
        for name in store.removedRecords() where !isRunning(name) {
            let phase = store.get(name).phase
            _ = try? queue.cancel(dataset: name)
            store.forget(name)
            guard phase != .removed, directoryExists(configuration.spool + "/" + name) else { continue }
            logger.warning("its state was removed (\(store.folder(name))): its model is gone; trained afresh once its folder settles",
                           metadata: ["dataset": "\(name)"])
            settle.note(.changed(dataset: name), at: .now)
        }
    }

    /// Datasets that left the spool `[service] forget_removed_after_days` ago or more: their
    /// model, state and outputs deleted (`Forgetting`), so that a daemon whose datasets come
    /// and go does not fill its disk; in a cluster their records in the database too. Called
    /// every half minute.
    public func forgetLongRemoved(now: Date = Date()) {
        let days = configuration.forgetRemovedAfterDays
        guard days > 0 else { return }
        for name in store.datasets where !isRunning(name) && pending(name).isEmpty {
            let runtime = store.get(name)
            // In a cluster one node forgets a dataset: the one that may look at it now.
            guard runtime.phase == .removed, now.timeIntervalSince(runtime.updatedAt) >= days * 86_400,
                  !directoryExists(configuration.spool + "/" + name), mayScan(name) else { continue }
            do {
                let freed = try store.forget(name) {
                    try Forgetting.forget(name, spool: configuration.spool, state: configuration.state, output: output)
                }
                let ago = Self.duration(now.timeIntervalSince(runtime.updatedAt)), limit = Self.duration(days * 86_400)
                logger.notice("left the spool \(ago) ago: \(freed.summary) ([service] forget_removed_after_days: after \(limit))",
                              metadata: ["dataset": "\(name)"])
            } catch {
                if reportedForgetFailure.insert(name).inserted { logger.warning("not forgotten: \(error)", metadata: ["dataset": "\(name)"]) }
            }
        }
    }

    /// A span of time as a person says it: "8 days", "1.5 days", "3 hours", "20 minutes",
    /// "45 s" (a limit of 0.0002 days, as tests and soaks set, read "0.0 days").
    static func duration(_ seconds: TimeInterval) -> String {
        func amount(_ value: Double, _ unit: String) -> String {
            let rounded = (value * 10).rounded() / 10
            let number = rounded == rounded.rounded() ? "\(Int(rounded))" : String(format: "%.1f", rounded)
            return number + " " + unit + (rounded == 1 ? "" : "s")
        }
        // Each unit while its rounded figure stays below the next unit, so that 59.6 s is
        // "1 minute", not "60 s".
        if seconds.rounded() < 60 { return "\(Int(seconds.rounded())) s" }
        let units: [(length: Double, name: String)] = [(60, "minute"), (3_600, "hour"), (86_400, "day")]
        for (index, unit) in units.enumerated() {
            let next = index + 1 < units.count ? units[index + 1].length : .infinity
            if (seconds / unit.length * 10).rounded() / 10 < next / unit.length { return amount(seconds / unit.length, unit.name) }
        }
        return amount(seconds / 86_400, "day")
    }

    /// Writes the queue's file again when it fell behind the queue in memory (a full disk,
    /// the state folder removed: `JobQueue.saveFailure`), saying once why it cannot be, and
    /// when it is written again. Called after every finished job and every half minute.
    public func saveQueueIfBehind() {
        let problem = queue.saveIfBehind().map { "\($0)" }
        if let problem, problem != queueSaveProblem {
            logger.error("cannot write the job queue: \(problem); synthd goes on with the queue in memory and tries again every 30 s")
        } else if problem == nil, queueSaveProblem != nil {
            logger.notice("the job queue is written again")
        }
        queueSaveProblem = problem
    }
}
