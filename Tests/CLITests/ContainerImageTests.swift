import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `scripts/container-image`: an OCI image archive that another implementation (skopeo) reads,
/// every digest checked; its layer holds all that synthd needs to run, in a root of its own;
/// and the same binary makes the same image.
@Suite struct ContainerImageTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let shell = ServiceInstallTests.shell

    static var canRunIt: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/skopeo")
            && (try? shell("/usr/bin/unshare --user --map-root-user --mount --pid --fork true"))?.status == 0
    }

    /// Unpacks the one layer of an image that skopeo copied into `copied` (its `dir:` form);
    /// returns the layer's file and the root.
    static func unpack(copied: String, into rootfs: String) throws -> (layer: String, rootfs: String) {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: copied + "/manifest.json"))) as? [String: Any]
        let layers = try #require(manifest?["layers"] as? [[String: Any]])
        #expect(layers.count == 1)
        let layer = copied + "/" + (try #require(layers.first?["digest"] as? String)).replacingOccurrences(of: "sha256:", with: "")
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        let unpacked = try shell("tar -xzf \(layer) -C \(rootfs)")
        #expect(unpacked.status == 0, "\(unpacked.output)")
        return (layer, rootfs)
    }

    /// The command line that runs synthd in `rootfs` as a root of its own.
    static func inside(_ rootfs: String) -> String {
        "/usr/bin/unshare --user --map-root-user --mount --pid --fork --mount-proc=\(rootfs)/proc chroot \(rootfs) /usr/local/bin/synthd"
    }

    /// The NVRTC that `scripts/test` fetches from PyPI (`SYNTHD_CUDA_LIBRARIES`), if any.
    static var nvrtcFolder: String? {
        ProcessInfo.processInfo.environment["SYNTHD_CUDA_LIBRARIES"]?.split(separator: ":").map(String.init).first {
            ((try? FileManager.default.contentsOfDirectory(atPath: $0)) ?? []).contains { $0.hasPrefix("libnvrtc.so") }
        }
    }

    /// A GPU node's image (`--cuda-libraries`): synthd finds the NVRTC in it where it looks by
    /// default, with no setting, and loads it.
    @Test(.enabled(if: canRunIt && nvrtcFolder != nil, "needs skopeo, user namespaces and NVRTC (SYNTHD_CUDA_LIBRARIES, as scripts/test sets it)"))
    func aGPUNodesImageLoadsItsNVRTC() throws {
        let folder = try temporaryFolder("gpu-image")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let made = try Self.shell("\(Self.repository)/scripts/container-image --binary \(SynthdProcess.binary) --tag synthd:gpu "
                                  + "--out \(folder)/gpu.tar --cuda-libraries \(try #require(Self.nvrtcFolder))")
        #expect(made.status == 0, "\(made.output)")
        let copied = try Self.shell("skopeo copy oci-archive:\(folder)/gpu.tar:synthd:gpu dir:\(folder)/copied")
        #expect(copied.status == 0, "\(copied.output)")
        let (_, rootfs) = try Self.unpack(copied: folder + "/copied", into: folder + "/rootfs")
        let info = try Self.shell("env -u SYNTHD_CUDA_LIBRARIES \(Self.inside(rootfs)) info")
        #expect(info.output.contains("nvrtc: /usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so."), "\(info.output)")
        #expect(info.output.contains("cuda driver: the NVIDIA driver (libcuda.so.1) not found"), "no GPU here: \(info.output)")
    }

    @Test(.enabled(if: canRunIt, "needs skopeo (scripts/setup installs it) and user namespaces (unshare) to read and run the image"))
    func theImageIsReadByAnotherToolAndRunsOnItsOwn() throws {
        let folder = try temporaryFolder("image")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let build = { (name: String) throws -> String in
            let made = try Self.shell("\(Self.repository)/scripts/container-image --binary \(SynthdProcess.binary) "
                                      + "--tag synthd:test --out \(folder)/\(name)")
            #expect(made.status == 0, "\(made.output)")
            return folder + "/" + name
        }
        let image = try build("synthd-oci.tar")

        // skopeo copies it blob by blob, each checked against its digest, into a plain folder.
        let copied = try Self.shell("skopeo copy oci-archive:\(image):synthd:test dir:\(folder)/copied")
        #expect(copied.status == 0, "\(copied.output)")
        let inspected = try Self.shell("skopeo inspect --config oci-archive:\(image):synthd:test")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(inspected.output.utf8)) as? [String: Any], "\(inspected.output)")
        let process = try #require(config["config"] as? [String: Any])
        #expect(process["User"] as? String == "998:998", "the user deploy/kubernetes/synthd.yaml runs as")
        #expect(process["Entrypoint"] as? [String] == ["/usr/local/bin/synthd"])
        #expect(process["Cmd"] as? [String] == ["run", "--config", "/etc/synthd/synthd.toml"])

        // Its one layer, unpacked, is a root synthd runs in by itself: no library from here.
        let (layer, rootfs) = try Self.unpack(copied: folder + "/copied", into: folder + "/rootfs")
        let listing = try Self.shell("tar -tvzf \(layer) ./var/lib/synthd/")
        #expect(listing.status == 0 && listing.output.contains("998/998"), "the state folder is synthd's: \(listing.output)")
        try makeDataset(rootfs + "/tmp/shapes", classes: ["circle": 6, "square": 6])
        let inside = Self.inside(rootfs)
        let check = try Self.shell("\(inside) check /tmp/shapes --config /etc/synthd/synthd.toml")
        #expect(check.status == 0 && check.output.contains("shapes: 12 images in 2 classes"), "\(check.output)")
        let train = try Self.shell("\(inside) train /tmp/shapes --state /tmp/state --steps 3 --batch 4")
        #expect(train.status == 0, "\(train.output)")
        let generate = try Self.shell("\(inside) generate /tmp/shapes --state /tmp/state --out /tmp/out --per-class 4 --no-class-check")
        #expect(generate.status == 0, "\(generate.output)")
        let written = (try? FileManager.default.subpathsOfDirectory(atPath: rootfs + "/tmp/out/shapes"))?.filter { $0.hasSuffix(".png") }
        #expect(written?.count == 8, "\(generate.output)")

        // The daemon as a container runs it: process 1 of its namespace, which the kernel sends
        // only the signals it has handlers for. SIGTERM (a pod's end) stops it cleanly.
        try "[paths]\nspool = \"/tmp/spool\"\noutput = \"/tmp/out\"\nstate = \"/tmp/daemon-state\"\n"
            .write(toFile: rootfs + "/tmp/run.toml", atomically: true, encoding: .utf8)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        daemon.arguments = ["--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc=\(rootfs)/proc", "chroot", rootfs,
                            "/usr/local/bin/synthd", "run", "--config", "/tmp/run.toml"]
        let log = folder + "/daemon.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        daemon.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try daemon.run()
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        for _ in 0..<300 where !text().contains("synthd running") { usleep(50_000) }
        #expect(text().contains("synthd running"), "\(text())")
        let child = try Self.shell("pgrep -P \(daemon.processIdentifier)").output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(kill(try #require(Int32(child), "the daemon under unshare: \(child)"), SIGTERM) == 0)
        for _ in 0..<300 where daemon.isRunning { usleep(50_000) }
        #expect(!daemon.isRunning && daemon.terminationStatus == 0 && text().contains("stopped"), "\(text())")
        if daemon.isRunning { daemon.terminate() }

        // The same binary, the same image, byte for byte.
        let again = try build("again.tar")
        #expect(FileManager.default.contentsEqual(atPath: image, andPath: again))
    }
}
