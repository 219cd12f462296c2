import Archives
import Engine
import Foundation

/// Whether a dataset's published outputs are those of its files as they are now: what
/// `synthd wait` asks of the daemon's records, so that a script can drop a dataset and go on
/// when its synthetic images are there (`cp -r shoes spool/ && synthd wait shoes && train.py`).
///
/// "Done" alone is not enough: right after a copy the record still says done for the files
/// the model was trained on before, until the dataset settles and the daemon queues it. So
/// the outputs count as ready only when the record's trained fingerprint is the folder's
/// fingerprint now.
public enum DatasetReadiness: Equatable, Sendable {
    /// The outputs are the current files'; `outputs`: the published folder, nil when the
    /// daemon had nothing to write (a balanced dataset with `enlarge = 0`, for which it trains
    /// no model).
    case ready(outputs: String?)
    /// Still on its way, in words ("training 42%, ETA 3m10s").
    case pending(String)
    /// Will not get there by waiting: the user has to act (the reason says how).
    case failed(String)
    /// Neither in the spool nor known to the daemon, nor an archive being unpacked into it.
    case unknown(String)

    /// What is known of one dataset at one moment.
    public struct Snapshot: Sendable {
        public var name: String
        public var spool: String
        /// Whether `spool/name` is a folder.
        public var present: Bool
        /// The fingerprint of `spool/name` now, where `needsFingerprint` asked for it (a scan of
        /// every image: 60,000 take about a second, so it is taken only when it decides).
        public var fingerprint: DatasetFingerprint?
        /// The daemon's record (`daemon.json`, or the cluster's row); nil before it has one.
        public var runtime: DatasetRuntime?
        /// Where `out/name` leads, when it is published.
        public var published: String?
        /// An archive in the spool that is (or will be) unpacked into `spool/name`, and its record.
        public var archive: (name: String, record: ArchiveRecord?)?

        public init(name: String, spool: String, present: Bool, fingerprint: DatasetFingerprint?, runtime: DatasetRuntime?,
                    published: String?, archive: (name: String, record: ArchiveRecord?)? = nil) {
            self.name = name
            self.spool = spool
            self.present = present
            self.fingerprint = fingerprint
            self.runtime = runtime
            self.published = published
            self.archive = archive
        }
    }

