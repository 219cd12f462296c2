import Engine
import Synchronization
import Testing

@Suite struct ParallelTests {
    /// Every task runs exactly once, on a worker index below the thread count, and loops
    /// started inside a task stay on its thread.
    @Test func forEachTaskRunsEveryTaskOnceWithNestedLoopsInline() {
        let count = 37
        let runs = Mutex([Int](repeating: 0, count: count))
        let nestedParts = Atomic<Int>(0), badWorker = Atomic<Int>(0)
        Parallel.forEachTask(count) { worker, task in
            if worker < 0 || worker >= Parallel.maxThreads { badWorker.wrappingAdd(1, ordering: .relaxed) }
            runs.withLock { $0[task] += 1 }
            #expect(Parallel.availableThreads == 1 || count == 1)
            Parallel.forParts(1000) { _, _ in nestedParts.wrappingAdd(1, ordering: .relaxed) }
        }
        #expect(runs.withLock { $0.allSatisfy { $0 == 1 } })
        #expect(badWorker.load(ordering: .relaxed) == 0)
        // Inside a task each forParts is one part; outside, the loop is split again.
        #expect(Parallel.maxThreads == 1 || nestedParts.load(ordering: .relaxed) == count)
        #expect(Parallel.availableThreads == Parallel.maxThreads)
    }
}
