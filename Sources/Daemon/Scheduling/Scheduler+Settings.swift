import Foundation
import GAN
import Imaging
import Logging

/// How a trained dataset's own synthd.toml is followed. Read once at each look at the dataset
/// and after each of its jobs, it may ask for another model (`ModelChange`), more training
/// (`TrainingOn`) or other outputs (a generation other than the published one): each is a job.
/// When it asks for nothing more, the record keeps the file's key (`settingsSeen`), so that
/// `synthd wait` tells outputs made for the file there now from outputs made before it
/// changed; when it does not read, the record keeps why (`settingsError`), which `synthd
/// status` shows and `synthd wait` fails on, instead of a warning in the log alone.
extension Scheduler {
    /// Queues what the dataset's synthd.toml asks for that its model and outputs do not have:
    /// a new model or more training while no training is pending, another generation while
    /// no job is. `jobs`: the dataset's pending jobs. Returns whether it queued a job.
    @discardableResult
    func followSettings(_ name: String, jobs: [Job], generationReason: String = "generation settings changed") -> Bool {
        let folder = configuration.spool + "/" + name
        // The key before the file: a file written between the two reads as changed later, and
        // its own event brings the dataset here again.
        let key = DatasetFingerprint.settingsKey(folder: folder)
        guard let record = try? StateFolder(reading: store.folder(name)).readRecord() else { return false }
        let runtime = store.get(name)
        let settings: Configuration
        do {
            settings = try Configuration.forDataset(at: folder, base: configuration)
        } catch {
            let message = "\(error)"
            if runtime.settingsError != message {
                logger.warning("\(message); its changes are not followed until it reads", metadata: ["dataset": "\(name)"])
            }
            store.update(name) { $0.settingsSeen = key; $0.settingsError = message }
            return false
        }
        if runtime.settingsError != nil { store.update(name) { $0.settingsError = nil } }  // it reads now
        if !jobs.contains(where: { $0.kind == .train }) {
            let changes = ModelChange.asked(by: settings, over: configuration, of: record)
            if !changes.isEmpty {
                enqueue(.train, name, detail: "synthd.toml asks for a new model: \(changes.joined(separator: ", "))")
                return true
            }
            if let more = TrainingOn.asked(by: settings, over: configuration, of: runtime) {
                enqueue(.train, name, detail: more.description)
                return true
            }
        }
        guard jobs.isEmpty, !record.checkpointID.isEmpty else { return false }
        if settings.generationID(of: record) != runtime.generation {
            enqueue(.generate, name, detail: generationReason)
            return true
        }
        if runtime.settingsSeen != key { store.update(name) { $0.settingsSeen = key } }
        return false
    }

    /// Follows the settings of every trained dataset in the spool that has no job and is not
    /// held until it changes: after a reload, whose new `[generation]` defaults may ask for
    /// other outputs (as a restart's look at every dataset does).
    func followEverySettings(generationReason: String) {
        for name in listedSpool() ?? [] where SafeName.isSafe(name) {
            let runtime = store.get(name)
            // In a cluster every node may reload at once: one follows each dataset (the one that may look at it).
            guard runtime.trainedFingerprint != nil, runtime.quarantinedFor == nil, pending(name).isEmpty, mayScan(name) else { continue }
            followSettings(name, jobs: [], generationReason: generationReason)
        }
    }

    /// The generation the dataset's model and settings make now (see `generationID`); nil
    /// without a model, or with settings that do not read.
    func wantedGeneration(_ name: String) -> String? {
        guard let record = try? StateFolder(reading: store.folder(name)).readRecord(), !record.checkpointID.isEmpty,
              let settings = try? Configuration.forDataset(at: configuration.spool + "/" + name, base: configuration)
        else { return nil }
        return settings.generationID(of: record)
    }
}

extension Scheduler {
    /// Whether the dataset's own synthd.toml does not read (a wrong key, a bad value), so that
    /// a training for these files would fail as it starts; if so, the dataset is held as failed
    /// at once, until its files or synthd.toml change. Its training used to be queued and to
    /// fail when its turn came: behind another dataset's twenty minutes, a typo was reported
    /// twenty minutes late, the dataset "queued" meanwhile.
    func settingsRefused(_ name: String, fingerprint: DatasetFingerprint) -> Bool {
        let folder = configuration.spool + "/" + name
        let key = fingerprint.changeKey(folder: folder)  // before the file: see followSettings
        do {
            _ = try Configuration.forDataset(at: folder, base: configuration)
            return false
        } catch {
            let message = "\(error)"
            if store.get(name).lastError == message {
                // Its images changed, the file did not: the mistake was said (soak 40 said one
                // nine times in three minutes as images came and went).
                logger.info("still not trained: its synthd.toml does not read, as before (synthd status shows why)",
                            metadata: ["dataset": "\(name)"])
            } else {
                logger.error("not trained: \(message); tried again when the dataset's files or synthd.toml change",
                             metadata: ["dataset": "\(name)"])
            }
            quarantine(name, message: message, key: key,
                       detail: "held until its synthd.toml reads: mend the mistake under \"last error\" and save the file")
            return true
        }
    }
}
