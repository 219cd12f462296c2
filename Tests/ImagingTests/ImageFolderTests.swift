import Foundation
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

    @Test func linksLeadingOutOfTheSpoolAreNotFollowed() throws {
        let root = NSTemporaryDirectory() + "synthd-links-\(UUID().uuidString)"
        let spool = root + "/spool", outside = root + "/outside"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for folder in [spool + "/pets/cat", outside + "/secrets"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for path in [spool + "/pets/cat/1.png", outside + "/secret.png", outside + "/secrets/1.png"] {
            FileManager.default.createFile(atPath: path, contents: Data([1]))
        }
        // A file link and a class-folder link out of the spool, and a link that stays inside.
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/cat/2.png", withDestinationPath: outside + "/secret.png")
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/secrets", withDestinationPath: outside + "/secrets")
        try FileManager.default.createSymbolicLink(atPath: spool + "/pets/cat/3.png", withDestinationPath: "1.png")

        let confined = try ImageFolder.scan(spool + "/pets", confinedTo: spool)
        #expect(confined.classNames == ["cat"])
        #expect(confined.files["cat"] == [spool + "/pets/cat/1.png", spool + "/pets/cat/3.png"])
        #expect(confined.ignored.contains(spool + "/pets/cat/2.png") && confined.ignored.contains(spool + "/pets/secrets"))

        // Unconfined (the CLI on a folder the user named), links are followed.
        let free = try ImageFolder.scan(spool + "/pets")
        #expect(free.classNames == ["cat", "secrets"])

        // A dataset that is itself a link out of the spool is refused.
        try FileManager.default.createSymbolicLink(atPath: spool + "/linked", withDestinationPath: outside)
        #expect(throws: ImageFolder.Error.outside(path: spool + "/linked", boundary: spool)) {
            try ImageFolder.scan(spool + "/linked", confinedTo: spool)
        }
    }
}
