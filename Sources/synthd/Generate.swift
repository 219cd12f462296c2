import ArgumentParser
import Engine
import Foundation
import GAN
import Imaging

/// `synthd generate`: writes class-conditioned synthetic images in the ImageFolder layout.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write synthetic images: OUT/<dataset>/<class>/*.png, with a manifest.",
        discussion: """
        Samples come from the averaged (EMA) generator and are reproducible from --seed. File names carry the \
        seed and the checkpoint's step, so runs with another seed or a newer model add files instead of \
        replacing earlier ones. Each file is written atomically; OUT/<dataset>/manifest.jsonl gets one line \
        per file (file, class, class index, seed, temperature, index, checkpoint, step).
        """)

    @Argument(help: "The dataset folder (its name names the output folder; --balance counts its images).")
    var dataset: String
    @Option(help: "State folder of the trained model.") var state: String
    @Option(help: "Output root.") var out: String
    @Option(help: "Images per class.") var perClass: Int?
    @Flag(help: "Top every class up to the largest class (or to --to).") var balance = false
    @Option(help: "With --balance: the count to top up to.") var to: Int?
    @Option(help: "Seed of the latent vectors.") var seed: UInt64 = 1
    @Option(help: "Standard deviation of the latent vectors: above 1 gives more varied images, below 1 more typical ones.")
    var temperature: Float = Sampler.defaultTemperature
    @Flag(help: "Sample with the generator's last-step weights instead of their moving average (for comparison).")
    var rawWeights = false

    func validate() throws {
        guard (perClass != nil) != balance else { throw ValidationError("give exactly one of --per-class N and --balance") }
        if let perClass, perClass < 1 { throw ValidationError("--per-class must be at least 1") }
        if to != nil && !balance { throw ValidationError("--to goes with --balance") }
        if let to, to < 1 { throw ValidationError("--to must be at least 1") }
        guard temperature > 0 && temperature <= 3 else { throw ValidationError("--temperature must be in (0, 3]") }
    }

    func run() throws {
        let folder = try StateFolder(state)
        let (generator, record) = try SavedGenerator.load(folder, averaged: !rawWeights)
        let name = URL(fileURLWithPath: dataset).standardizedFileURL.lastPathComponent
        let root = out + "/" + name

        var counts = [Int](repeating: perClass ?? 0, count: record.classes.count)
        if balance {
            // Readable images per class: from the last training run's report when there is
            // one (a corrupt file is not an image), else by file name.
            let real: [Int]
            if let report = folder.readDatasetReport() {
                real = record.classes.map { report.imagesPerClass[$0] ?? 0 }
            } else {
                let scan = try ImageFolder.scan(dataset)
                real = record.classes.map { scan.files[$0]?.count ?? 0 }
            }
            let target = to ?? real.max() ?? 0
            counts = real.map { max(0, target - $0) }
        }
        let start = Date()
        var writer = SyntheticWriter(generator: generator, record: record, root: root)
        writer.temperature = temperature
        let written = try writer.write(counts: counts, seed: seed)
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "wrote %d images to %@ in %.2f s (%.0f images/s)", written, root, seconds,
                     Double(written) / max(seconds, 1e-9)))
    }
}
