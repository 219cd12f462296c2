import Dispatch
import Synchronization

/// Splits independent work over the machine's cores.
///
/// Dispatching costs tens of microseconds on this kind of machine, so work below
/// `minimumPerChunk` units runs on the calling thread (see PLATFORM-NOTES: two chunks of
/// 10 us take 19 us through `concurrentPerform`).
public enum Parallel {
    /// Worker count: the calling thread's `ComputeContext` budget (the daemon sizes each job's
    /// context from the cores it may use; it never changes while the job runs).
    @inlinable
    public static var maxThreads: Int { ComputeContext.current.threads }

    /// Threads a loop started on this thread may use: 1 inside a task of `forEachTask`, whose
    /// tasks already keep every core busy, else `maxThreads`.
    @inlinable
    public static var availableThreads: Int { isInsideTask ? 1 : maxThreads }

    /// Calls `body(range)` for disjoint ranges that cover `0..<count`, possibly concurrently.
    /// `body` must only write to state owned by its range.
    @inlinable
    public static func forRanges(
        _ count: Int, minimumPerChunk: Int,
        _ body: (Range<Int>) -> Void
    ) {
        let chunks = Swift.min(availableThreads, count / Swift.max(minimumPerChunk, 1))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        let context = ComputeContext.current
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                context.run { box.value(start..<end) }
            }
        }
    }
}

extension Parallel {
    /// How many parts `forParts` uses for `count` items.
    @inlinable
    public static func partCount(_ count: Int) -> Int { Swift.max(1, Swift.min(availableThreads, count)) }

    /// Splits `0..<count` into at most `maxThreads` contiguous parts and calls
    /// `body(part, range)` for each, concurrently. `part` indexes per-thread scratch space.
    @inlinable
    public static func forParts(_ count: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
        let parts = partCount(count)
        if parts == 1 {
            body(0, 0..<count)
            return
        }
        let context = ComputeContext.current
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                context.run { box.value(part, (count * part / parts)..<(count * (part + 1) / parts)) }
            }
        }
    }
}

extension Parallel {
    /// Runs `body(worker, task)` for every task in `0..<count`, on up to `maxThreads` workers
    /// that each take the next task as they finish one (coarse tasks of uneven cost, or on
    /// cores that another thread of the process also uses: a static split would leave one
    /// core idle while the other finishes). `worker` indexes per-worker state. With several
    /// workers, parallel loops inside a task run on the task's thread; with one (a single
    /// task, or one thread), tasks run in turn and their loops split as usual.
    public static func forEachTask(_ count: Int, _ body: (_ worker: Int, _ task: Int) -> Void) {
        let workers = Swift.min(availableThreads, count)
        if workers <= 1 {
            for task in 0..<count { body(0, task) }
            return
        }
        let next = TaskCounter()
        let context = ComputeContext.current
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let wasInside = isInsideTask
                setInsideTask(true)
                context.run { while let task = next.take(below: count) { box.value(worker, task) } }
                setInsideTask(wasInside)
            }
        }
    }

    @usableFromInline
    static var isInsideTask: Bool { pthread_getspecific(insideTaskKey) != nil }

    static func setInsideTask(_ inside: Bool) {
        pthread_setspecific(insideTaskKey, inside ? UnsafeRawPointer(bitPattern: 1) : nil)
    }
}

/// Marks the threads running `forEachTask` tasks.
@usableFromInline
let insideTaskKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

/// Hands out task numbers in order, to whichever worker asks first.
final class TaskCounter: Sendable {
    private let taken = Atomic<Int>(0)

    func take(below count: Int) -> Int? {
        let task = taken.wrappingAdd(1, ordering: .relaxed).oldValue
        return task < count ? task : nil
    }
}

/// Carries a value that the caller guarantees is used safely across threads (a buffer whose
/// elements concurrent loops write disjointly, say).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

#if canImport(Glibc)
import Glibc
func activeProcessorCount() -> Int { Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
#else
import Darwin
func activeProcessorCount() -> Int { Swift.max(1, Int(sysconf(_SC_NPROCESSORS_ONLN))) }
#endif
