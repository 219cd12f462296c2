import Daemon
import Foundation
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// This daemon as one node of a cluster: its queue and dataset records in the database, its
/// leases renewed and its heartbeat sent by a thread of its own (with a connection of its
/// own, so that a slow query of the main loop never delays a renewal).
///
/// Fencing, seen from the node: a write to a job's state folder or outputs goes ahead only
/// when the database has just confirmed the lease (a renewal), or, while the database does
/// not answer, when the last confirmation is younger than 75% of a lease. Another node takes
/// the job only after the lease has expired by the database's clock, a full lease after the
/// last confirmation, so the two never write at once unless the clocks' rates differ by
/// more than 25%. Renewals come every quarter of a lease; a job whose
/// lease has gone unconfirmed for 55% of one stops at its next checkpoint. Every change of the job's record names the lease's fencing token and is
/// refused by the database once the token is stale.
public final class ClusterNode: ClusterMembership, @unchecked Sendable {
    public let node: String
    public let jobs: any JobStore
    public let runtime: any SharedRuntime
    public let leaseSeconds: Double
    /// What the node announces of itself (again, if the database forgot it).
    let device: String, threads: Int
    let logger: Logger
    let queue: ClusterQueue
    let records: ClusterRuntime
    /// The keeper's own connection: renewals, heartbeats, write checks.
    let keeperQueue: ClusterQueue
    let registry: NodeRegistry

    private struct Lease {
        var job: Job
        var confirmed: ContinuousClock.Instant
        var stop: ClusterStop?
    }
    private let lock = NSLock()
    private var leases: [Int: Lease] = [:]
    private var draining = false
    private var spaceWaitedFor: String?
    private var spoolMissingText: String?
    private var reloadFailedText: String?
    private var reachable = true
    private let stopping = Atomic<Bool>(false)
    private var keeper: Thread?
    private let clock = ContinuousClock()

    /// Joins the cluster: connects, migrates the schema when it is older than this synthd's,
    /// announces the node, and starts renewing.
    public static func join(_ configuration: Configuration, device: String, threads: Int, logger: Logger) throws -> ClusterNode {
        let address = try DatabaseAddress.parse(configuration.database, passwordFile: DatabaseAddress.passwordFile(configuration.passwordFile))
        let name = configuration.nodeName
        let node = ClusterNode(address: address, node: name, leaseSeconds: configuration.leaseSeconds, device: device,
                               threads: threads, logger: logger)
        // A database that does not answer yet (starting, restarting, the network) is waited
        // for, with backoff, rather than failing the start (which systemd would turn into a
        // restart loop); anything else it says is an error.
        var delay = 1.0
        while true {
            do {
                let migrated = try Schema.migrate(node.queue.database)
                if migrated.from != migrated.to { logger.notice("cluster database schema migrated from version \(migrated.from) to \(migrated.to)") }
                try node.announce()
                break
            } catch let error as ClusterError where error.isUnreachable && !Signals.stopRequested {
                logger.error("\(error); trying again in \(Int(delay)) s")
                var waited = 0.0
                while waited < delay && !Signals.stopRequested { usleep(100_000); waited += 0.1 }
                delay = min(30, delay * 2)
            }
        }
        logger.info("joined the cluster at \(address) as node \(name) (leases of \(Int(configuration.leaseSeconds)) s)")
        node.start()
        return node
    }

    init(address: DatabaseAddress, node: String, leaseSeconds: Double, device: String, threads: Int, logger: Logger) {
        self.node = node
        self.leaseSeconds = leaseSeconds
        self.device = device
        self.threads = threads
        let prefersTraining = device.hasPrefix("cuda")
        self.logger = logger
        // Queries time out well inside a lease, so a renewal that hangs is known in time.
        let timeout = Int64(max(2, min(15, leaseSeconds / 5)))
        queue = ClusterQueue(database: ClusterDatabase(address: address, logger: logger, timeout: timeout), node: node,
                             leaseSeconds: leaseSeconds, prefersTraining: prefersTraining)
        records = ClusterRuntime(database: ClusterDatabase(address: address, logger: logger, timeout: timeout))
        let keeperDatabase = ClusterDatabase(address: address, logger: logger, timeout: timeout)
        keeperQueue = ClusterQueue(database: keeperDatabase, node: node, leaseSeconds: leaseSeconds)
        registry = NodeRegistry(database: keeperDatabase)
        jobs = queue
        runtime = records
    }

    // MARK: ClusterMembership

    public var databaseAnswers: Bool { locked { reachable } }
    public var takesJobs: Bool { locked { reachable && !draining } }
    public var isDraining: Bool { locked { draining } }

    public func drain() {
        locked { draining = true }
        do { _ = try registry.drain(node) } catch { logger.warning("cannot record the drain in the database: \(error)") }
    }

