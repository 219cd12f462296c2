import ArgumentParser
import Daemon
import Foundation

/// `synthd status`: what the models in a state folder are and how far they got.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show each dataset's model: classes, images, steps, losses, last checkpoint.",
        discussion: "It only reads the state folder, so it works while training runs.")

    @Option(help: "A state folder, or a folder of state folders (one per dataset).") var state = "state"
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        let statuses = try DatasetStatus.read(state)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(statuses), as: UTF8.self))
        } else if statuses.isEmpty {
            print("no trained models under \(state)")
        } else {
            statuses.forEach { print($0.summary) }
        }
    }
}
