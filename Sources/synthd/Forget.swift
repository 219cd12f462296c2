import ArgumentParser
import Cluster
import Daemon
import Foundation

/// `synthd forget`: deletes what synthd keeps of datasets that left the spool.
struct Forget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete the model, state and outputs synthd keeps of datasets that left the spool.",
        discussion: """
        A dataset whose folder left the spool keeps its model (a rename, or the folder back, carries on \
        from it) and its published outputs. This deletes them: the dataset's state folder and, unless \
        --keep-outputs, its output link and generations. A dataset still in the spool is refused (the \
        daemon would train it again), and so is one whose model another synthd is writing (in a cluster: one \
        with a job queued or running). It works while synthd run runs; in a cluster it also deletes the \
        dataset's record in the database. The daemon does the same by itself with [service] \
        forget_removed_after_days.
        """)

    @Argument(help: "Datasets to forget, by name (or by the path their folder had in the spool).") var datasets: [String]
    @Option(help: "Configuration file naming the spool, output and state folders.") var config: String?
    @Flag(help: "Keep the dataset's outputs; delete its model and state only.") var keepOutputs = false

    func run() throws {
        let configuration = try ConfigurationLocation.load(config)
        // In a cluster the record in the database goes with the files, refused while a job of
        // the dataset is queued or running on any node.
        let records = configuration.isClustered ? ClusterRuntime(database: try ClusterConnection.open(configuration)) : nil
        let output = keepOutputs ? nil : OutputTree(root: configuration.output, keep: configuration.keepGenerations)
        var failed = false
        for argument in datasets {
            do {
                let dataset = try DatasetName.of(argument, spool: configuration.spool)
                var freed = Forgetting.Freed()
                if let records {
                    try Forgetting.mayForget(dataset, spool: configuration.spool)
                    // A deletion cut short is finished even where the record must wait (a job
                    // of the dataset still stopping): its folders are no one's once renamed.
                    let earlier = Forgetting.finishInterrupted(dataset, state: configuration.state, output: output?.root)
                    let hadRecord = try records.forget(dataset) {
                        freed = try Forgetting.forget(dataset, spool: configuration.spool, state: configuration.state, output: output)
                    }
                    freed.add(finished: earlier)
                    if hadRecord, freed.isEmpty {
                        print("\(dataset): its record in the cluster's database deleted (it had no model or outputs)")
                        continue
                    }
                } else {
                    freed = try Forgetting.forget(dataset, spool: configuration.spool, state: configuration.state, output: output)
                }
                if freed.isEmpty {
                    let places = configuration.state + "/datasets" + (keepOutputs ? "" : " or " + configuration.output)
                    FileHandle.standardError.write(Data("synthd: no dataset '\(dataset)' in \(places): nothing deleted\n".utf8))
                    failed = true
                } else {
                    print("\(dataset): \(freed.summary)")
                }
            } catch {
                FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
