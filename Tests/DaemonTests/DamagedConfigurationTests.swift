import Daemon
import FileTestSupport
import Foundation
import Testing

/// Damaged configuration text (the daemon's file, and a dataset's own `synthd.toml`, which
/// anyone who can drop a folder into the spool writes): each copy is a configuration or an
/// error naming the file, never a crash of the daemon that reads it.
@Suite struct DamagedConfigurationTests {
    let path = "spool/cats/synthd.toml"

    static let text = """
        # a dataset's settings
        [training]
        minutes = 12.5
        batch = 64
        seed = 7
        augmentation = "auto"
        [generation]
        enlarge = 0.5
        temperature = 1.0
        shift = 0.07

        """

    func expectConfigurationOrNamedError(_ text: String, tables: Set<String>, mutant: Int) -> Bool {
        do {
            _ = try Configuration.parse(text, path: path, tables: tables)
            return true
        } catch {
            #expect(error.description.hasPrefix(path + ":"), "mutant \(mutant): \(error)")
            return false
        }
    }

    @Test func everyDamagedCopyIsReadOrRefusedByName() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let daemonFile = try String(contentsOf: repository.appendingPathComponent("config/synthd.toml"), encoding: .utf8)
        var parsed = 0, refused = 0
        for (s, (text, tables)) in [(Self.text, Configuration.datasetTables), (daemonFile, Configuration.allTables)].enumerated() {
            #expect(expectConfigurationOrNamedError(text, tables: tables, mutant: -1), "the undamaged file parses")
            for (i, bytes) in Mutations(of: Array(text.utf8), count: 3000, seed: UInt64(400 + s)).enumerated() {
                if expectConfigurationOrNamedError(String(decoding: bytes, as: UTF8.self), tables: tables, mutant: i) {
                    parsed += 1
                } else {
                    refused += 1
                }
            }
        }
        #expect(parsed >= 100 && refused >= 100, "\(parsed) parsed, \(refused) refused")
    }

    /// Arrays nested a million deep on one line: refused by name. Each level was a frame of
    /// the parser's recursion, so such a file overflowed the daemon's stack before 2026-12-03.
    @Test func deeplyNestedArraysAreRefused() {
        let text = "[generation]\nenlarge = " + String(repeating: "[", count: 1_000_000) + "\n"
        #expect(throws: Configuration.Error.self) { try Configuration.parse(text, path: path, tables: Configuration.datasetTables) }
        let shallow = "[generation]\nenlarge = [[1]]\n"
        let error = #expect(throws: Configuration.Error.self) { try Configuration.parse(shallow, path: path, tables: Configuration.datasetTables) }
        #expect(error?.description.contains("nested") == false, "two levels are an ordinary type error: \(String(describing: error))")
    }
}
