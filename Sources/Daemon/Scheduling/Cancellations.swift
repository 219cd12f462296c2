import Foundation

/// Datasets whose work should stop, shared with worker threads.
public final class Cancellations: @unchecked Sendable {
    private let lock = NSLock()
    private var names: Set<String> = []
    func insert(_ name: String) { lock.lock(); names.insert(name); lock.unlock() }
    func remove(_ name: String) { lock.lock(); names.remove(name); lock.unlock() }
    public func contains(_ name: String) -> Bool { lock.lock(); defer { lock.unlock() }; return names.contains(name) }
}
