import ArgumentParser
import CUDA
import CommandLineSupport
import Daemon
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
        per file (file, class, class index, seed, temperature, index, checkpoint, step, checked, and the shift).

        --shift 0.07 writes each image moved by a random offset of up to 7% of its side (2 pixels at 28x28), its \
        edges repeated: for a classifier that does not shift its images itself, which learns from displaced \
        samples what centred ones cannot teach it (docs/quality.md). The class check judges the sample where it \
        was drawn.

        The class check (on unless --no-class-check): a classifier trained on the real images, the judge, looks \
        at every sample, and one it puts in another class is drawn again. synthd train makes the judge \
        (STATE/judge.ckpt) when a run finishes; generate trains it first if it is missing. With the check and a \
        model trained on 10000 images or more, the default temperature is 1.5 instead of 1.
        """)

    @Argument(help: "The dataset folder (its name names the output folder; --balance counts its images).")
    var dataset: String
    @Option(help: "State folder of the trained model.") var state: String
    @Option(help: "Output root.") var out: String
    @Option(help: "Images per class.") var perClass: Int?
    @Flag(help: "Top every class up to the largest class (or to --to).") var balance = false
    @Option(help: "With --balance: the count to top up to.") var to: Int?
    @Option(help: "Seed of the latent vectors.") var seed: UInt64 = 1
    @Option(help: "Standard deviation of the latent vectors: above 1 gives more varied images, below 1 more typical ones (default: 1.5 with the class check for a model trained on 10000 images or more, else 1).")
    var temperature: Float?
    @Flag(help: "Write every sample, without asking the judge whether it shows its class.")
    var noClassCheck = false
    @Flag(help: "Sample with the generator's last-step weights instead of their moving average (for comparison).")
    var rawWeights = false
    @Flag(help: "Sample from the last checkpoint even where the model chose another on held-out images (synthd train --hold-out), for comparison.")
    var lastCheckpoint = false
    @Option(help: "How sure the class check must be: the judge's probability of the sample's class at least this, in [0, 1) (default 0: its most likely class is enough).")
    var judgeConfidence: Float = 0
    @Flag(help: "Keep samples the class check finds to be near-copies of real images (dropped by default; see docs/quality.md).")
    var keepNearCopies = false
    @Option(help: "Move each written image at random by up to this share of its side, its edges repeated (0.07: 2 pixels at 28x28; default 0: as drawn). For a classifier that does not shift its images itself; see docs/quality.md.")
    var shift: Double = SyntheticWriter.defaultShift

    @Option(help: "Write images of a dataset whose shorter side is longer than this scaled down to it, aspect kept (0: at the dataset's size). The model draws 32 or 64 pixels a side; more only enlarges them.")
    var maxShortSide: Int = SyntheticWriter.defaultMaxShortSide

    @OptionGroup var compute: DeviceOption

    func validate() throws {
        guard (perClass != nil) != balance else { throw ValidationError("give exactly one of --per-class N and --balance") }
        if let perClass, perClass < 1 { throw ValidationError("--per-class must be at least 1") }
        if to != nil && !balance { throw ValidationError("--to goes with --balance") }
        if let to, to < 1 { throw ValidationError("--to must be at least 1") }
        if let temperature, !(temperature > 0 && temperature <= 3) { throw ValidationError("--temperature must be in (0, 3]") }
        guard judgeConfidence >= 0 && judgeConfidence < 1 else { throw ValidationError("--judge-confidence must be in [0, 1)") }
        guard maxShortSide >= 0 else { throw ValidationError("--max-short-side must be 0 (the dataset's size) or a number of pixels") }
        guard SyntheticWriter.shiftRange.contains(shift) else {
            throw ValidationError("--shift must be in [\(SyntheticWriter.shiftRange.lowerBound), \(SyntheticWriter.shiftRange.upperBound)]")
        }
    }

    func run() throws {
        try DatasetPath.refuseArchive(dataset)
        try compute.cpuContext().run { () throws in try generate() }
    }

    func generate() throws {
        let device = try compute.open(for: .generation)
        let folder = try StateFolder(existing: state)
        let lock = try lockOrExit(folder, purpose: "synthd generate \(dataset)")
        defer { lock.release() }
        let name = URL(fileURLWithPath: dataset).standardizedFileURL.lastPathComponent
        let root = out + "/" + name
        try DatasetPath.refuseOutput(root, inside: dataset)  // before the model is loaded
        let (generator, record) = try SavedGenerator.load(folder, averaged: !rawWeights, lastCheckpoint: lastCheckpoint)
        if let mixedUp = CommandFailure.modelOfAnotherDataset(dataset, state: state, modelClasses: record.classes) { throw mixedUp }

        // Readable images per class: from the last training run's report when there is one
        // (a corrupt file is not an image), else by file name.
        let counted = folder.realImageCounts(for: record.classes, dataset: dataset)
        if let note = counted.note { print("note: \(note)") }
        let real = counted.counts
        if balance && real == nil { throw ValidationError("--balance needs the images per class, and \(dataset) cannot be listed") }
        var counts: [Int]
        if balance, let real {
            let target = to ?? real.max() ?? 0
            counts = real.map { max(0, target - $0) }
        } else {
            counts = [Int](repeating: perClass ?? 0, count: record.classes.count)
        }
        // A class of the model with no real images now (its folder removed or emptied since:
        // the class map only grows) is not part of the dataset: its images would be the model's
        // memory of it, which the judge, trained on today's images, cannot check, in a folder
        // the real tree lacks, shifting the class indices of whoever reads both trees.
        for (k, name) in record.classes.enumerated() where real?[k] == 0 {
            counts[k] = 0
            print("note: class '\(name)' has no real images now (removed since the model learnt it?); not generated")
        }
        // Refused at once with the figures when the files cannot fit (as the daemon does),
        // rather than filling the disk and failing on the last files.
        let total = counts.reduce(0) { $0.addingReportingOverflow($1).overflow ? .max : $0 + $1 }
        var writer = SyntheticWriter(generator: generator, record: record, root: root)
        writer.maxShortSide = maxShortSide
        let size = writer.writtenSize
        try DiskSpace.check(out, neededBytes: DiskSpace.estimate(images: total, width: size.width,
                                                                 height: size.height, channels: record.mode.channels),
                            remedy: balance ? "a smaller --to" : "a smaller --per-class")
        if let note = SyntheticWriter.sizeNote(record, maxShortSide: maxShortSide, setting: "--max-short-side") { print("note: \(note)") }
        writer.device = device
        writer.realCounts = real
        writer.maxShift = SyntheticWriter.pixels(ofShift: shift, width: size.width, height: size.height)
        if !noClassCheck, counts.contains(where: { $0 > 0 }) {
            let progress = ProgressLine(logInterval: 30)
            var trained = false
            let judge = try Judge.current(in: folder, for: record, loadSet: {
                trained = true
                progress.write("\(state) has no judge for this model (training stopped before it was made, or an older synthd trained the model): training one on \(dataset)\n")
                return try Trainer.loadDataset(dataset, state: folder, resolution: record.configuration.resolution)
            }, progress: { fraction in progress.update(fraction: fraction, remaining: .nan, text: "training the judge") })
            judge?.minimumConfidence = judgeConfidence
            judge?.dropsNearCopies = !keepNearCopies
            writer.judge = judge
            if trained, writer.judge != nil { progress.finish("judge trained: \(folder.path)/judge.ckpt") }
            if writer.judge == nil {
                progress.write("note: \(dataset) has classes the model was not trained on; writing without the class check (synthd train first)\n")
            }
        }
        writer.temperature = temperature ?? Sampler.defaultTemperature(classCheck: writer.judge != nil,
                                                                        trainingImages: record.imagesAtLastRun)
        let start = Moment.now
        // Ctrl-C, SIGTERM or a closed terminal stop between chunks: what was written stays,
        // listed in the manifest, instead of files that no manifest line describes.
        Signals.install()
        let summary: SyntheticWriter.Summary
        do {
            summary = try DeviceFailure.naming(dataset: dataset, work: .generation, on: device,
                                               intact: { "the images written before it are whole files; the manifest lists none of this run's" }) {
                try writer.write(counts: counts, seed: seed, shouldStop: { Signals.stopRequested })
            }
        } catch let stopped as GenerationStopped {
            print("stopped: \(stopped.written ?? 0) of \(total) images written to \(root), each whole and listed in its manifest; "
                  + "run again with another --seed to add more")
            return
        }
        let seconds = start.secondsAgo
        print(String(format: "wrote %d images to %@ in %.2f s (%.0f images/s)", summary.written, root, seconds,
                     Double(summary.written) / max(seconds, 1e-9)))
        if writer.judge != nil {
            print("class check: " + summary.classCheckLine(classes: record.classes))
            if let warning = SyntheticWriter.Summary.uncheckedWarning(summary.unchecked) { print("warning: " + warning) }
        }
        if let line = summary.diversityLine(classes: record.classes) { print(line) }
        let empty = SyntheticWriter.Summary.emptyFolders(classes: record.classes, counts: counts, realCounts: writer.realCounts)
        if let note = SyntheticWriter.Summary.emptyFoldersNote(empty) { print("note: " + note) }
        if let warning = SyntheticWriter.Summary.collapseWarning(summary.collapsed(classes: record.classes),
                                                                          unaugmentedPasses: record.unaugmentedPasses) {
            print("warning: " + warning)
        }
    }
}
