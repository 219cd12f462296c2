import Dispatch
import Engine
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `readFile` reads regular files only, and never waits on a FIFO or reads a device forever.
@Suite final class FileReadingTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "synthd-read-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    @Test func readsARegularFileWhole() throws {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(FileManager.default.createFile(atPath: folder + "/a.bin", contents: Data(bytes)))
        #expect(try readFile(path: folder + "/a.bin") == bytes)
        #expect(throws: FileError.tooLarge(path: folder + "/a.bin", bytes: 100_000, limit: 99_999)) {
            try readFile(path: folder + "/a.bin", maxBytes: 99_999)
        }
    }

    /// A FIFO with no writer: a blocking open would wait forever. If it ever does, the test
    /// opens the write end itself to free the reader, and fails instead of hanging.
    @Test func aFIFOIsRefusedWithoutBlocking() throws {
        let path = folder + "/synthd.toml"
        #expect(mkfifo(path, 0o644) == 0)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<[UInt8], FileError>?
        Thread {
            result = Result { () throws(FileError) in try readFile(path: path) }
            done.signal()
        }.start()
        if done.wait(timeout: .now() + 5) == .timedOut {
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            close(writer)
            done.wait()
            Issue.record("readFile blocked on a FIFO")
        }
        #expect(throws: FileError.notRegular(path: path, kind: "FIFO (named pipe)")) { try result!.get() }
        #expect(FileError.notRegular(path: path, kind: "FIFO (named pipe)").description
            == "\(path): a FIFO (named pipe), not a regular file; not read")
    }

    @Test func devicesAndFoldersAreRefused() {
        #expect(throws: FileError.notRegular(path: "/dev/zero", kind: "character device")) { try readFile(path: "/dev/zero") }
        #expect(throws: FileError.notRegular(path: folder, kind: "folder")) { try readFile(path: folder) }
        #expect(throws: FileError.io(path: folder + "/missing", operation: "open", errno: ENOENT)) {
            try readFile(path: folder + "/missing")
        }
    }
}
