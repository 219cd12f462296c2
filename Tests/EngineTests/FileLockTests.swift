import Engine
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `FileLock`: one holder at a time, the holder's line in the message, and whether the locked
/// file is still the one at its path.
@Suite final class FileLockTests {
    let folder = NSTemporaryDirectory() + "synthd-lock-\(UUID().uuidString)"

    init() throws { try createFolders(folder) }
    deinit { try? FileManager.default.removeItem(atPath: folder) }

    @Test func oneHolderAtATimeAndTheFileItHolds() throws {
        let path = folder + "/synthd.lock"
        let first = try FileLock(path, holder: "synthd run")
        #expect(first.isAtItsPath)
        #expect(throws: FileLock.Error.held(path: path, holder: "pid \(getpid()): synthd run")) {
            try FileLock(path, holder: "synthd train")
        }
        // Removed: the lock holds a file nobody can see, and another lock of the name succeeds.
        try FileManager.default.removeItem(atPath: path)
        #expect(!first.isAtItsPath)
        let second = try FileLock(path, holder: "another")
        #expect(second.isAtItsPath && !first.isAtItsPath)
        second.release()
        #expect(!second.isAtItsPath, "released")
        // Replaced by another file of the name.
        let third = try FileLock(path, holder: "third")
        try FileManager.default.removeItem(atPath: path)
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        #expect(!third.isAtItsPath)
    }

    /// A lock that cannot be made is not a busy one: a folder that takes no writes (sysfs
    /// refuses new files, to root too) says so, another failure (the name is a folder) is
    /// neither.
    @Test func aFolderThatTakesNoWritesIsNotABusyOne() throws {
        do {
            _ = try FileLock("/sys/synthd-test.lock", holder: "synthd generate")
            Issue.record("sysfs took a new file")
        } catch {
            #expect(!error.isHeld && error.folderIsNotWritable, "\(error)")
        }
        try createFolders(folder + "/a-folder.lock")
        do {
            _ = try FileLock(folder + "/a-folder.lock", holder: "synthd run")
            Issue.record("a folder opened as a lock file")
        } catch {
            #expect(error == .io(path: folder + "/a-folder.lock", operation: "open", errno: EISDIR))
            #expect(!error.isHeld && !error.folderIsNotWritable)
        }
        let held = try FileLock(folder + "/synthd.lock", holder: "synthd run")
        defer { held.release() }
        #expect(throws: FileLock.Error.self) { try FileLock(folder + "/synthd.lock", holder: "again") }
        do { _ = try FileLock(folder + "/synthd.lock", holder: "again") } catch { #expect(error.isHeld && !error.folderIsNotWritable) }
    }
}
