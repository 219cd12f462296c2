import Cluster
import Foundation
import Logging

/// A PostgreSQL server of the test's own (scripts/postgres-private: a temporary folder with
/// the data and a Unix socket, no TCP port), stopped and removed when the test ends.
final class PrivatePostgres: @unchecked Sendable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let folder: String
    let address: DatabaseAddress

    init() throws {
        folder = NSTemporaryDirectory() + "synthd-pg-" + UUID().uuidString.prefix(8)
        let url = try Self.script("start", folder)
        address = try DatabaseAddress.parse(url, environment: [:])
    }

    deinit {
        _ = try? Self.script("stop", folder)
        try? FileManager.default.removeItem(atPath: folder)
    }

    func stop() throws { _ = try Self.script("stop", folder) }
    func start() throws { _ = try Self.script("start", folder) }

    /// A connection of its own (each node, each thread of a test has one).
    func connect(timeout: Int64 = 15) -> ClusterDatabase {
        ClusterDatabase(address: address, logger: Logger(label: "test"), timeout: timeout)
    }

    /// A fresh database at the latest schema.
    static func migrated() throws -> PrivatePostgres {
        let server = try PrivatePostgres()
        try Schema.migrate(server.connect())
        return server
    }

    struct ScriptFailed: Error, CustomStringConvertible {
        let description: String
    }

    @discardableResult
    static func script(_ arguments: String...) throws -> String {
        let process = Process()
        process.executableURL = repository.appendingPathComponent("scripts/postgres-private")
        process.arguments = arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(description: "postgres-private \(arguments.joined(separator: " ")): \(problem)")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
