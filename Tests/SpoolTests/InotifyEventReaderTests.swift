import Foundation
@testable import Spool
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The reader works on descriptors of its own here (no watcher's), so these run beside the
/// other suites.
@Suite struct InotifyEventReaderTests {
    /// An event as the kernel writes it: the header, then the name padded with NULs to a
    /// multiple of 16 bytes (`len` counts the padding).
    static func eventBytes(wd: Int32, mask: UInt32, name: String = "", len: UInt32? = nil) -> [UInt8] {
        var padded = Array(name.utf8)
        if !padded.isEmpty { padded += [UInt8](repeating: 0, count: 16 - padded.count % 16) }
        var bytes: [UInt8] = []
        for word: UInt32 in [UInt32(bitPattern: wd), mask, 0, len ?? UInt32(padded.count)] {
            withUnsafeBytes(of: word.littleEndian) { bytes += $0 }
        }
        return bytes + padded
    }

    static func name(of event: UnsafeMutablePointer<inotify_event>) -> String {
        guard event.pointee.len > 0 else { return "" }
        let raw = UnsafeRawPointer(event) + MemoryLayout<inotify_event>.size
        let bytes = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: Int(event.pointee.len))
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    @Test func readsAnInotifyInstancesEventsOneAtATime() throws {
        let folder = NSTemporaryDirectory() + "synthd-reader-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        try #require(fd >= 0)
        defer { close(fd) }
        let wd = inotify_add_watch(fd, folder, UInt32(IN_CLOSE_WRITE))
        try #require(wd >= 0)
        try Data([1]).write(to: URL(fileURLWithPath: folder + "/a.png"))
        try Data([2]).write(to: URL(fileURLWithPath: folder + "/a-much-longer-name-than-sixteen-bytes.png"))
        let reader = InotifyEventReader()
        var names: [String] = []
        for _ in 0..<2 {
            guard case .event(let event) = reader.next(from: fd, timeoutMilliseconds: 2000) else {
                Issue.record("no event")
                return
            }
            #expect(event.pointee.wd == wd)
            #expect(event.pointee.mask & UInt32(IN_CLOSE_WRITE) != 0)
            names.append(Self.name(of: event))
        }
        #expect(names == ["a.png", "a-much-longer-name-than-sixteen-bytes.png"])
        guard case .timeout = reader.next(from: fd, timeoutMilliseconds: 50) else {
            Issue.record("an event where none was made")
            return
        }
    }

    /// What CI's test process died of: a child's output read where events were expected.
    @Test func bytesThatAreNotEventsEndTheBatch() {
        let reader = InotifyEventReader()
        func isMalformed(_ read: InotifyEventReader.Read) -> Bool {
            if case .failed(let code) = read { code == EBADMSG } else { false }
        }
        #expect(isMalformed(reader.take(bytes: Array("real: 16 images, 4 classes\nsynthetic: 64 images\n".utf8))))
        // A header whose name would run past what was read.
        #expect(isMalformed(reader.take(bytes: Self.eventBytes(wd: 1, mask: 2, name: "a.png", len: 64))))
        // A length that would leave the next header misaligned.
        #expect(isMalformed(reader.take(bytes: Self.eventBytes(wd: 1, mask: 2, len: 3) + [0, 0, 0])))
        // A whole event, then half a header: the event, then the end of the batch.
        let read = reader.take(bytes: Self.eventBytes(wd: 7, mask: 8, name: "b.png") + [1, 2, 3, 4, 5, 6])
        guard case .event(let event) = read else {
            Issue.record("\(read)")
            return
        }
        #expect(event.pointee.wd == 7 && event.pointee.mask == 8 && Self.name(of: event) == "b.png")
        #expect(isMalformed(reader.next(from: -1, timeoutMilliseconds: 0)))
    }

    /// A number closed under the reader and taken by another file (a pipe here) is neither
    /// waited on nor read: its bytes stay for their owner.
    @Test func aNumberTakenByAnotherFileIsNotRead() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let text = Array("real: 16 images".utf8)
        #expect(write(ends[1], text, text.count) == text.count)
        let reader = InotifyEventReader()
        guard case .lost(.other) = reader.next(from: ends[0], timeoutMilliseconds: 1000) else {
            Issue.record("a pipe was taken for an inotify instance")
            return
        }
        // Taken during the wait: the check after it still holds the read back.
        var checks = 0
        reader.identify = { _ in
            checks += 1
            return checks == 1 ? .inotify : .other
        }
        guard case .lost(.other) = reader.next(from: ends[0], timeoutMilliseconds: 1000) else {
            Issue.record("the number was read after it changed hands")
            return
        }
        #expect(checks == 2)
        var back = [UInt8](repeating: 0, count: 64)
        #expect(read(ends[0], &back, back.count) == text.count)
        #expect(Array(back.prefix(text.count)) == text)
    }

    @Test func aClosedNumberIsReportedClosed() {
        // Not one closed here: a test beside this one could open a file under its number.
        let fd: Int32 = 1_000_000
        let reader = InotifyEventReader()
        // Whichever check sees it first: before the wait, or the wait itself (POLLNVAL).
        guard case .lost(.closed) = reader.next(from: fd, timeoutMilliseconds: 1000) else {
            Issue.record("a closed number was not reported closed")
            return
        }
        reader.identify = { _ in .inotify }
        guard case .lost(.closed) = reader.next(from: fd, timeoutMilliseconds: 1000) else {
            Issue.record("POLLNVAL was not reported as a closed number")
            return
        }
    }
}
