import Foundation
import Testing

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
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/copied/manifest.json"))) as? [String: Any]
        let layers = try #require(manifest?["layers"] as? [[String: Any]])
        #expect(layers.count == 1)
        let layer = folder + "/copied/" + (try #require(layers.first?["digest"] as? String)).replacingOccurrences(of: "sha256:", with: "")
        let rootfs = folder + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        let listing = try Self.shell("tar -tvzf \(layer) ./var/lib/synthd/ && tar -xzf \(layer) -C \(rootfs)")
        #expect(listing.status == 0 && listing.output.contains("998/998"), "the state folder is synthd's: \(listing.output)")
        try makeDataset(rootfs + "/tmp/shapes", classes: ["circle": 6, "square": 6])
        let inside = "/usr/bin/unshare --user --map-root-user --mount --pid --fork --mount-proc=\(rootfs)/proc chroot \(rootfs) /usr/local/bin/synthd"
        let check = try Self.shell("\(inside) check /tmp/shapes --config /etc/synthd/synthd.toml")
        #expect(check.status == 0 && check.output.contains("shapes: 12 images in 2 classes"), "\(check.output)")
        let train = try Self.shell("\(inside) train /tmp/shapes --state /tmp/state --steps 3 --batch 4")
        #expect(train.status == 0, "\(train.output)")
        let generate = try Self.shell("\(inside) generate /tmp/shapes --state /tmp/state --out /tmp/out --per-class 4 --no-class-check")
        #expect(generate.status == 0, "\(generate.output)")
        let written = (try? FileManager.default.subpathsOfDirectory(atPath: rootfs + "/tmp/out/shapes"))?.filter { $0.hasSuffix(".png") }
        #expect(written?.count == 8, "\(generate.output)")

        // The same binary, the same image, byte for byte.
        let again = try build("again.tar")
        #expect(FileManager.default.contentsEqual(atPath: image, andPath: again))
    }
}
