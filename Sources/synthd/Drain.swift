import ArgumentParser
import Cluster
import Daemon
import Foundation

/// `synthd drain NODE`: asks a cluster node to finish its slice, give its job back and take no more.
struct Drain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drain a cluster node: it finishes its current slice, checkpoints, gives its job back and takes no more.",
        discussion: """
        The node hears it at its next heartbeat (within a quarter of [cluster] lease_seconds). Sending the node's \\
        process SIGUSR1 does the same. A drained node takes jobs again when it is restarted.
        """)

    @Argument(help: "The node's name, as `synthd status` lists it.") var node: String
    @Option(help: "Configuration file naming the cluster's database.") var config: String?

    func run() throws {
        let configuration = try ConfigurationLocation.load(config)
        guard configuration.isClustered else {
            FileHandle.standardError.write(Data("synthd: no [cluster] database in the configuration: there is no cluster to drain a node of\n".utf8))
            throw ExitCode(Configuration.Error.exitStatus)
        }
        let registry = NodeRegistry(database: try ClusterConnection.open(configuration))
        guard try registry.drain(node) else {
            let known = try registry.nodes().map(\.name)
            FileHandle.standardError.write(Data("synthd: no node named '\(node)' in the cluster (nodes: \(known.joined(separator: ", ")))\n".utf8))
            throw ExitCode(66)  // EX_NOINPUT
        }
        print("node \(node) is draining: it gives its job back at the end of its slice and takes no more")
    }
}
