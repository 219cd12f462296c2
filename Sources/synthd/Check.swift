import ArgumentParser
import Cluster
import CommandLineSupport
import Daemon
import Engine
import Foundation
import GAN

/// `synthd check`: reads a dataset as the daemon would and says what it would do with it,
/// training nothing and writing nothing.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a dataset as the daemon would, and say what it would train and write: nothing is trained or written.",
        discussion: """
        Before a large dataset is dropped into the spool: every image is decoded with the daemon's limits \
        and the dataset's own synthd.toml, and the report gives the classes and their images, each file \
        that would be left out and why, warnings about the layout and the files (split folders read as \
        classes, photos stored turned), the model a first training makes and for how long, the memory \
        its images take, and how many synthetic images of what size the first generation writes for \
        each class.

        Exit status: 0 the daemon would train it (warnings or not); 65 it would not (no readable images, \
        more than fit in memory: the message says why); 78 a wrong key in the configuration or the \
        dataset's synthd.toml.
        """)

    @Argument(help: "Dataset folder: <dataset>/<class>/<images>.") var dataset: String
    @Option(help: "The daemon's configuration file (its [training], [generation] and limits apply).") var config: String?
    @Flag(help: "Print JSON instead of text (every rejected file listed).") var json = false

    /// sysexits.h: the input data was incorrect.
    static let unusable: Int32 = 65

    func run() throws {
        let base = try ConfigurationLocation.load(config)
        let folder = dataset.count > 1 && dataset.hasSuffix("/") ? String(dataset.dropLast()) : dataset
        let settings: Configuration
        do { settings = try Configuration.forDataset(at: folder, base: base) } catch {
            FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
            throw ExitCode(Configuration.Error.exitStatus)
        }
        // A dataset in the daemon's spool is read as the daemon reads it: links out of the spool
        // not followed, and its model (a dataset directly in it) fine-tuned, not made anew.
        let resolved = { (path: String) in URL(fileURLWithPath: path).resolvingSymlinksInPath() }
        let spool = resolved(base.spool).path, place = resolved(folder)
        let inSpool = place.path.hasPrefix(spool.hasSuffix("/") ? spool : spool + "/")
        let directlyInSpool = place.deletingLastPathComponent().path == spool
        let started = Moment.now
        let progress = ProgressLine()
        let check: DatasetCheck
        do {
            check = try DatasetCheck.of(folder, settings: settings, existing: directlyInSpool ? existing(folder, base: base, settings: settings) : nil,
                                        confinedTo: inSpool ? base.spool : nil,
                                        control: TrainingSet.LoadControl(progress: { read, total in
                guard read < total else { return }
                progress.update(fraction: Double(read) / Double(total), remaining: started.secondsAgo * Double(total - read) / Double(read),
                                text: "reading images: \(read) of \(total)")
            }))
        } catch {
            progress.clear()
            FileHandle.standardError.write(Data("synthd: the daemon would not train it: \(error)\n".utf8))
            throw ExitCode(Self.unusable)
        }
        progress.clear()
        if json {
            print(try RecordJSON.text(check))
        } else {
            print(check.summary())
        }
    }

    /// The daemon's model of a dataset directly in its spool, as its state folder has it; nil
    /// for a dataset it has none of.
    func existing(_ folder: String, base: Configuration, settings: Configuration) -> DatasetCheck.Existing? {
        let stateFolder = base.state + "/datasets/" + (folder as NSString).lastPathComponent
        let state = StateFolder(reading: stateFolder)
        guard let record = try? state.readRecord() else { return nil }
        let runtime = daemonRecord(of: (folder as NSString).lastPathComponent, stateFolder: stateFolder, base: base) ?? DatasetRuntime()
        let trained = runtime.trainedFingerprint
        let now = try? DatasetFingerprint.of(folder, confinedTo: base.spool).value
        return DatasetCheck.Existing(record: record, changes: ModelChange.asked(by: settings, over: base, of: record),
                                     trainedOnTheseFiles: trained != nil && trained == now,
                                     firstTrainingUnfinished: runtime.firstTrainingUnfinished,
                                     trainingOn: TrainingOn.asked(by: settings, over: base, of: runtime))
    }

    /// The daemon's record of the dataset: its `daemon.json`, or in a cluster the database's
    /// (a cluster keeps no `daemon.json`: every trained dataset read as one whose first
    /// training was unfinished). A database that does not answer is said, and the model is
    /// read without a record.
    func daemonRecord(of name: String, stateFolder: String, base: Configuration) -> DatasetRuntime? {
        guard base.isClustered else { return RuntimeStore.read(stateFolder + "/daemon.json") }
        do {
            return try ClusterRuntime(database: ClusterConnection.database(base)).load(name)
        } catch {
            FileHandle.standardError.write(Data("note: the cluster's record of \(name) cannot be read (\(error)); what the daemon would do with its model is said as if it had none\n".utf8))
            return nil
        }
    }
}
