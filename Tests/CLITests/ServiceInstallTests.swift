import Foundation
import Testing

/// scripts/install stages a working service: the unit verifies, its hardening scores 2.0 or
/// better in `systemd-analyze security`, and the installed configuration is valid.
@Suite(.serialized) struct ServiceInstallTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func shell(_ command: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static var hasSystemdAnalyze: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") }

    /// Installs into a temporary root; returns the root and the unit's path.
    static func install() throws -> (root: String, unit: String) {
        let root = try temporaryFolder("install")
        let install = try shell("\(repository)/scripts/install --prefix \(root)/usr --sysconfdir \(root)/etc "
            + "--libdir \(root)/lib --no-start --binary \(SynthdProcess.binary)")
        #expect(install.status == 0, "\(install.output)")
        return (root, root + "/etc/systemd/system/synthd.service")
    }

    @Test func installedUnitIsCompleteAndItsConfigurationValid() throws {
        let (root, unit) = try Self.install()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        #expect(text.contains("ExecStart=\(root)/usr/bin/synthd run --config \(root)/etc/synthd/synthd.toml"))
        #expect(text.contains("Type=notify") && text.contains("StateDirectory=synthd"))
        // No restart loop: systemd gives up on a process that keeps dying at start, and does
        // not restart one refused for its configuration or for a state folder in use.
        #expect(text.contains("StartLimitIntervalSec=600") && text.contains("StartLimitBurst=5"))
        #expect(text.contains("RestartPreventExitStatus=78 75"))
        #expect(FileManager.default.isExecutableFile(atPath: root + "/usr/bin/synthd"))
        #expect(FileManager.default.fileExists(atPath: root + "/lib/sysusers.d/synthd.conf"))

        // The installed configuration is valid (status reads the state folder it names).
        let status = try SynthdProcess.run(["status", "--config", root + "/etc/synthd/synthd.toml"])
        #expect(status.status == 0, "\(status.output)")
    }

    @Test(.enabled(if: hasSystemdAnalyze, "systemd-analyze is not installed: the unit's verification and exposure score are not checked"))
    func installedUnitVerifiesAndIsHardened() throws {
        let (root, unit) = try Self.install()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let verify = try Self.shell("systemd-analyze verify \(unit)")
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
        let security = try Self.shell("systemd-analyze security --offline=yes \(unit)")
        let line = try #require(security.output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.first)
        #expect(score <= 2.0, "\(line)")
    }

    /// The cluster drop-in (systemd/cluster.conf) on top of the installed unit: it verifies,
    /// and opens only what a node needs (the score docs/cluster.md gives).
    @Test(.enabled(if: hasSystemdAnalyze, "systemd-analyze is not installed: the cluster drop-in is not checked"))
    func clusterDropInVerifiesAndStaysHardened() throws {
        let score = try scoreWithDropIn("cluster.conf")
        #expect(score > 0.5 && score <= 2.0, "the drop-in applies, and keeps the unit hardened: \(score)")
    }

    /// The GPU drop-in (systemd/gpu.conf): it verifies, opens the NVIDIA devices only (the
    /// device policy stays closed), and the unit stays hardened (the score docs/cuda.md gives).
    @Test(.enabled(if: hasSystemdAnalyze, "systemd-analyze is not installed: the GPU drop-in is not checked"))
    func gpuDropInVerifiesAndStaysHardened() throws {
        let score = try scoreWithDropIn("gpu.conf")
        #expect(score > 0.5 && score <= 1.0, "the drop-in applies (0.5 -> 0.7 measured), and keeps the unit hardened: \(score)")
        let text = try String(contentsOfFile: Self.repository + "/systemd/gpu.conf", encoding: .utf8)
        let allowed = text.split(separator: "\n").filter { $0.hasPrefix("DeviceAllow=") }
        #expect(allowed == ["DeviceAllow=char-nvidia-frontend rw", "DeviceAllow=char-nvidia-uvm rw"], "\(allowed)")
    }

    /// The installed unit with `dropIn` from systemd/ beside it: verified, and its exposure score.
    func scoreWithDropIn(_ dropIn: String) throws -> Double {
        let (root, unit) = try Self.install()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = (unit as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: folder + "/synthd.service.d", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.repository + "/systemd/" + dropIn, toPath: folder + "/synthd.service.d/" + dropIn)
        let verify = try Self.shell("SYSTEMD_UNIT_PATH=\(folder): systemd-analyze verify synthd.service")
        #expect(verify.status == 0 && verify.output.isEmpty, "\(verify.output)")
        let security = try Self.shell("SYSTEMD_UNIT_PATH=\(folder): systemd-analyze security --offline=yes synthd.service")
        let line = try #require(security.output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        return try #require(line.split(separator: " ").compactMap { Double($0) }.first)
    }

    @Test func aBadConfigurationExitsWithStatus78AndNamesTheLine() throws {
        let root = try temporaryFolder("badconfig")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try "[paths]\nspool = \"s\"\n[service]\nconcurrency = \"two\"\n".write(toFile: root + "/synthd.toml", atomically: true, encoding: .utf8)
        let run = try SynthdProcess.run(["run", "--config", root + "/synthd.toml"])
        #expect(run.status == 78)
        #expect(run.output.contains("\(root)/synthd.toml:4: [service] concurrency must be an integer, not a string"), "\(run.output)")
    }
}
