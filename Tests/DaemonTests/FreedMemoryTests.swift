@testable import Daemon
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

@Suite struct FreedMemoryTests {
    /// What a job leaves: 128 MB of small blocks freed with one block in 64 still in use, so
    /// that glibc cannot give the holes back on its own (only the heap's free top). Released,
    /// most of it leaves the process's resident memory; without the trim none does.
    @Test func aJobsFreedMemoryLeavesTheProcess() throws {
        let count = 128 * 1024, size = 1024
        var blocks: [UnsafeMutableRawPointer] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count {
            let block = try #require(malloc(size))
            memset(block, 1, size)  // resident, not only reserved
            blocks.append(block)
        }
        var kept: [UnsafeMutableRawPointer] = []
        for (index, block) in blocks.enumerated() {
            if index % 64 == 63 { kept.append(block) } else { free(block) }
        }
        defer { kept.forEach { free($0) } }
        let released = FreedMemory.release()
        #expect(released > 64 << 20, "\(released >> 20) MB of about 126 MB freed went back")
    }
}
