@testable import Spool
import Testing

@Suite struct WatchTableTests {
    private func bytes(_ path: String) -> [UInt8] { Array(path.utf8) }
    private func string(_ path: [UInt8]?) -> String? { path.map { String(decoding: $0, as: UTF8.self) } }

    /// A rename moves the folder's record and every record under it, and no other: `set1` is
    /// not `set10`'s prefix, nor is `set` `set1`'s.
    @Test func aRenameChangesTheFolderAndWhatIsUnderItOnly() {
        var table = WatchTable()
        let folders = ["/spool", "/spool/set", "/spool/set1", "/spool/set1/boot", "/spool/set1/boot/deep", "/spool/set10", "/spool/set10/boot"]
        let added = folders.enumerated().map { index, folder in table.add(Int32(index + 1), path: bytes(folder)) }
        #expect(added == Array(repeating: true, count: folders.count))
        let renamed = table.rename(bytes("/spool/set1"), to: bytes("/spool/renamed"))
        #expect(renamed == 3)
        #expect((1...7).map { string(table.path(of: $0)) } == [
            "/spool", "/spool/set", "/spool/renamed", "/spool/renamed/boot", "/spool/renamed/boot/deep", "/spool/set10", "/spool/set10/boot",
        ])
        #expect(Set(table.watches(under: bytes("/spool/set10"))) == [6, 7])
        #expect(Set(table.watches(under: bytes("/spool/renamed/"))) == [3, 4, 5])
        #expect(Set(table.watches(under: bytes("/spool/set"))) == [2])
        #expect(table.watches(under: bytes("/spool")).count == 7)
    }

    /// Paths are kept without their trailing slash (the walk names the spool "…/"); a number
    /// handed out again (a kernel without IN_MASK_CREATE) is not a second record.
    @Test func recordsAreOnePerWatchNumber() {
        var table = WatchTable()
        let first = table.add(1, path: bytes("/spool/"))
        #expect(first)
        #expect(string(table.path(of: 1)) == "/spool")
        let again = table.add(1, path: bytes("/spool"))
        #expect(!again)
        #expect(table.count == 1)
        table.add(2, path: bytes("/spool/a"))
        table.remove(1)
        #expect(table.path(of: 1) == nil && table.count == 1)
        table.removeAll()
        #expect(table.count == 0)
    }

    /// Names that are not UTF-8 are kept as their bytes, and renamed like any other.
    @Test func namesThatAreNotUTF8KeepTheirBytes() {
        var table = WatchTable()
        let latin1 = bytes("/spool/caf") + [0xE9]
        table.add(3, path: latin1 + bytes("/cup"))
        let there = table.rename(latin1, to: bytes("/spool/cafe"))
        #expect(there == 1)
        #expect(string(table.path(of: 3)) == "/spool/cafe/cup")
        let back = table.rename(bytes("/spool/cafe"), to: latin1)
        #expect(back == 1)
        #expect(table.path(of: 3) == latin1 + bytes("/cup"))
    }
}