    public func mayScan(_ dataset: String) -> Bool {
        // Held for a minute: the other nodes' scans of the same change fall inside it.
        do { return try records.claimScan(dataset, node: node, seconds: 60) } catch {
            return false  // without the database, no job could be queued anyway
        }
    }

    public func started(_ job: Job) {
        locked { leases[job.id] = Lease(job: job, confirmed: clock.now) }
    }

    public func ended(_ job: Job) {
        let lease = locked { leases.removeValue(forKey: job.id) }
        if lease?.stop == .cancelled { try? keeperQueue.release(job) }
    }

    public func stopReason(_ job: Job) -> ClusterStop? {
        locked {
            guard let lease = leases[job.id] else { return nil }
            if let stop = lease.stop { return stop }
            return clock.now - lease.confirmed > .seconds(leaseSeconds * 0.55) ? .databaseLost : nil
        }
    }

    public func checkWrite(_ job: Job) throws {
        let refused = ClusterError.leaseLost(job: job.id, dataset: job.dataset, token: job.leaseToken ?? 0)
        do {
            let state = try keeperQueue.renew(job)
            note(job, state)
            if state == .lost { throw refused }
        } catch let error as ClusterError where error.isUnreachable {
            let confirmed = locked { leases[job.id]?.confirmed }
            guard let confirmed, clock.now - confirmed < .seconds(leaseSeconds * 0.75) else { throw refused }
        }
    }

    public func waitingForSpace(_ text: String?) {
        locked { spaceWaitedFor = text }  // sent with the next heartbeat
    }

    public func spoolMissing(_ text: String?) {
        locked { spoolMissingText = text }  // sent with the next heartbeat
    }

    public func reloadFailed(_ text: String?) {
        locked { reloadFailedText = text }  // sent with the next heartbeat
    }

    public func leave() {
        stopping.store(true, ordering: .relaxed)
        while keeper?.isFinished == false { usleep(20_000) }
        do { try registry.stopped(node) } catch { logger.warning("cannot record that this node stopped: \(error)") }
    }

    // MARK: The keeper

    func start() {
        let thread = Thread { [self] in
            let period = max(0.5, leaseSeconds / 4)
            while !stopping.load(ordering: .relaxed) {
                keep()
                var waited = 0.0
                while waited < period && !stopping.load(ordering: .relaxed) { usleep(50_000); waited += 0.05 }
            }
        }
        thread.name = "synthd cluster keeper"
        keeper = thread
        thread.start()
    }

    /// One round: the heartbeat (and whether to drain), then every lease this node holds.
    func keep() {
        do {
            let (waiting, spool, reload) = locked { (spaceWaitedFor, spoolMissingText, reloadFailedText) }
            let drain = try registry.heartbeat(node, freeMemory: Self.freeMemory(), waitingForSpace: waiting, spoolMissing: spool,
                                               reloadFailed: reload)
            let wasReachable = locked { () -> Bool in
                defer { reachable = true; if drain == true { draining = true } }
                return reachable
            }
            if !wasReachable { logger.notice("the cluster's database answers again; taking jobs again") }
            if drain == nil {
                // Forgotten by the database (restored from a backup, say): announce again.
                try announce()
            }
        } catch {
            let wasReachable = locked { () -> Bool in defer { reachable = false }; return reachable }
            if wasReachable { logger.error("\(error); running jobs stop at their next checkpoint, no new jobs until it answers") }
        }
        for lease in locked({ Array(leases.values) }) {
            guard let state = try? keeperQueue.renew(lease.job) else { continue }
            note(lease.job, state)
        }
    }

    func announce() throws {
        try registry.announce(node, device: device, threads: threads, freeMemory: Self.freeMemory())
    }

    private func note(_ job: Job, _ state: ClusterQueue.LeaseState) {
        let changed = locked { () -> Bool in
            guard var lease = leases[job.id] else { return false }
            let before = lease.stop
            switch state {
            case .held: lease.confirmed = clock.now
            case .cancelled: lease.stop = .cancelled; lease.confirmed = clock.now
            case .lost: lease.stop = .leaseLost
            }
            leases[job.id] = lease
            return lease.stop != before
        }
        guard changed else { return }
        let log = "job \(job.id) (\(job.kind.rawValue))"
        switch state {
        case .held: break
        case .cancelled: logger.info("\(log) was cancelled by another node; stopping it", metadata: ["dataset": "\(job.dataset)"])
        case .lost: logger.error("\(log): lease lost to another node; stopping without writing", metadata: ["dataset": "\(job.dataset)"])
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Available memory in bytes (MemAvailable), for the node registry.
    static func freeMemory() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib * 1024
    }
}
