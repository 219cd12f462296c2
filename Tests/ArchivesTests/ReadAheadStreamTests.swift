@testable import Archives
import Foundation
import Synchronization
import Testing

/// The read-ahead thread between a compressed tar's decoder and the tar reader: the same
/// bytes in the same order, an error where it happened, and a bounded, stoppable producer.
@Suite struct ReadAheadStreamTests {
    /// Bytes given a few at a time (sizes that do not divide the chunks), then an error or the end.
    final class Source: ByteStream, @unchecked Sendable {
        let bytes: [UInt8]
        let failure: ArchiveError?
        var position = 0
        let reads = Atomic<Int>(0)

        init(count: Int, failure: ArchiveError? = nil) {
            var generator = SystemRandomNumberGenerator()
            bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            self.failure = failure
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
            reads.add(1, ordering: .relaxed)
            if position == bytes.count, let failure { throw failure }
            let n = min(buffer.count, bytes.count - position, 1 + reads.load(ordering: .relaxed) % 13)
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + position, byteCount: n) }
            position += n
            return n
        }
    }

    func readAll(_ stream: any ByteStream, sizes: [Int]) throws(ArchiveError) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: sizes.max()!)
        var turn = 0
        while true {
            let n = try buffer.read(from: stream, count: sizes[turn % sizes.count])
            if n == 0 { return out }
            out += buffer[..<n]
            turn += 1
        }
    }

    @Test(arguments: [0, 1, 100, 4096, 10_007])
    func theSameBytesInTheSameOrder(count: Int) throws {
        let source = Source(count: count)
        let stream = ReadAheadStream(source, chunkSize: 64, depth: 2)
        #expect(try readAll(stream, sizes: [1, 7, 500, 64, 3]) == source.bytes)
        #expect(try readAll(stream, sizes: [10]).isEmpty, "the end stays the end")
    }

    @Test func anErrorComesAfterTheBytesBeforeIt() {
        let damaged = ArchiveError.malformed(archive: "a.tar.bz2", reason: "its bzip2 data is damaged")
        let source = Source(count: 1000, failure: damaged)
        let stream = ReadAheadStream(source, chunkSize: 256, depth: 2)
        var buffer = [UInt8](repeating: 0, count: 1000)
        var got: [UInt8] = []
        #expect(throws: damaged) {
            while true {
                let n = try buffer.read(from: stream)
                got += buffer[..<n]
                if n == 0 { break }
            }
        }
        #expect(got == source.bytes, "every byte before the damage was handed on first")
    }

    /// The reader holds at most `depth` chunks (and the one being filled), and stops reading
    /// once the stream is released, as when an unpacking stops midway.
    @Test func theProducerWaitsForTheReaderAndStopsWithIt() throws {
        let source = Source(count: 1 << 20)
        var stream: ReadAheadStream? = ReadAheadStream(source, chunkSize: 1024, depth: 3)
        usleep(100_000)
        let ahead = source.reads.load(ordering: .relaxed)
        #expect(ahead > 0 && ahead <= 4 * 1024, "four chunks at most read ahead: \(ahead) reads of at most 13 bytes")
        var buffer = [UInt8](repeating: 0, count: 100)
        #expect(try buffer.read(from: stream!) > 0)
        stream = nil
        usleep(100_000)
        let stopped = source.reads.load(ordering: .relaxed)
        usleep(100_000)
        #expect(source.reads.load(ordering: .relaxed) == stopped, "no reading once released")
        #expect(source.position < source.bytes.count)
    }
}
