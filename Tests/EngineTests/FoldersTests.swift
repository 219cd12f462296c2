import Engine
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `createFolders`: `mkdir -p`, with errors that name the folder and the reason.
@Suite final class FoldersTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "synthd-folders-\(UUID().uuidString)"
        try createFolders(folder)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    @Test func makesEveryMissingFolderAndAcceptsExistingOnes() throws {
        try createFolders(folder + "/a/b//c/")
        var isFolder: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: folder + "/a/b/c", isDirectory: &isFolder) && isFolder.boolValue)
        try createFolders(folder + "/a/b/c")   // again: already there
        #expect(symlink(folder + "/a", folder + "/link") == 0)
        try createFolders(folder + "/link/d")  // through a link to a folder
        #expect(FileManager.default.fileExists(atPath: folder + "/a/d"))
    }

    @Test func aFileInTheWayOrNoParentIsNamed() throws {
        #expect(FileManager.default.createFile(atPath: folder + "/file", contents: Data([1])))
        #expect(throws: FileError.io(path: folder + "/file", operation: "create the folder", errno: ENOTDIR)) {
            try createFolders(folder + "/file/sub")
        }
        #expect(throws: FileError.io(path: folder + "/file", operation: "create the folder", errno: ENOTDIR)) {
            try createFolders(folder + "/file")
        }
        // /proc takes no new folders: the message names the one that failed and why.
        do {
            try createFolders("/proc/synthd-nope/x")
            Issue.record("created a folder in /proc")
        } catch {
            #expect(error.description == "/proc/synthd-nope: failed to create the folder: No such file or directory")
        }
    }
}
