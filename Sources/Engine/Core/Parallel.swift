import Dispatch

/// Splits independent work over the machine's cores.
///
/// Dispatching costs tens of microseconds on this kind of machine, so work below
/// `minimumPerChunk` units runs on the calling thread (see PLATFORM-NOTES: two chunks of
/// 10 us take 19 us through `concurrentPerform`).
public enum Parallel {
    /// Worker count; set it from the cores actually free (the daemon shares its machine).
    nonisolated(unsafe) public static var maxThreads: Int = activeProcessorCount()

    /// Calls `body(range)` for disjoint ranges that cover `0..<count`, possibly concurrently.
    /// `body` must only write to state owned by its range.
    @inlinable
    public static func forRanges(
        _ count: Int, minimumPerChunk: Int,
        _ body: (Range<Int>) -> Void
    ) {
        let chunks = Swift.min(maxThreads, count / Swift.max(minimumPerChunk, 1))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = count * chunk / chunks
                let end = count * (chunk + 1) / chunks
                box.value(start..<end)
            }
        }
    }
}

extension Parallel {
    /// How many parts `forParts` uses for `count` items.
    @inlinable
    public static func partCount(_ count: Int) -> Int { Swift.max(1, Swift.min(maxThreads, count)) }

    /// Splits `0..<count` into at most `maxThreads` contiguous parts and calls
    /// `body(part, range)` for each, concurrently. `part` indexes per-thread scratch space.
    @inlinable
    public static func forParts(_ count: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
        let parts = partCount(count)
        if parts == 1 {
            body(0, 0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                box.value(part, (count * part / parts)..<(count * (part + 1) / parts))
            }
        }
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
