import Engine
import Foundation
import GAN
import Imaging
import Logging

/// A new dataset whose settings ask for no synthetic images (a balanced one with `enlarge = 0`,
/// or `balance_to` below every class) trains no model: its training would take the daemon's
/// twenty minutes, and every dataset queued behind it would wait, to publish empty class
/// folders. It is done with nothing to write until its files, its synthd.toml or the daemon's
/// configuration ask for images; then it is trained as any new dataset.
extension Scheduler {
    /// Whether `name` (no model, no training under way or pending) needs no model for its files
    /// as `fingerprint` found them; if so, its record says so. The plan is the one its first
    /// generation would make, from the image files per class (an image that turns out not to
    /// decode is still counted: the plan of a dataset balanced but for one corrupt file writes
    /// one image, and is missed here). Settings that do not read have held the dataset before
    /// this is asked (`settingsRefused`).
    func needsNoModel(_ name: String, fingerprint: DatasetFingerprint) -> Bool {
        let folder = configuration.spool + "/" + name
        let key = DatasetFingerprint.settingsKey(folder: folder)  // before the file: see followSettings
        guard let settings = try? Configuration.forDataset(at: folder, base: configuration) else { return false }
        let plan = GenerationPlan(settings: settings, real: fingerprint.classCounts)
        let runtime = store.get(name)
        guard plan.total == 0 else {
            if runtime.nothingToWriteFor != nil { store.update(name) { $0.nothingToWriteFor = nil } }
            return false
        }
        let detail = "nothing to write (\(plan.rule)): no model is trained until its images or settings "
            + "([generation] enlarge, balance_to, policy) ask for synthetic images"
        if runtime.nothingToWriteFor != fingerprint.value || runtime.settingsSeen != key || runtime.phase != .done {
            logger.info("\(counted(fingerprint.images, "image")) in \(counted(fingerprint.classes, "class")): \(detail)",
                        metadata: ["dataset": "\(name)"])
        }
        store.update(name) { runtime in
            runtime.phase = .done
            runtime.detail = detail
            runtime.progress = nil
            runtime.eta = nil
            runtime.lastError = nil
            runtime.nothingToWriteFor = fingerprint.value
            runtime.settingsSeen = key
        }
        return true
    }

    /// After a reload: the datasets done with nothing to write are looked at again, since the
    /// daemon's new `[generation]` defaults may ask for images.
    func lookAgainAtDatasetsWithNothingToWrite() {
        for name in listedSpool() ?? [] where SafeName.isSafe(name) && store.get(name).nothingToWriteFor != nil {
            settled(name)
        }
    }
}
