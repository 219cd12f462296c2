import Engine
import Foundation
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

/// The thread budget and FLOP counter belong to the job (its `ComputeContext`), not to the
/// process: a context entered on one thread does not change another's, it reaches the
/// threads that run a parallel loop's chunks, and it is gone when `run` returns.
@Suite struct ComputeContextTests {
    @Test func eachJobSeesItsOwnBudgetAndCountsItsOwnWork() throws {
        #expect(Parallel.maxThreads == ComputeContext.processDefault.threads)
        let one = ComputeContext(threads: 1), three = ComputeContext(threads: 3)
        let seen = Mutex<[Int: Set<Int>]>([:])
        let done = DispatchSemaphore(value: 0)
        for (tag, context) in [(1, one), (3, three)] {
            Thread {
                context.run {
                    for _ in 0..<50 {
                        Parallel.forRanges(4096, minimumPerChunk: 1) { _ in
                            let threads = Parallel.maxThreads
                            seen.withLock { _ = $0[tag, default: []].insert(threads) }
                        }
                        let a = Tensor(zeros: [64, 64]), b = Tensor(zeros: [64, 64]), c = Tensor(zeros: [64, 64])
                        BLAS.gemm(m: 64, n: 64, k: 64, a: a.data, lda: 64, b: b.data, ldb: 64, c: c.data, ldc: 64)
                    }
                }
                done.signal()
            }.start()
        }
        done.wait()
        done.wait()
        #expect(seen.withLock { $0 } == [1: [1], 3: [3]], "inside the loops' chunks too, whatever the other job does")
        #expect(one.flops == 50 * 2 * 64 * 64 * 64 && three.flops == one.flops)
        #expect(three.run { Parallel.maxThreads } == 3)
        #expect(Parallel.maxThreads == ComputeContext.processDefault.threads, "restored after run")
    }
}
