import Foundation

/// Reads a stream ahead on a thread of its own, a chunk at a time, so that decompressing a
/// tar overlaps with writing its files on the caller's thread, as `tar xjf` does by running
/// bzip2 as a second process. Without it the one thread decoded and wrote in turn, and the
/// slow codecs showed it (on 60,000 PNGs: bzip2 0.60x tar's speed, Zstandard 0.87x).
///
/// The reading thread owns `source` from here on; it stops at the source's end, at its first
/// error (handed on to the reader where that chunk would have been), or once this stream is
/// released, after the chunk it is reading. At most `depth` chunks wait, so memory stays
/// bounded however much faster decoding is than writing.
final class ReadAheadStream: ByteStream {
    /// What the two threads share, under `condition`.
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var chunks: [[UInt8]] = []
        var ended = false
        var failure: ArchiveError?
        var released = false
    }

    /// The source, handed to the reading thread (which alone uses it from then on).
    private final class Handover: @unchecked Sendable {
        let source: any ByteStream
        init(_ source: any ByteStream) { self.source = source }
    }

    private let queue = Queue()
    private var current: [UInt8] = []
    private var offset = 0

    init(_ source: any ByteStream, chunkSize: Int = 1 << 20, depth: Int = 4) {
        let (queue, handover) = (self.queue, Handover(source))
        let thread = Thread {
            Self.readAhead(handover.source, into: queue, chunkSize: chunkSize, depth: depth)
        }
        thread.name = "synthd-read-ahead"
        thread.start()
    }

    deinit {
        queue.condition.lock()
        queue.released = true
        queue.chunks = []
        queue.condition.broadcast()
        queue.condition.unlock()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        guard buffer.count > 0 else { return 0 }
        if offset == current.count {
            queue.condition.lock()
            while queue.chunks.isEmpty && !queue.ended { queue.condition.wait() }
            if queue.chunks.isEmpty {
                let failure = queue.failure
                queue.condition.unlock()
                if let failure { throw failure }
                return 0
            }
            current = queue.chunks.removeFirst()
            offset = 0
            queue.condition.broadcast()
            queue.condition.unlock()
        }
        let n = min(buffer.count, current.count - offset)
        current.withUnsafeBytes { raw in
            buffer.baseAddress!.copyMemory(from: raw.baseAddress! + offset, byteCount: n)
        }
        offset += n
        return n
    }

    /// The reading thread: fills chunks until the source ends, fails, or the reader is gone.
    private static func readAhead(_ source: any ByteStream, into queue: Queue, chunkSize: Int, depth: Int) {
        while true {
            var chunk = [UInt8](repeating: 0, count: chunkSize)
            var filled = 0
            var failure: ArchiveError?
            do {
                while filled < chunkSize {
                    let n = try chunk.read(from: source, at: filled)
                    if n == 0 { break }
                    filled += n
                }
            } catch {
                failure = error
            }
            let ended = failure != nil || filled < chunkSize
            chunk.removeSubrange(filled...)
            queue.condition.lock()
            defer { queue.condition.unlock() }
            while queue.chunks.count >= depth && !queue.released { queue.condition.wait() }
            if queue.released { return }
            if !chunk.isEmpty { queue.chunks.append(chunk) }
            if ended {
                (queue.ended, queue.failure) = (true, failure)
            }
            queue.condition.broadcast()
            if ended { return }
        }
    }
}
