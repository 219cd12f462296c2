import Daemon
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SystemdNotifierTests {
    @Test func sendsDatagramsToTheNotifySocket() throws {
        // Play systemd: a datagram socket bound to a path.
        let path = NSTemporaryDirectory() + "synthd-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)

        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"])
        #expect(notifier.watchdogInterval == 10)
        #expect(notifier.notify("READY=1\nSTATUS=watching spool"))
        var buffer = [UInt8](repeating: 0, count: 256)
        let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        #expect(String(decoding: buffer.prefix(max(0, received)), as: UTF8.self) == "READY=1\nSTATUS=watching spool")
    }

    @Test func doesNothingOutsideSystemd() {
        let notifier = SystemdNotifier(environment: [:])
        #expect(!notifier.notify("READY=1"))
        #expect(notifier.watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"]).watchdogInterval == nil,
                "a watchdog meant for another process")
    }
}

@Suite struct StallWatchTests {
    @Test func aJobWithoutProgressPastTheLimitIsStalled() {
        let now = Date()
        let watch = StallWatch(limit: 1800)
        #expect(watch.stalled(lastProgress: [:], now: now).isEmpty, "no job: the loop alone decides")
        #expect(watch.stalled(lastProgress: ["a": now.addingTimeInterval(-1799), "b": now.addingTimeInterval(-5)], now: now).isEmpty)
        #expect(watch.stalled(lastProgress: ["a": now.addingTimeInterval(-1801), "b": now], now: now) == ["a"])
    }
}
