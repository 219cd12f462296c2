import CTurboJPEG
import Foundation
import Imaging
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Memory stays bounded whatever the images' size: 40 photos of 4000 x 3000 (36 MB each
/// decoded) are trained on and generated at their own size by the daemon with a peak
/// resident size under 1 GB. Generation used to hold a chunk of up to 8,192 full-size images
/// and samples.png 128 of them.
@Suite(.serialized) struct LargeImageMemoryTests {
    /// A 4000 x 3000 colour JPEG of noise and shapes (a photo's cost: it does not compress away).
    static func photo(seed: UInt64, shade: UInt8) -> [UInt8] {
        let (width, height) = (4000, 3000)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var state = seed
        pixels.withUnsafeMutableBufferPointer { p in
            for y in 0..<height {
                for x in 0..<width {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let noise = UInt8(truncatingIfNeeded: state >> 59)  // 0...31
                    let inShape = (x - 2000) * (x - 2000) + (y - 1500) * (y - 1500) < 1_000_000 || (x / 500 + y / 500) % 5 == 0
                    let base = inShape ? shade : 255 &- shade
                    let i = (y * width + x) * 3
                    p[i] = base &+ noise
                    p[i + 1] = base / 2 &+ noise
                    p[i + 2] = 255 &- base &+ noise
                }
            }
        }
        let handle = tjInitCompress()!
        defer { tjDestroy(handle) }
        var output: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue), &output, &size,
                        Int32(TJSAMP_420.rawValue), 85, 0)
        }
        precondition(status == 0, "test JPEG encoder failed")
        defer { tjFree(output) }
        return Array(UnsafeBufferPointer(start: output, count: Int(size)))
    }

    /// The kernel's record of the process's peak resident memory (VmHWM), in bytes.
    static func peakResident(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ").compactMap({ Int($0) }).first else { return nil }
        return kilobytes * 1024
    }

    @Test func fortyTwelveMegapixelPhotosTrainAndGenerateUnderOneGigabyte() throws {
        typealias Daemon = DaemonIntegrationTests.Daemon
        let layout = DaemonIntegrationTests.Layout(root: try temporaryFolder("photos"))
        defer { try? FileManager.default.removeItem(atPath: layout.root) }
        try layout.writeConfig("""
        [watch]
        settle_seconds = 0.2
        [training]
        minutes = 0.05
        checkpoint_seconds = 1
        batch = 8
        [generation]
        max_short_side = 0          # written at the photos' own size: the memory bounded here
        [service]
        threads = 2
        """)
        let staging = layout.root + "/staging/photos"
        for (index, name) in ["day", "night"].enumerated() {
            try FileManager.default.createDirectory(atPath: staging + "/" + name, withIntermediateDirectories: true)
            for i in 0..<20 {
                try Data(Self.photo(seed: UInt64(index * 100 + i), shade: index == 0 ? 200 : 40))
                    .write(to: URL(fileURLWithPath: "\(staging)/\(name)/\(i).jpg"))
            }
        }
        let daemon = try Daemon(config: layout.config, log: layout.log)
        rename(staging, layout.spool + "/photos")
        // The defaults: balanced classes of 20 get half as many again, 10 each.
        try DaemonIntegrationTests.waitFor("outputs", timeout: 300, daemon: daemon) {
            layout.phase("photos") == "done" && layout.manifest("photos").count == 20
        }
        let peak = try #require(Self.peakResident(daemon.process.processIdentifier))
        print("peak resident size with 40 photos of 4000x3000: \(peak >> 20) MiB")
        #expect(peak < 1 << 30, "peak resident \(peak >> 20) MiB")
        let first = try #require(layout.manifest("photos").first?["file"] as? String)
        let written = try PNG.read(path: layout.out + "/photos/" + first, limits: ImageLimits(maxFileBytes: 1 << 30, maxPixels: 1 << 26))
        #expect(written.width == 4000 && written.height == 3000 && written.mode == .rgb, "the photos' own size")
        let preview = try PNG.read(path: layout.state + "/datasets/photos/samples.png")
        #expect(preview.width <= 10 * 64 + 160 && preview.height <= 2 * 64 + 64, "samples.png at the model's resolution")
        daemon.signal(SIGTERM)
        #expect(daemon.waitForExit(timeout: 15)?.status == 0)
    }
}
