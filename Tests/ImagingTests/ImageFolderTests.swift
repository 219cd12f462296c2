import FileTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Imaging
import Testing

@Suite struct ImageFolderTests {
    @Test(arguments: [
        ("shoes", nil), ("t-shirt 2", nil), ("Schuhe äöü", nil),
        ("", "empty name"), (".", "hidden or relative name"), ("..", "hidden or relative name"), (".hidden", "hidden or relative name"),
        ("a/b", "name contains '/'"), ("line\nbreak", "name contains control characters"),
        (String(repeating: "x", count: 256), "name longer than 255 bytes"),
    ] as [(String, String?)])
    func safeNames(name: String, problem: String?) {
        #expect(SafeName.problem(with: name) == problem)
    }

    /// Names that are not UTF-8 (Latin-1 `café` from an old archive): Foundation's listing
    /// turns them into names that open nothing, so a class folder of them vanished in silence
    /// and its images were "gone while listed". They are reported, by their bytes, with what to
    /// do; the rest of the dataset is read as before.
    @Test func namesThatAreNotUTF8AreReportedWithTheirBytes() throws {
        let root = NSTemporaryDirectory() + "synthd-latin1-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/tea", withIntermediateDirectories: true)
        #expect(makeEntry(in: root, rawName: Array("caf".utf8) + [0xE9], folder: true))
        #expect(makeEntry(in: root + "/tea", rawName: Array("n".utf8) + [0xFF] + Array(".png".utf8), folder: false))
        #expect(makeEntry(in: root + "/tea", rawName: Array("notes".utf8) + [0xFF] + Array(".txt".utf8), folder: false))
        #expect(makeEntry(in: root + "/tea", rawName: Array("2019-".utf8) + [0xE9], folder: true))
        #expect(makeEntry(in: root + "/tea", rawName: Array("ok.png".utf8), folder: false))
        #expect(makeEntry(in: root + "/tea", rawName: Array("Sch\u{00F6}n.png".utf8), folder: false), "UTF-8 names are names")
        let scan = try ImageFolder.scan(root)
        #expect(scan.classNames == ["tea"])
        #expect(scan.files["tea"] == [root + "/tea/Sch\u{00F6}n.png", root + "/tea/ok.png"])
        let reasons = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(reasons.keys.sorted() == [root + "/caf\\xE9", root + "/tea/2019-\\xE9", root + "/tea/n\\xFF.png"], "\(reasons)")
        #expect(reasons[root + "/caf\\xE9"]?.hasPrefix("a class folder whose name is not valid UTF-8; not read. synthd reads names in UTF-8: rename it (`convmv") == true)
        #expect(reasons[root + "/tea/n\\xFF.png"]?.hasPrefix("an image whose name is not valid UTF-8") == true)
        #expect(reasons[root + "/tea/2019-\\xE9"]?.hasPrefix("a folder whose name is not valid UTF-8") == true)
        #expect(scan.ignored.contains(root + "/tea/notes\\xFF.txt"), "not an image by name: passed over, as any other")
    }

    @Test func linksLeadingOutOfTheSpoolAreNotFollowed() throws {
        let root = NSTemporaryDirectory() + "synthd-links-\(UUID().uuidString)"
        let spool = root + "/spool", outside = root + "/outside"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in [spool + "/pets/cat", outside + "/secrets"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for path in [spool + "/pets/cat/1.png", outside + "/secret.png", outside + "/secrets/1.png"] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])), "could not create \(path)")
        }
        // A file link and a class-folder link out of the spool, and a link that stays inside.
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/cat/2.png", withDestinationPath: outside + "/secret.png")
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/secrets", withDestinationPath: outside + "/secrets")
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/cat/3.png", withDestinationPath: "1.png")

        let confined = try ImageFolder.scan(spool + "/pets", confinedTo: spool)
        #expect(confined.classNames == ["cat"])
        #expect(confined.files["cat"] == [spool + "/pets/cat/1.png", spool + "/pets/cat/3.png"])
        // Reported with their reason, like a corrupt image, not passed over in silence.
        #expect(confined.skipped.map(\.path) == [spool + "/pets/cat/2.png", spool + "/pets/secrets"])
        #expect(confined.skipped.allSatisfy { $0.reason.contains("symbolic link that leads out of \(spool)") })
        #expect(!confined.ignored.contains(spool + "/pets/cat/2.png"))

        // Unconfined (the CLI on a folder the user named), links are followed.
        let free = try ImageFolder.scan(spool + "/pets")
        #expect(free.classNames == ["cat", "secrets"])

        // A dataset that is itself a link out of the spool is refused.
        try FileManager.default.createSymbolicLink(atPath: spool + "/linked", withDestinationPath: outside)
        #expect(throws: ImageFolder.Error.outside(path: spool + "/linked", boundary: spool)) {
            try ImageFolder.scan(spool + "/linked", confinedTo: spool)
        }
    }

    @Test func specialFilesAndUnusableNamesAreSkippedWithTheirReason() throws {
        let root = NSTemporaryDirectory() + "synthd-special-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        for folder in ["cat", "bad\u{1}name", nfc, nfd, "manifest.jsonl"] {
            try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true)
        }
        for folder in ["cat", nfc, nfd, "bad\u{1}name", "manifest.jsonl"] {
            #expect(FileManager.default.createFile(atPath: root + "/\(folder)/1.png", contents: Data([1])), "could not create \(folder)/1.png")
        }
        #expect(mkfifo(root + "/cat/fifo.png", 0o644) == 0)
        #expect(mkfifo(root + "/pipe", 0o644) == 0)
        let socketFD = try bindUnixSocket(at: root + "/cat/socket.jpg")
        defer { close(socketFD) }
        try FileManager.default.createSymbolicLink(atPath: root + "/cat/null.png", withDestinationPath: "/dev/null")

        let scan = try ImageFolder.scan(root)
        #expect(scan.files["cat"] == [root + "/cat/1.png"])
        let reasons = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(reasons[root + "/cat/fifo.png"] == "a FIFO (named pipe), not a regular file; not read")
        #expect(reasons[root + "/cat/socket.jpg"] == "a socket, not a regular file; not read")
        #expect(reasons[root + "/cat/null.png"] == "a character device, not a regular file; not read")
        #expect(reasons[root + "/pipe"] == "a FIFO (named pipe) where a class folder was expected; not read")
        #expect(reasons[root + "/bad\u{1}name"] == "class folder name not usable: name contains control characters")
        #expect(reasons[root + "/manifest.jsonl"]?.hasPrefix("class folder name not usable: synthd's output trees keep their manifest") == true)
        // Names that differ only in normalisation: the first in sorted order is the class,
        // the other is reported, not merged into it nor trained as a look-alike class.
        let (kept, clashing) = nfd < nfc ? (nfd, nfc) : (nfc, nfd)
        #expect(scan.classNames.filter { $0.precomposedStringWithCanonicalMapping == nfc } == [kept])
        #expect(reasons[root + "/" + clashing]?.contains("only in Unicode normalisation") == true)
        #expect(scan.skipped.count == 7)
    }

    /// Images in folders below a class folder belong to the class (as PyTorch's ImageFolder and
    /// Keras read them); hidden folders are passed over, a link loop is read once, and links
    /// out of the spool are not followed there either.
    @Test func foldersBelowAClassFolderAreReadAsTheClass() throws {
        let root = NSTemporaryDirectory() + "synthd-nested-\(UUID().uuidString)"
        let spool = root + "/spool", pets = spool + "/pets"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in [pets + "/cat/2019/summer", pets + "/cat/.thumbnails", pets + "/dog/all", root + "/outside"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for path in [pets + "/cat/a.png", pets + "/cat/2019/b.png", pets + "/cat/2019/summer/c.jpg", pets + "/cat/.thumbnails/t.png",
                     pets + "/dog/all/d.png", pets + "/cat/2019/notes.txt", root + "/outside/o.png"] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])), "could not create \(path)")
        }
        try FileManager.default.createSymbolicLink(atPath: pets + "/cat/2019/loop", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: pets + "/dog/away", withDestinationPath: root + "/outside")

        let scan = try ImageFolder.scan(pets, confinedTo: spool)
        #expect(scan.files["cat"] == [pets + "/cat/2019/b.png", pets + "/cat/2019/summer/c.jpg", pets + "/cat/a.png"])
        #expect(scan.files["dog"] == [pets + "/dog/all/d.png"])
        let reasons = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(reasons[pets + "/cat/2019/loop"]?.contains("a symbolic link loop") == true, "\(reasons)")
        #expect(reasons[pets + "/dog/away"]?.contains("symbolic link that leads out of \(spool)") == true, "\(reasons)")
        #expect(scan.ignored.contains(pets + "/cat/.thumbnails") && scan.ignored.contains(pets + "/cat/2019/notes.txt"))
    }

    /// A folder below a class folder that cannot be listed is reported with the reason, and the
    /// rest of the class is read. Root lists any folder, so the test needs another user.
    @Test(.enabled(if: geteuid() != 0, "runs as root, which lists a folder of mode 000"))
    func anUnlistableFolderBelowAClassIsReported() throws {
        let root = NSTemporaryDirectory() + "synthd-locked-\(UUID().uuidString)"
        defer { chmod(root + "/cat/locked", 0o755); try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/cat/locked", withIntermediateDirectories: true)
        for path in [root + "/cat/a.png", root + "/cat/locked/x.png"] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])), "could not create \(path)")
        }
        #expect(chmod(root + "/cat/locked", 0) == 0)
        let scan = try ImageFolder.scan(root)
        #expect(scan.files["cat"] == [root + "/cat/a.png"])
        let reasons = Dictionary(uniqueKeysWithValues: scan.skipped.map { ($0.path, $0.reason) })
        #expect(reasons[root + "/cat/locked"]?.hasPrefix("a folder that cannot be listed (") == true, "\(reasons)")
    }
}
