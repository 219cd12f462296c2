import ArgumentParser
import Daemon
import Foundation

/// `synthd status`: what the daemon is doing with each dataset, and how far each model got.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each dataset: state, progress and ETA, classes, images, steps, losses, outputs, errors.",
        discussion: """
        It only reads the state folder, so it works while the daemon or a training runs. Without --state it \
        reads the state folder named by the configuration (--config, /etc/synthd/synthd.toml, or \
        config/synthd.toml).
        """)

    @Option(help: "A state folder: the daemon's, a folder of state folders, or one dataset's.") var state: String?
    @Option(help: "Configuration file naming the state folder.") var config: String?
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let folder: String
        if let state {
            folder = state
        } else {
            let path = config ?? ConfigurationLocation.default()
            do {
                folder = try path.map { path throws(Configuration.Error) in try Configuration.load(path: path) }?.state
                    ?? Configuration().state
            } catch {
                FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
                throw ExitCode(Configuration.Error.exitStatus)
            }
        }
        let statuses = try DatasetStatus.read(folder)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(statuses), as: UTF8.self))
        } else if statuses.isEmpty {
            print("no datasets under \(folder)")
        } else {
            statuses.forEach { print($0.summary()) }
        }
    }
}