    public static func of(_ snapshot: Snapshot, now: Date = Date()) -> DatasetReadiness {
        let folder = snapshot.spool + "/" + snapshot.name
        guard snapshot.present else {
            if let (archive, record) = snapshot.archive {
                if let record, record.state == .failed, record.retryAt == nil {
                    return .failed("\(archive) was not unpacked: \(record.error ?? "see the daemon's log")")
                }
                if let record, record.state == .unpacked {
                    // Not unpacked again by itself: a folder removed on purpose stays removed.
                    return .failed("\(archive) was unpacked into \(folder), which has left the spool since "
                        + "(copy the archive in again to unpack it anew)")
                }
                return .pending(record?.line(name: archive, spool: snapshot.spool, now: now) ?? "\(archive): waiting to be unpacked into \(folder)")
            }
            if snapshot.runtime != nil {
                return .failed("\(folder) has left the spool (the model and outputs are kept: synthd status \(snapshot.name))")
            }
            return .unknown("no dataset \(snapshot.name) in \(snapshot.spool), and the daemon knows of none by that name")
        }
        guard let runtime = snapshot.runtime else {
            return .pending("in \(snapshot.spool), not yet seen by the daemon (it takes a dataset once it has been quiet for settle_seconds, or two seconds after a .ready file appears in it)")
        }
        let fingerprint = snapshot.fingerprint
        // Held for files or a synthd.toml that have changed since (mended, say, just before this
        // wait): the daemon tries it again once the change settles.
        let changedSinceHeld = runtime.quarantinedFor != nil && fingerprint.map { $0.changeKey(folder: folder) != runtime.quarantinedFor } == true
        switch runtime.phase {
        case .done where fingerprint == nil:
            return .pending("done; looking at its files")  // unreadable now: the daemon says why
        case .done where (runtime.trainedFingerprint ?? runtime.nothingToWriteFor) != fingerprint?.value:
            return .pending("changed since its outputs were made; waiting for the daemon to take the new files")
        case .done where runtime.settingsSeen.map { $0 != DatasetFingerprint.settingsKey(folder: folder) } == true:
            // Edited just before this wait: it may ask for other outputs (or more training).
            return .pending("its synthd.toml changed since its outputs were made; waiting for the daemon to read it")
        case .done where runtime.settingsError != nil:
            return .failed("\(runtime.settingsError!); its outputs are of the settings before, "
                + "and its changes are followed once it reads (synthd check \(folder) says what is wrong)")
        case .done where snapshot.published == nil && runtime.generation != nil:
            // Removed by hand (`rm -rf out/shoes`): the daemon writes them again within half a minute.
            return .pending("its published outputs are gone (removed?); waiting for the daemon to write them again")
        case .done:
            return .ready(outputs: snapshot.published)
        case .failed where changedSinceHeld:
            return .pending("changed since it failed; waiting for the daemon to try it again")
        case .failed where runtime.quarantinedFor != nil || runtime.freeBytesAtFailure != nil:
            // Held until the dataset changes or disk space is freed: waiting would never end.
            let held = runtime.freeBytesAtFailure != nil
                ? "held until space is freed on \(runtime.fullFolder ?? "its disk")"
                : "held until its files or synthd.toml change"
            return .failed("\(runtime.lastError ?? "failed"); \(held)")
        case .failed:
            let retry = runtime.retryAt.map { ", tried again in \(durationText($0.timeIntervalSince(now)))" } ?? ""
            return .pending("failed: \(runtime.lastError ?? "see the daemon's log")\(retry)")
        case .waiting where fingerprint?.images == 0:
            // Images outside class folders, or only files synthd does not read: nothing
            // happens until the user moves or converts them.
            guard let why = fingerprint?.whyNoImages else { return .pending("no images yet") }
            return .failed("\(why); held until its files change")
        case .waiting, .queued, .training, .generating, .removed:
            return .pending(describe(runtime, now: now))
        }
    }

    /// Whether `of` needs the folder's fingerprint given the daemon's record: to tell a
    /// dataset done with these files from one done with earlier ones, to say why one waits
    /// without images, and to tell one held until it changes from one changed since.
    public static func needsFingerprint(_ runtime: DatasetRuntime?) -> Bool {
        runtime.map { [.done, .waiting].contains($0.phase) || ($0.phase == .failed && $0.quarantinedFor != nil) } ?? false
    }

    /// "training 42%, ETA 3m10s (fine-tuning: 120 images added)", as `synthd status` says it.
    static func describe(_ runtime: DatasetRuntime, now: Date) -> String {
        phaseText(runtime.phase == .removed ? "back in the spool, waiting for the daemon" : runtime.phase.rawValue,
                  progress: runtime.progress, eta: runtime.eta, detail: runtime.detail, now: now)
    }

    /// The archive in `spool` that unpacks into `name`, if any: one there now (the first by
    /// name; its record only if the record is of this copy of it), else the latest record of
    /// one being unpacked.
    public static func archive(into name: String, spool: String, records: [String: ArchiveRecord]) -> (name: String, record: ArchiveRecord?)? {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).sorted()
        if let file = files.first(where: { ArchiveFormat.of(name: $0)?.stem == name }) {
            let record = records[file].flatMap { record in
                ArchiveIntake.fileSize(spool + "/" + file).map { record.isOf(size: $0, modified: $1) } == true ? record : nil
            }
            return (file, record)
        }
        return records.filter { $0.value.dataset == name && $0.value.state == .unpacking }
            .max { $0.value.updatedAt < $1.value.updatedAt }.map { ($0.key, $0.value) }
    }
}
