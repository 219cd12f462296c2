import FileTestSupport
import Foundation
@testable import Spool
import Testing

@Suite struct SpoolIdentityTests {
    /// mountinfo's octal escapes (`\040` a space, `\134` a backslash) read back as the path.
    @Test func mountinfoEscapesAreReadBack() {
        #expect(SpoolIdentity.unescaped("/mnt/my\\040spool") == "/mnt/my spool")
        #expect(SpoolIdentity.unescaped("/a\\134b\\011c") == "/a\\b\tc")
        #expect(SpoolIdentity.unescaped("/plain") == "/plain")
        #expect(SpoolIdentity.unescaped("/cut\\04") == "/cut\\04", "an escape cut short stays as it is")
    }

    /// Two folders; removed with what is in them.
    private func folders() throws -> String {
        let base = NSTemporaryDirectory() + "synthd-identity-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/spool", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/share", withIntermediateDirectories: true)
        return base
    }

    /// The root is a mount point and a folder made in a temporary folder is not; a path that
    /// leads nowhere has no identity.
    @Test func mountPointsAreToldFromFolders() throws {
        #expect(SpoolIdentity.isMountPoint("/"))
        let base = try folders()
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(!SpoolIdentity.isMountPoint(base + "/spool"))
        #expect(!SpoolIdentity.isMountPoint(base + "/missing"))
        let folder = try #require(SpoolIdentity.of(base + "/spool"))
        #expect(SpoolIdentity.of(base + "/missing") == nil)
        #expect(SpoolIdentity.of(base + "/share") != folder)
    }

    /// A folder bind-mounted on another of the same file system: a mount point, though the
    /// device number is the same on both.
    @Test(.enabled(if: TestMounts.isAllowed, "needs the right to bind-mount (root)"))
    func aBindMountIsAMountPoint() throws {
        let base = try folders()
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(TestMounts.bind(base + "/share", on: base + "/spool"))
        defer { TestMounts.unmount(base + "/spool") }
        #expect(SpoolIdentity.isMountPoint(base + "/spool"))
        #expect(SpoolIdentity.of(base + "/spool") == SpoolIdentity.of(base + "/share"))
        #expect(SpoolIdentity.of(base + "/spool")?.device == SpoolIdentity.of(base)?.device)
    }
}
