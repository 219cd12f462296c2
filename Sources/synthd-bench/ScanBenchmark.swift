import ArgumentParser
import Daemon
import Foundation
import Imaging

/// Times what the daemon does to a dataset folder before anything is decoded: the listing of
/// its classes and images (`ImageFolder.scan`, confined to the spool) and its fingerprint (the
/// scan and a `stat` of every image), which settling, every periodic scan of the spool and
/// `synthd wait` take.
struct ScanBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Time listing a dataset folder and taking its fingerprint, as the daemon does.")

    @Argument(help: "A dataset folder: <dataset>/<class>/<images>.") var dataset: String
    @Option(help: "The folder its links may not lead out of (default: its parent, as the spool).") var confinedTo: String?
    @Option(help: "Timed rounds (the median is printed).") var rounds = 5

    func run() throws {
        let boundary = confinedTo ?? (URL(fileURLWithPath: dataset).standardizedFileURL.deletingLastPathComponent().path)
        var scans: [Double] = [], fingerprints: [Double] = []
        var images = 0
        for _ in 0..<rounds {
            var start = monotonicSeconds()
            images = try ImageFolder.scan(dataset, confinedTo: boundary).imageCount
            scans.append(monotonicSeconds() - start)
            start = monotonicSeconds()
            _ = try DatasetFingerprint.of(dataset, confinedTo: boundary)
            fingerprints.append(monotonicSeconds() - start)
        }
        let median = { (times: [Double]) in times.sorted()[times.count / 2] }
        print("\(dataset): \(images) images, median of \(rounds) rounds (warm caches)")
        print(String(format: "listing (ImageFolder.scan):        %.3f s, %.0f images/s", median(scans), Double(images) / median(scans)))
        print(String(format: "fingerprint (listing and a stat each): %.3f s, %.0f images/s", median(fingerprints), Double(images) / median(fingerprints)))
    }
}
