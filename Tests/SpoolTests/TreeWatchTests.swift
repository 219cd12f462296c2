import Foundation
@testable import Spool
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The walk that watches a folder tree, on a real inotify instance of the test's own.
@Suite struct TreeWatchTests {
    /// Watches made, in order, with their flags; `fail` answers for a path instead of inotify.
    final class Watches {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        var made: [(path: String, flags: Int32)] = []
        var fail: (String) -> Int32? = { _ in nil }
        deinit { close(fd) }

        func tree(afterListing: @escaping (String) -> Void = { _ in }) -> TreeWatch {
            TreeWatch(addWatch: { [self] path, flags in
                let name = String(cString: path)
                if let code = fail(name) { return code }
                guard inotify_add_watch(fd, path, UInt32(IN_CREATE) | UInt32(bitPattern: flags)) >= 0 else { return errno }
                made.append((name, flags))
                return 0
            }, afterListing: afterListing)
        }
        var paths: [String] { made.map(\.path) }
    }

    private func makeTree(_ folders: [String]) throws -> String {
        let root = NSTemporaryDirectory() + "synthd-tree-\(UUID().uuidString)"
        for folder in folders { try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
        return root
    }

    /// Every folder, each before the folders in it (so that what is made in it while it is
    /// walked has its event); no files, no links (a link to a folder outside is not followed).
    @Test func watchesEveryFolderBeforeItsSubfoldersAndNoFilesOrLinks() throws {
        let root = try makeTree(["shoes/boot/left", "shoes/sandal", "bags/tote"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outside = try makeTree(["elsewhere/deep"])
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try Data([1]).write(to: URL(fileURLWithPath: root + "/shoes/boot/1.png"))
        #expect(symlink(outside + "/elsewhere", root + "/bags/linked") == 0)

        let watches = Watches()
        #expect(watches.tree().watch(root) == nil)
        let expected = ["shoes", "shoes/boot", "shoes/boot/left", "shoes/sandal", "bags", "bags/tote"].map { root + "/" + $0 }
        #expect(Set(watches.paths) == Set([root + "/"] + expected), "\(watches.paths)")
        #expect(watches.paths.count == 7)
        #expect(watches.made.first?.path == root + "/" && watches.made.first?.flags == 0, "the root first, with its slash, followed")
        for (index, watch) in watches.made.enumerated() where index > 0 {
            #expect(watch.flags == Int32(IN_DONT_FOLLOW | IN_ONLYDIR), "\(watch.path)")
            let parent = (watch.path as NSString).deletingLastPathComponent
            let parentIndex = watches.paths.firstIndex { $0 == parent || $0 == parent + "/" }
            #expect(parentIndex.map { $0 < index } == true, "\(watch.path) before its folder")
        }
    }

    /// A folder deleted between its parent's listing and its own watch, as a class folder
    /// deleted while the spool is walked: libinotifytools' recursive watch gave up on the
    /// parent (its dataset went unwatched for good); this one passes over it.
    @Test func aFolderThatGoesWhileItsParentIsWalkedIsPassedOver() throws {
        let root = try makeTree(["gone/inside", "shoes/boot", "shoes/old", "shoes/sandal", "bags/tote"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let watches = Watches()
        let tree = watches.tree { folder in
            if folder == root { try? FileManager.default.removeItem(atPath: root + "/gone") }
            if folder == root + "/shoes" { try? FileManager.default.removeItem(atPath: root + "/shoes/old") }
        }
        #expect(tree.watch(root) == nil)
        let expected = ["shoes", "shoes/boot", "shoes/sandal", "bags", "bags/tote"].map { root + "/" + $0 }
        #expect(Set(watches.paths) == Set([root + "/"] + expected), "\(watches.paths)")
    }

    /// A folder replaced by a link while the walk was on its way is not followed out of the tree.
    @Test func aFolderReplacedByALinkMeanwhileIsNotFollowed() throws {
        let root = try makeTree(["shoes/boot"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let outside = try makeTree(["elsewhere"])
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let watches = Watches()
        let tree = watches.tree { folder in
            guard folder == root + "/shoes" else { return }
            try? FileManager.default.removeItem(atPath: root + "/shoes/boot")
            _ = symlink(outside + "/elsewhere", root + "/shoes/boot")
        }
        #expect(tree.watch(root) == nil)
        #expect(watches.paths == [root + "/", root + "/shoes"])
    }

    /// The root's own failure is the walk's; the watch limit stops it; a failure other than a
    /// folder gone or unreadable is said (the first), and the walk goes on past it.
    @Test func failuresOfTheRootTheLimitAndOthers() throws {
        let root = try makeTree(["a/deep", "b", "c"])
        defer { try? FileManager.default.removeItem(atPath: root) }

        #expect(Watches().tree().watch(root + "/missing") == TreeWatch.Failure(path: root + "/missing", code: ENOENT))

        let unreadable = Watches()
        unreadable.fail = { $0 == root + "/a" ? EACCES : nil }
        #expect(unreadable.tree().watch(root) == nil)
        #expect(Set(unreadable.paths) == [root + "/", root + "/b", root + "/c"])

        let limited = Watches()
        limited.fail = { [unowned limited] _ in limited.made.count >= 2 ? ENOSPC : nil }
        let limit = limited.tree().watch(root)
        #expect(limit?.code == ENOSPC)
        #expect(limited.made.count == 2)

        let other = Watches()
        other.fail = { $0 == root + "/b" || $0 == root + "/c" ? EMFILE : nil }
        let failure = other.tree().watch(root)
        #expect(failure?.code == EMFILE)
        #expect(failure?.path == root + "/b" || failure?.path == root + "/c")
        #expect(Set(other.paths) == [root + "/", root + "/a", root + "/a/deep"], "the walk went on past them")
    }

    /// Names that are not UTF-8 are walked as the bytes they are.
    @Test func foldersWhoseNamesAreNotUTF8AreWatched() throws {
        let root = try makeTree(["tea"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let name = Array("tea/caf".utf8CString.dropLast()) + [CChar(bitPattern: 0xE9)]
        let path = Array((root + "/").utf8CString.dropLast()) + name
        let inner = path + Array("/cup".utf8CString)
        #expect((path + [0]).withUnsafeBufferPointer { mkdir($0.baseAddress!, 0o755) } == 0)
        #expect(inner.withUnsafeBufferPointer { mkdir($0.baseAddress!, 0o755) } == 0)
        let watches = Watches()
        #expect(watches.tree().watch(root) == nil)
        #expect(watches.made.count == 4, "\(watches.paths)")
    }
}
