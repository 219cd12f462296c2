import CUDA
import Engine
import Foundation
import GAN
import Imaging
import Logging

/// A generation job: the class check's judge (trained first when missing), the synthetic
/// images written into a new output generation, and that generation published.
extension JobRunner {
    func generate(_ job: Job, on gpu: (any KernelDevice)?, shouldStop: @escaping () -> Bool, fence: () throws -> Void = {}) throws -> JobOutcome {
        let name = job.dataset
        let settings = try Configuration.forDataset(at: datasetFolder(name), base: configuration)
        let state = try StateFolder(store.folder(name))
        let (generator, record) = try SavedGenerator.load(state)
        let log = logger.with(dataset: name)
        let real = state.realImageCounts(for: record.classes, dataset: datasetFolder(name), confinedTo: configuration.spool)
        if let note = real.note { log.warning("\(note)") }
        let plan = GenerationPlan(settings: settings, record: record, real: real.counts)
        let counts = plan.counts, total = plan.total
        guard total <= configuration.maxImagesPerDataset else {
            throw Configuration.Error(path: datasetFolder(name) + "/synthd.toml", line: nil, reason:
                "asks for \(total) images (\(plan.rule)), over the daemon's cap of \(configuration.maxImagesPerDataset) "
                + "per generation ([service] max_images_per_dataset)")
        }
        let size = record.writtenSize(maxShortSide: settings.maxShortSide)
        try DiskSpace.check(configuration.output, neededBytes: DiskSpace.estimate(
            images: total, width: size.width, height: size.height, channels: record.mode.channels))
        log.info("generating \(total) images with \(record.generatorID): \(plan.rule)")
        if let note = SyntheticWriter.sizeNote(record, maxShortSide: settings.maxShortSide, setting: "[generation] max_short_side") {
            log.info("\(note)")
        }
        store.update(name) {
            $0.planned = Dictionary(uniqueKeysWithValues: zip(record.classes, counts))
            $0.plannedRule = plan.rule
            $0.phase = .generating
            $0.detail = "writing \(total) images with \(record.generatorID)"
            $0.progress = 0
            $0.eta = nil
            $0.lastError = nil
            $0.settingsError = nil  // it read them
            $0.retryAt = nil
        }
        let generation = settings.generationID(of: record)
        var judge: (any SampleJudge)?
        if settings.classCheck, total > 0 {
            judge = try Judge.current(in: state, for: record, loadSet: {
                log.info("no current judge for this model (none yet, or one saved by an older synthd): training one")
                store.update(name) { $0.detail = Self.trainingTheJudge }
                let set = try loadClaimingMemory(name) {
                    try Trainer.loadDataset(datasetFolder(name), state: state, resolution: record.configuration.resolution,
                                            limits: limits, confinedTo: configuration.spool, memory: $0,
                                            control: readingControl(name, phase: .generating, shouldStop: shouldStop))
                }
                store.update(name) { $0.detail = Self.trainingTheJudge }
                return set
            }, shouldStop: shouldStop, progress: judgeProgress(name, Self.trainingTheJudge), beforeSave: fence)
            if shouldStop() { throw GenerationStopped() }
            (judge as? Judge)?.dropsNearCopies = settings.dropNearCopies
            if judge == nil { log.warning("the dataset has classes the model was not trained on; writing without the class check") }
            store.update(name) { $0.detail = "writing \(total) images with \(record.generatorID)" }
        }
        let temperature = settings.temperature.map(Float.init) ?? Sampler.defaultTemperature(classCheck: judge != nil,
                                                                                           trainingImages: record.imagesAtLastRun)
        var diversity: [String: Double]?
        let publication = try output.publish(name, generation: generation) { folder in
            var writer = SyntheticWriter(generator: generator, record: record, root: folder)
            writer.device = gpu
            writer.realCounts = real.counts
            writer.temperature = temperature
            writer.maxShortSide = settings.maxShortSide
            writer.maxShift = SyntheticWriter.pixels(ofShift: settings.shift, width: size.width, height: size.height)
            writer.judge = judge
            // The rate counts from here: a judge trained first is not writing, and its minutes
            // made the first ETAs run long.
            let started = Moment.now
            var lastLogged = Moment.now
            let summary = try writer.write(counts: counts, seed: UInt64(settings.seed) &+ 1, shouldStop: shouldStop) { written in
                let rate = Double(written) / max(1e-3, started.secondsAgo)
                let left = Double(total - written) / max(rate, 1e-3)
                store.update(name) {
                    $0.progress = Double(written) / Double(max(1, total))
                    $0.eta = Date().addingTimeInterval(left)
                }
                if lastLogged.secondsAgo >= progressLogSeconds {
                    lastLogged = .now
                    let percent = Int(100 * Double(written) / Double(max(1, total)))
                    log.info("generating \(percent)%: \(written) of \(total) images, \(Int(rate.rounded())) images/s, ETA \(durationText(left))")
                }
            }
            if judge != nil {
                log.info("class check: \(summary.classCheckLine(classes: record.classes))")
                if let warning = SyntheticWriter.Summary.uncheckedWarning(summary.unchecked) { log.warning("\(warning)") }
            }
            if let line = summary.diversityLine(classes: record.classes) { log.info("\(line)") }
            let empty = SyntheticWriter.Summary.emptyFolders(classes: record.classes, counts: counts, realCounts: real.counts)
            if let note = SyntheticWriter.Summary.emptyFoldersNote(empty) { log.info("\(note)") }
            if let warning = SyntheticWriter.Summary.collapseWarning(summary.collapsed(classes: record.classes),
                                                                          unaugmentedPasses: record.unaugmentedPasses) {
                log.warning("\(warning)")
            }
            diversity = Dictionary(uniqueKeysWithValues: zip(record.classes, summary.diversity).compactMap { name, value in value.map { (name, $0) } })
            try fence()  // the generation is renamed into place right after this
        }
        let written = output.imagesPublished(name)
        store.update(name) {
            $0.outputsWritten = written
            $0.generation = generation
            $0.outputSize = size == (record.imageWidth, record.imageHeight) ? nil : "\(size.width)x\(size.height)"
            if publication.published { $0.diversity = diversity?.isEmpty == false ? diversity : nil }
        }
        if let kept = publication.movedAside {
            log.warning("\(output.linkPath(name)) was a folder, not synthd's link to its outputs (written there by synthd generate --out, or copied): moved to \(kept), where it is kept (synthd never deletes it; remove it once it is not needed)")
        }
        log.info(publication.published ? "published \(written) images in \(output.linkPath(name))" : "outputs of \(generation) already published")
        return .completed(fingerprint: nil)
    }

    /// What the record says while the class check's judge trains.
    static let trainingTheJudge = "training the judge for the class check"

    /// A judge's training in the dataset's record ("training the judge for the class check:
    /// 40%", at most once a second): what `synthd status` shows, and the progress that the
    /// stall watch looks for, since a large dataset's judge trains for minutes.
    func judgeProgress(_ name: String, _ what: String) -> (Double) -> Void {
        var last = Moment.now.adding(seconds: -1e9)
        return { fraction in
            guard last.secondsAgo >= 1 else { return }
            last = .now
            store.update(name) { $0.detail = "\(what): \(Int(fraction * 100))%" }
        }
    }
}
