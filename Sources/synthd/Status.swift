import ArgumentParser
import Cluster
import Daemon
import Engine
import Foundation
import Logging

/// `synthd status`: what the daemon is doing with each dataset, and how far each model got.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each dataset: state, progress and ETA, classes, images, steps, losses, outputs, errors.",
        discussion: """
        It only reads the state folder, so it works while the daemon or a training runs. Without --state it \
        reads the state folder named by the configuration (--config, /etc/synthd/synthd.toml, or \
        config/synthd.toml). When the configuration names a cluster ([cluster] database), it shows the \
        cluster: its nodes, who runs what under which lease, the queue, and every dataset. Where no synthd \
        run holds the daemon's state folder (stopped, or killed), it says so first, and a job that was \
        training or generating shows as interrupted.
        """)

    @Argument(help: "Datasets to show (default: every one, after a line that counts them by state).") var datasets: [String] = []
    @Option(help: "A state folder: the daemon's, a folder of state folders, or one dataset's.") var state: String?
    @Option(help: "Configuration file naming the state folder.") var config: String?
    @Flag(help: "Print JSON instead of text: one object (on one machine: the daemon, why no job starts, the archives, the datasets; in a cluster: its nodes, queue and datasets).") var json = false
    @Flag(help: "List every archive dropped into the spool and what became of it (the status lists the latest five unpacked).")
    var archives = false

    func run() throws {
        let folder: String
        var spool = "the spool"
        var output: String?
        if let state {
            folder = state
        } else {
            let configuration = try ConfigurationLocation.load(config)
            if configuration.isClustered && !archives { return try showCluster(configuration) }
            folder = configuration.state
            spool = configuration.spool
            output = configuration.output
        }
        // In a cluster too: the nodes share the state folder and its archives.json.
        if archives { return try showArchives(stateFolder: folder, spool: spool) }
        let archiveRecords = datasets.isEmpty ? ArchiveRecords.read(stateFolder: folder) : [:]
        var statuses = try chosen(DatasetStatus.read(folder), in: folder, spool: state == nil ? spool : nil)
        if let output { statuses = statuses.map { $0.withOutputs(under: output) } }
        // A daemon's state folder that no daemon holds: what it was doing is not under way.
        let presence = DaemonPresence.of(stateFolder: folder)
        if case .notRunning = presence { statuses = statuses.map { $0.withoutItsDaemon() } }
        let spaceLine = presence.isNotRunning ? nil : SpaceHold.statusLine(stateFolder: folder)
        let spoolLine = presence.isNotRunning ? nil : SpoolAbsence.statusLine(stateFolder: folder)
        let reloadLine = presence.isNotRunning ? nil : ReloadFailure.statusLine(stateFolder: folder)
        if json {
            let machine = MachineStatus(stateFolder: folder, presence: presence, waitingForSpace: spaceLine, spoolMissing: spoolLine,
                                        reloadFailed: reloadLine, archives: archiveRecords, datasets: statuses)
            print(String(decoding: try machine.encoded(), as: UTF8.self))
        } else if statuses.isEmpty && archiveRecords.isEmpty {
            if let reloadLine { print(reloadLine + "\n") }
            // A mistyped --state read like an idle daemon's folder: say which it is.
            let missing = !FileManager.default.fileExists(atPath: folder)
            print("no datasets under \(folder)" + (missing ? " (there is no such folder: synthd run makes it at its first start)" : ""))
        } else {
            if let line = presence.line(stateFolder: folder) { print(line + "\n") }
            if let reloadLine { print(reloadLine + "\n") }
            if let spoolLine { print(spoolLine + "\n") }
            if let spaceLine { print(spaceLine + "\n") }
            if !archiveRecords.isEmpty {
                let lines = ArchiveRecords.summary(archiveRecords, spool: spool, daemonRuns: !presence.isNotRunning)
                print("archives dropped into the spool:\n" + lines.map { "  " + $0 }.joined(separator: "\n") + "\n")
            }
            if let overview = DatasetStatus.overview(statuses) { print(overview + "\n") }
            print(datasets.isEmpty ? DatasetStatus.listing(statuses) : statuses.map { $0.summary() }.joined(separator: "\n"))
        }
    }

    /// `--archives`: every archive's record, as text or as `archives.json` holds it.
    func showArchives(stateFolder: String, spool: String) throws {
        guard datasets.isEmpty else { throw CommandFailure("--archives lists every archive: name no datasets with it") }
        let records = ArchiveRecords.read(stateFolder: stateFolder)
        if json {
            print(String(decoding: try ArchiveRecords.encode(records), as: UTF8.self))
        } else if records.isEmpty {
            print("no archives dropped into \(spool) (none recorded under \(stateFolder))")
        } else {
            let daemonRuns = !DaemonPresence.of(stateFolder: stateFolder).isNotRunning
            print(ArchiveRecords.summary(records, spool: spool, daemonRuns: daemonRuns, all: true).joined(separator: "\n"))
        }
    }

    /// The datasets asked for on the command line (all without), or an error naming one that
    /// is not there.
    func chosen(_ statuses: [DatasetStatus], in folder: String, spool: String?) throws -> [DatasetStatus] {
        guard !datasets.isEmpty else { return statuses }
        let datasets = try self.datasets.map { try DatasetName.of($0, spool: spool) }
        let known = Set(statuses.map(\.dataset))
        if let unknown = datasets.first(where: { !known.contains($0) }) {
            let some = known.sorted().prefix(10).joined(separator: ", ") + (known.count > 10 ? ", ..." : "")
            throw CommandFailure("no dataset '\(unknown)' under \(folder)" + (known.isEmpty ? "" : " (there are: \(some))"))
        }
        return statuses.filter { datasets.contains($0.dataset) }
    }

    func showCluster(_ configuration: Configuration) throws {
        let database = try ClusterConnection.open(configuration)
        var status = try ClusterStatus.read(database, state: configuration.state)
        status.datasets = try chosen(status.datasets, in: configuration.state, spool: configuration.spool).map { $0.withOutputs(under: configuration.output) }
        if json {
            print(try RecordJSON.text(status))
        } else {
            // The archives block as on one machine, between the cluster's nodes and its datasets.
            let records = datasets.isEmpty ? ArchiveRecords.read(stateFolder: configuration.state) : [:]
            let lines = ArchiveRecords.summary(records, spool: configuration.spool, daemonRuns: !status.nodes.allSatisfy(\.stopped))
            print(status.summary(leaseSeconds: configuration.leaseSeconds, archives: lines, everyDataset: datasets.isEmpty))
        }
    }
}

/// A connection to the cluster's database for a one-off command; errors exit as the daemon's do.
enum ClusterConnection {
    /// The database the configuration names; a wrong address (or password file) throws its error.
    static func database(_ configuration: Configuration) throws -> ClusterDatabase {
        let address = try DatabaseAddress.parse(configuration.database, passwordFile: DatabaseAddress.passwordFile(configuration.passwordFile))
        return ClusterDatabase(address: address, logger: Logger(label: "synthd"))
    }

    /// As `database`, a wrong address said and exiting with a configuration mistake's status.
    static func open(_ configuration: Configuration) throws -> ClusterDatabase {
        do {
            return try database(configuration)
        } catch {
            FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
            throw ExitCode(Configuration.Error.exitStatus)
        }
    }
}
