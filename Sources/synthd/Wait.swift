import ArgumentParser
import Cluster
import Daemon
import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// `synthd wait`: blocks until the daemon has published outputs for datasets as their files
/// are now, so that a script can drop a dataset and go on when its synthetic images are there.
struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until the daemon has published synthetic images for datasets' current files, then print where they are.",
        discussion: """
        For scripts: `cp -r shoes spool/ && out=$(synthd wait shoes) && python train.py spool/shoes "$out"`. \
        A dataset is ready when synthd run has trained on its files as they are now and published its outputs: \
        a dataset whose files or synthd.toml changed after its outputs were made is waited for again. An archive being unpacked \
        into the spool is waited for under its dataset's name (shoes for shoes.tar.gz). Each ready dataset's \
        outputs folder is printed on standard output; what is going on is said on standard error.

        Exit status: 0 every dataset is ready; 1 one failed and waits for you (the message says what to do: \
        fix its files or its synthd.toml, free disk space), or left the spool; 66 no such dataset (or a name that is not \
        one: a class folder, a folder outside the spool); 69 no synthd run is running \
        on the configuration's state folder (nothing would change); 75 --timeout passed first.
        """)

    @Argument(help: "Datasets to wait for, by name or by their folder's path (default: every dataset folder in the spool now that holds an image file).")
    var datasets: [String] = []
    @Option(help: "Configuration file naming the spool, output and state folders.") var config: String?
    @Option(help: "Give up after this long: seconds, or a number with s, m or h (90, 20m, 2h). Default: no limit.")
    var timeout: String?
    @Flag(help: "Say nothing on standard error while waiting (failures are still said).") var quiet = false

    static let pollSeconds = 1.0
    /// A line about a dataset whose state did not change is repeated at most this often.
    static let repeatSeconds = 30.0

    /// Exit statuses (sysexits.h where one fits).
    static let noSuchDataset: Int32 = 66, noDaemon: Int32 = 69, timedOut: Int32 = 75

    func validate() throws {
        if let timeout, Self.seconds(timeout) == nil {
            throw ValidationError("--timeout must be a positive number of seconds, or one with s, m or h (90, 20m, 2h), not '\(timeout)'")
        }
    }

    /// "90", "90s", "20m", "1.5h" in seconds; nil for anything else.
    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600]
        let unit = text.last.flatMap { units[$0] }
        guard let value = Double(unit == nil ? Substring(text) : text.dropLast()), value > 0, value.isFinite else { return nil }
        return value * (unit ?? 1)
    }

    func run() throws {
        let configuration = try ConfigurationLocation.load(config)
        // A state folder this user may not list would read as one no daemon has run on.
        if let folder = opendir(configuration.state) { closedir(folder) } else if errno != ENOENT {
            throw CommandFailure("\(configuration.state): cannot read the state folder (\(String(cString: strerror(errno)))); "
                + "run synthd wait as a user who may read it (the daemon's user, or with sudo)")
        }
        let cluster = configuration.isClustered ? try ClusterConnection.open(configuration) : nil
        let output = OutputTree(root: configuration.output, keep: configuration.keepGenerations)
        var waiting = datasets.isEmpty ? try everyDataset(configuration, cluster: cluster) : try datasets.reduce(into: [String]()) { names, argument in
            let name: String
            do { name = try DatasetName.of(argument, spool: configuration.spool) } catch {
                say("synthd: \(error)")
                throw ExitCode(Self.noSuchDataset)
            }
            if !names.contains(name) { names.append(name) }
        }
        guard !waiting.isEmpty else {
            say("synthd: no datasets in \(configuration.spool) to wait for")
            throw ExitCode(Self.noSuchDataset)
        }
        let deadline = timeout.flatMap(Self.seconds).map { Date().addingTimeInterval($0) }
        var lastSaid: [String: (key: String, at: Date)] = [:]
        var failed = false
        while true {
            let lookStarted = Date()
            var stillWaiting: [String] = []
            // Read before the folders (see `snapshot`), once a look.
            let archives = ArchiveRecords.read(stateFolder: configuration.state)
            for name in waiting {
                let readiness = DatasetReadiness.of(try snapshot(name, archives: archives, configuration: configuration, output: output, cluster: cluster))
                switch readiness {
                case .ready(let outputs?):
                    print(outputs)
                case .ready(nil):
                    if !quiet { say("synthd: \(name): ready, with no synthetic images to write (synthd status \(name) says why)") }
                case .failed(let reason):
                    say("synthd: \(name): \(reason)")
                    failed = true
                case .unknown(let reason):
                    say("synthd: \(reason)")
                    throw ExitCode(Self.noSuchDataset)
                case .pending(let what):
                    stillWaiting.append(name)
                    // The same state with other figures ("training 41%" -> "42%") is said again
                    // only now and then; a new state at once.
                    let key = String(what.filter { !$0.isNumber })
                    let now = Date()
                    if !quiet, lastSaid[name].map({ $0.key != key || now.timeIntervalSince($0.at) >= Self.repeatSeconds }) ?? true {
                        say("synthd: \(name): \(what)")
                        lastSaid[name] = (key, now)
                    }
                }
            }
            waiting = stillWaiting
            if waiting.isEmpty { break }
            if let absent = try daemonAbsence(configuration, cluster: cluster) {
                say("synthd: \(absent); still waiting for: \(waiting.joined(separator: ", "))")
                throw ExitCode(Self.noDaemon)
            }
            if let deadline, Date() >= deadline {
                say("synthd: --timeout \(timeout!) passed; still waiting for: \(waiting.joined(separator: ", "))")
                throw ExitCode(Self.timedOut)
            }
            // A look that scanned large datasets is not repeated at once: at most a third of
            // the time goes to looking.
            let looked = Date().timeIntervalSince(lookStarted)
            usleep(useconds_t(max(Self.pollSeconds, 2 * looked) * 1e6))
        }
        if failed { throw ExitCode(1) }
    }

    /// The dataset as it is now. `archives` must be read before the folder is looked at: an archive is
    /// recorded unpacked only after its folder was moved into place, so a record that says so
    /// is never seen beside a folder not there yet.
    func snapshot(_ name: String, archives: [String: ArchiveRecord], configuration: Configuration, output: OutputTree,
                  cluster: ClusterDatabase?) throws -> DatasetReadiness.Snapshot {
        let folder = configuration.spool + "/" + name
        var isFolder: ObjCBool = false
        let present = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue
        let runtime: DatasetRuntime?
        if let cluster {
            runtime = try ClusterRuntime(database: cluster).load(name)
        } else {
            runtime = RuntimeStore.read(configuration.state + "/datasets/" + name + "/daemon.json")
        }
        // A folder that cannot be scanned (unreadable) is the daemon's to report; waited for as it is.
        let fingerprint = present && DatasetReadiness.needsFingerprint(runtime)
            ? try? DatasetFingerprint.of(folder, confinedTo: configuration.spool) : nil
        return DatasetReadiness.Snapshot(
            name: name, spool: configuration.spool, present: present, fingerprint: fingerprint, runtime: runtime,
            published: output.isPublished(name) ? output.linkPath(name) : nil,
            archive: present ? nil : DatasetReadiness.archive(into: name, spool: configuration.spool, records: archives))
    }

    /// Why nothing will change while we wait, if so: no daemon holds the state folder (on one
    /// machine), or no node of the cluster is alive.
    func daemonAbsence(_ configuration: Configuration, cluster: ClusterDatabase?) throws -> String? {
        if let cluster {
            let nodes = try NodeRegistry(database: cluster).nodes()
            let alive = nodes.contains { $0.stoppedAt == nil && $0.silentSeconds < configuration.leaseSeconds }
            return alive ? nil : "no node of the cluster is running (synthd status lists them)"
        }
        let lock = configuration.state + "/" + DaemonPresence.lockName
        guard FileManager.default.fileExists(atPath: lock) else {
            return "synthd run has never run on \(configuration.state): start it (scripts/run, or systemctl start synthd)"
        }
        let presence = DaemonPresence.of(stateFolder: configuration.state)
        return presence.isNotRunning ? (presence.line(stateFolder: configuration.state) ?? "synthd run is not running") : nil
    }

    /// The spool's dataset folders for a wait without names, less those without a single image
    /// file (an empty folder, one of notes), said once: such a folder would be waited for until
    /// someone filled it. One whose files synthd cannot use stays, to be said as failed. Only
    /// folders the daemon has no record of, or holds as waiting, are scanned to tell: a spool of
    /// hundreds of trained datasets is not read through before the wait begins.
    func everyDataset(_ configuration: Configuration, cluster: ClusterDatabase?) throws -> [String] {
        let spool = configuration.spool
        return try Self.datasetFolders(in: spool).filter { name in
            let runtime = try cluster.map { try ClusterRuntime(database: $0).load(name) }
                ?? RuntimeStore.read(configuration.state + "/datasets/" + name + "/daemon.json")
            if let runtime, runtime.phase != .waiting { return true }
            guard let fingerprint = try? DatasetFingerprint.of(spool + "/" + name, confinedTo: spool),
                  fingerprint.images == 0, fingerprint.whyNoImages == nil else { return true }
            if !quiet { say("synthd: \(name): no images in it; not waited for (name it to wait for images to come)") }
            return false
        }
    }

    /// The spool's dataset folders, as the daemon reads them (not hidden ones, its own
    /// unpacking folders among them, nor partial copies).
    static func datasetFolders(in spool: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { name in
            var isFolder: ObjCBool = false
            return ImageFolder.isVisible(name) && FileManager.default.fileExists(atPath: spool + "/" + name, isDirectory: &isFolder) && isFolder.boolValue
        }.sorted()
    }

    func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
