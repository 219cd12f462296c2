import Engine
import Foundation
import Testing

/// `MemoryLimit.current`: the smallest of physical memory and the control groups' limits up
/// the hierarchy, read from /proc and /sys/fs/cgroup trees written here.
@Suite final class MemoryLimitTests {
    let root = NSTemporaryDirectory() + "synthd-memory-\(UUID().uuidString)"

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        try createFolders((path as NSString).deletingLastPathComponent)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func limit() -> MemoryLimit? { MemoryLimit.current(proc: root + "/proc", cgroups: root + "/cgroup") }

    @Test func physicalMemoryWithoutControlGroups() throws {
        try write("proc/meminfo", "MemTotal:       24683568 kB\nMemFree:         1000 kB\n")
        #expect(limit() == MemoryLimit(bytes: 24_683_568 * 1024, source: "physical memory"))
        #expect("\(limit()!)" == "23.5 GiB (physical memory)")
    }

    /// cgroup v2 (systemd's MemoryMax= on the service, a parent slice's limit): the smallest
    /// wins; "max" is no limit.
    @Test func version2TheSmallestLimitUpTheHierarchy() throws {
        try write("proc/meminfo", "MemTotal: 8388608 kB\n")
        try write("proc/self/cgroup", "0::/system.slice/synthd.service\n")
        try write("cgroup/system.slice/synthd.service/memory.max", "max\n")
        try write("cgroup/system.slice/memory.max", "2147483648\n")
        #expect(limit() == MemoryLimit(bytes: 2 << 30, source: "cgroup memory.max of /system.slice"))
        try write("cgroup/system.slice/synthd.service/memory.max", "1073741824\n")
        #expect(limit() == MemoryLimit(bytes: 1 << 30, source: "cgroup memory.max of /system.slice/synthd.service"))
    }

    /// cgroup v1 as a container shows it: the group's own folder is not mounted, its limit is at
    /// the mount's root; v1's "no limit" is 2^63 rounded to pages.
    @Test func version1InAContainerAndItsNoLimit() throws {
        try write("proc/meminfo", "MemTotal: 8388608 kB\n")
        try write("proc/self/cgroup", "5:devices:/\n4:memory:/process_api/941d\n0::/\n")
        try write("cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
        #expect(limit()?.source == "physical memory")
        try write("cgroup/memory/memory.limit_in_bytes", "536870912\n")
        #expect(limit() == MemoryLimit(bytes: 512 << 20, source: "cgroup memory.limit_in_bytes of /"))
        #expect("\(limit()!)" == "512 MiB (cgroup memory.limit_in_bytes of /)")
    }

    @Test func nothingToReadIsNoLimit() {
        #expect(limit() == nil)
    }

    /// Running jobs share the limit: each is offered it less the others' claims, said in the
    /// limit's source; a holder's own claim is not counted against it.
    @Test func aLedgerOffersTheLimitLessTheOtherJobsClaims() {
        let ledger = MemoryLedger(limit: MemoryLimit(bytes: 4 << 30, source: "physical memory"))
        #expect(ledger.available(to: "pets") == ledger.limit)
        ledger.claim(1 << 30, by: "pets")
        #expect(ledger.available(to: "pets") == ledger.limit, "its own claim")
        ledger.claim(512 << 20, by: "cars")
        ledger.claim(2 << 30, by: "pets")
        #expect(ledger.available(to: "shoes") == MemoryLimit(bytes: (4 << 30) - (2 << 30) - (512 << 20),
                                                            source: "4.0 GiB (physical memory) less 2.5 GiB held by the jobs of cars, pets"))
        #expect(ledger.available(to: "cars")?.bytes == 2 << 30)
        ledger.claim(8 << 30, by: "huge")
        #expect(ledger.available(to: "shoes")?.bytes == 0, "never below nothing")
        for holder in ["pets", "cars", "huge"] { ledger.release(holder) }
        #expect(ledger.held.isEmpty && ledger.available(to: "shoes") == ledger.limit)
        #expect(MemoryLedger(limit: nil).available(to: "pets") == nil, "nothing known: nothing checked")
    }

    /// This machine's: some limit, at most its physical memory.
    @Test func thisMachinesLimitIsPositive() throws {
        let here = try #require(MemoryLimit.current())
        #expect(here.bytes > 0)
    }
}
