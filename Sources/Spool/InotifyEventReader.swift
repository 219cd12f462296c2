#if canImport(Glibc)
import Glibc
#endif

/// Reads inotify events from the watcher's descriptor, one at a time out of batches.
///
/// libinotifytools' reader (`inotifytools_next_event`) waits in `select` for up to a second and
/// then reads whatever file holds the number, and trusts every length in what it read. A number
/// closed under the watcher by another part of the process (a close done twice) and taken at
/// once by another thread's pipe was read as events: CI saw a test process die in the library,
/// parsing a child's output ("real: 16 images, ...") as event headers. This reader checks that
/// the number is still an inotify instance before its wait and again before each read (a
/// window of microseconds, not a second), and checks each event's length against what was read, so bytes
/// that are not events end the batch instead of the process. `poll`, unlike `select`, also
/// takes descriptor numbers of 1024 and above.
final class InotifyEventReader {
    enum Read {
        /// The next event; valid until the next call of `next` or `reset`.
        case event(UnsafeMutablePointer<inotify_event>)
        /// Nothing arrived within the time asked for (or a signal cut the wait short).
        case timeout
        /// The number is no longer an inotify instance (`KernelWatches.Descriptor`).
        case lost(KernelWatches.Descriptor)
        /// The wait or the read failed (errno), or what was read is not a sequence of events
        /// (`EBADMSG`).
        case failed(Int32)
    }

    /// 64 KiB, as libinotifytools read: a few thousand events a read when many files land at
    /// once (and at least 200 with the longest names). The kernel hands out only whole events.
    static let capacity = 1 << 16
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    /// Bytes read into `buffer`, and where the next event starts.
    private var filled = 0, start = 0
    /// What a descriptor is (`KernelWatches.descriptor`); tests replace it.
    var identify: (Int32) -> KernelWatches.Descriptor = KernelWatches.descriptor(_:)

    deinit { buffer.deallocate() }

    /// Drops the events of the batch in hand (the descriptor they came from is going).
    func reset() { filled = 0; start = 0 }

    /// The next event of `fd`, waiting up to `timeoutMilliseconds` for one to arrive.
    func next(from fd: Int32, timeoutMilliseconds: Int32) -> Read {
        if start == filled {
            reset()
            // Before the wait too: a number taken by a file that never becomes readable (an
            // idle pipe) would otherwise be waited on for ever.
            if case let found = identify(fd), found != .inotify { return .lost(found) }
            var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&waiting, 1, timeoutMilliseconds)
            if ready < 0 { return errno == EINTR ? .timeout : .failed(errno) }
            if ready == 0 { return .timeout }
            if Int32(waiting.revents) & POLLNVAL != 0 { return .lost(.closed) }  // not an open number
            if case let found = identify(fd), found != .inotify { return .lost(found) }
            let count = read(fd, buffer, Self.capacity)
            if count < 0 { return errno == EINTR || errno == EAGAIN ? .timeout : .failed(errno) }
            // An inotify instance never reads as ended; a file that does is not one.
            if count == 0 { return .failed(EBADMSG) }
            filled = count
        }
        return take()
    }

    /// Takes `bytes` as a batch just read and hands out its first event (for tests).
    func take(bytes: [UInt8]) -> Read {
        reset()
        let count = min(bytes.count, Self.capacity)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: count) }
        filled = count
        return take()
    }

    /// The event at `start`, if what remains holds a whole one; otherwise the batch is dropped.
    private func take() -> Read {
        let header = MemoryLayout<inotify_event>.size
        guard filled - start >= header else { return malformed() }
        let event = (buffer + start).bindMemory(to: inotify_event.self, capacity: 1)
        let length = Int(event.pointee.len)
        // The kernel pads names so that the next event stays aligned.
        guard length <= filled - start - header, length % MemoryLayout<inotify_event>.alignment == 0 else { return malformed() }
        start += header + length
        return .event(event)
    }

    private func malformed() -> Read {
        reset()
        return .failed(EBADMSG)
    }
}
