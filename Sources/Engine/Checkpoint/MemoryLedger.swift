import Foundation

/// The memory this process may use (`MemoryLimit`), shared by the jobs it runs at once (the
/// daemon's `[service] concurrency`): while a job runs, its dataset claims what it takes at
/// least (`TrainingSet.leastMemory`), and a job about to load is offered the limit less the
/// other jobs' claims. Checked per dataset only, two datasets that each fit alone but not
/// together were both loaded, and the OOM killer took the daemon and every job with it.
public final class MemoryLedger: @unchecked Sendable {
    /// The whole limit; nil where nothing says (not Linux): nothing is checked then.
    public let limit: MemoryLimit?
    private let lock = NSLock()
    private var claims: [String: Int] = [:]

    public init(limit: MemoryLimit? = .current()) { self.limit = limit }

    /// The limit less what holders other than `holder` claim, its source saying so.
    public func available(to holder: String) -> MemoryLimit? {
        guard let limit else { return nil }
        let others = lock.withLock { claims.filter { $0.key != holder } }
        guard !others.isEmpty else { return limit }
        let held = others.values.reduce(0, +)
        return MemoryLimit(bytes: max(0, limit.bytes - held),
                           source: "\(limit) less \(MemoryLimit.gibibytes(held)) held by the jobs of \(others.keys.sorted().joined(separator: ", "))")
    }

    /// `holder`'s claim, replacing any it had.
    public func claim(_ bytes: Int, by holder: String) { lock.withLock { claims[holder] = bytes } }

    public func release(_ holder: String) { _ = lock.withLock { claims.removeValue(forKey: holder) } }

    /// The holders with a claim now, and their bytes.
    public var held: [String: Int] { lock.withLock { claims } }
}
