import Archives
import ArgumentParser
import Foundation

/// Times unpacking an archive as the daemon does it (`Unpacker`: images only, each member
/// checked) against the system's own tool on the same file (`unzip` for a zip, `7z` for a 7z,
/// `tar` for the rest), each into a fresh folder beside the archive (the same file system, as
/// the spool).
struct UnpackBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack",
        abstract: "Time unpacking an archive as the daemon does, against unzip, 7z or tar on the same file.")

    @Argument(help: "An archive the daemon unpacks: .zip, .7z, .tar, .tar.gz (.tgz), .tar.xz, .tar.zst or .tar.bz2.") var archive: String
    @Option(help: "Timed rounds (the median is printed).") var rounds = 3

    func run() throws {
        guard let (format, _) = ArchiveFormat.of(name: (archive as NSString).lastPathComponent) else {
            throw ValidationError("\(archive): not an archive the daemon unpacks by its name (\(ArchiveFormat.unpackedList))")
        }
        let parent = (archive as NSString).deletingLastPathComponent
        let scratch = (parent.isEmpty ? "." : parent) + "/.synthd-bench-unpack.\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // The reference's command, given the folder to unpack into.
        let tool: (String) -> [String] = switch format {
        case .zip: { ["/usr/bin/unzip", "-q", "-o", archive, "-d", $0] }
        case .sevenZip: { ["/usr/bin/7z", "x", "-y", "-bd", "-o" + $0, archive] }  // p7zip-full
        default: { ["/usr/bin/tar", "-xf", archive, "-C", $0] }
        }
        let toolPath = tool(scratch)[0]
        let hasTool = FileManager.default.isExecutableFile(atPath: toolPath)
        var ours: [Double] = [], theirs: [Double] = []
        var last: Unpacker.Result?
        for _ in 0..<rounds {
            try? FileManager.default.removeItem(atPath: scratch)
            var start = monotonicSeconds()
            let reader = try ArchiveFormat.open(path: archive, named: format)
            last = try Unpacker(limits: .init(maxBytes: .max / 2, reserveBytes: 0)).unpack(reader, into: scratch)
            ours.append(monotonicSeconds() - start)
            try FileManager.default.removeItem(atPath: scratch)
            guard hasTool else { continue }
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            start = monotonicSeconds()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: toolPath)
            process.arguments = Array(tool(scratch).dropFirst())
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else { throw ValidationError("\(toolPath) exited \(process.terminationStatus)") }
            theirs.append(monotonicSeconds() - start)
        }
        let median = { (times: [Double]) in times.sorted()[times.count / 2] }
        let result = last!
        let megabytes = Double(result.bytes) / 1e6
        print("\(archive): \(result.files) images, \(String(format: "%.1f", megabytes)) MB unpacked, median of \(rounds) rounds")
        print(String(format: "synthd (images only, checked): %.2f s, %.0f files/s, %.0f MB/s", median(ours),
                     Double(result.files) / median(ours), megabytes / median(ours)))
        if hasTool {
            let name = (toolPath as NSString).lastPathComponent
            print(String(format: "%@ (everything):%@ %.2f s (synthd %.2fx its speed)", name, String(repeating: " ", count: max(0, 18 - name.count)),
                         median(theirs), median(theirs) / median(ours)))
        } else {
            print("\(toolPath) not found: no reference")
        }
    }
}
