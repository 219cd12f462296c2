import Daemon
import Engine
import Foundation
import Testing

@Suite struct OutputTreeTests {
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "synthd-out-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func fill(_ folder: String, _ text: String) throws {
        try FileManager.default.createDirectory(atPath: folder + "/cat", withIntermediateDirectories: true)
        try writeFileAtomically(path: folder + "/cat/1.png", bytes: Array(text.utf8))
    }

    func published(_ tree: OutputTree) -> String? {
        try? String(contentsOfFile: tree.linkPath("pets") + "/cat/1.png", encoding: .utf8)
    }

    @Test func publishesWholeGenerationsAndKeepsTheNewest() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = OutputTree(root: root, keep: 2)
        #expect(try tree.publish("pets", generation: "step-10") { try fill($0, "ten") })
        #expect(tree.current("pets") == "step-10" && published(tree) == "ten")
        #expect(try !tree.publish("pets", generation: "step-10") { _ in Issue.record("written twice") }, "already published")

        try tree.publish("pets", generation: "step-20") { try fill($0, "twenty") }
        try tree.publish("pets", generation: "step-30") { try fill($0, "thirty") }
        #expect(published(tree) == "thirty")
        let kept = try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets")).sorted()
        #expect(kept == ["step-20", "step-30"], "the current one and the newest earlier one")
    }

    @Test func aFailedWriteChangesNothingVisible() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let tree = OutputTree(root: root, keep: 2)
        try tree.publish("pets", generation: "step-10") { try fill($0, "ten") }
        struct DiskFullError: Error {}
        #expect(throws: DiskFullError.self) {
            try tree.publish("pets", generation: "step-20") { folder in
                try fill(folder, "half")
                throw DiskFullError()
            }
        }
        #expect(tree.current("pets") == "step-10" && published(tree) == "ten")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets")) == ["step-10"],
                "the partial generation is removed")
        // Tried again, it completes.
        try tree.publish("pets", generation: "step-20") { try fill($0, "twenty") }
        #expect(published(tree) == "twenty")
    }

    @Test func aRealFolderInTheWayIsKeptAsAnEarlierGeneration() throws {
        let root = try folder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try fill(root + "/pets", "by hand")
        let tree = OutputTree(root: root, keep: 5)
        try tree.publish("pets", generation: "step-10") { try fill($0, "ten") }
        #expect(published(tree) == "ten")
        let names = try FileManager.default.contentsOfDirectory(atPath: tree.generationsPath("pets"))
        let earlier = try #require(names.first { $0.hasPrefix("earlier-") })
        #expect(try String(contentsOfFile: tree.generationPath("pets", earlier) + "/cat/1.png", encoding: .utf8) == "by hand")
    }
}
