import Foundation
import Engine
import GAN
import Imaging
import Testing

/// Setting a model aside (a dataset's synthd.toml asked for another model): every file of the
/// model moves to `previous-model/`, the folder's own files stay, and a replacement cut short
/// at any point is finished by the next, losing neither model.
@Suite final class StateFolderTests {
    /// What a dataset adds to a model, as the log and `synthd check` say it, one class and more.
    @Test func additionsAreCountedInWords() {
        let record = ModelRecord(configuration: ModelConfiguration(classes: 2), classes: ["a", "b"], mode: .grey, imageWidth: 28,
                                 imageHeight: 28, steps: 10, imagesAtLastRun: 100, options: TrainingOptions())
        #expect(record.additions(classes: 2, images: 100).isEmpty)
        #expect(record.additions(classes: 3, images: 120) == ["1 new class", "+20 images"])
        #expect(record.additions(classes: 4, images: 97) == ["2 new classes", "-3 images"])
    }

    let root = NSTemporaryDirectory() + "synthd-state-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ files: [String: String], in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in files { try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8) }
    }

    func contents(_ folder: String) throws -> [String: String] {
        var found: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder)
            found[name] = isFolder.boolValue ? "(folder)" : try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
        }
        return found
    }

    /// A writer killed midway leaves `<name>.tmp.<pid>`; whoever holds the folder's lock next
    /// removes it, whatever the pid (a cluster's nodes are other machines), here and in
    /// `previous-model/`, keeping this process's own (the daemon's record is written without
    /// the lock) and everything that only looks alike.
    @Test func interruptedWritesAreRemovedByTheNextHolder() throws {
        let state = try StateFolder(root), own = "\(getpid())"
        try write(["checkpoint.ckpt": "c", "checkpoint.ckpt.tmp.4194301": "half", "model.json.tmp.1": "half",
                   "daemon.json.tmp.\(own)": "in progress", "notes.tmp.x": "n", "tmp.42": "t", "checkpoint.ckpt.tmp.0": "z"], in: root)
        try write(["checkpoint.ckpt.tmp.77": "half", "checkpoint.ckpt": "old"], in: root + "/previous-model")
        try write(["a.tmp.9": "deeper"], in: root + "/previous-model/deeper")
        try FileManager.default.createDirectory(atPath: root + "/other.tmp.12", withIntermediateDirectories: true)
        let lock = try state.lock(for: "test")
        defer { lock.release() }
        #expect(state.removeInterruptedWrites() == ["checkpoint.ckpt.tmp.4194301", "model.json.tmp.1", "previous-model/checkpoint.ckpt.tmp.77"])
        #expect(Set(try contents(root).keys) == ["checkpoint.ckpt", "daemon.json.tmp.\(own)", "notes.tmp.x", "tmp.42", "checkpoint.ckpt.tmp.0",
                                                  "previous-model", "other.tmp.12", ".lock"])
        #expect(try contents(root + "/previous-model") == ["checkpoint.ckpt": "old", "deeper": "(folder)"])
        #expect(try contents(root + "/previous-model/deeper") == ["a.tmp.9": "deeper"], "one folder down, not two")
        #expect(state.removeInterruptedWrites().isEmpty)
    }

    @Test func theModelMovesAsideAndTheFoldersOwnFilesStay() throws {
        let state = try StateFolder(root)
        let model = ["model.json": "m1", "checkpoint.ckpt": "c1", "judge.ckpt": "j1", "samples.png": "s1", "best-step-5.ckpt": "b1"]
        try write(model.merging(["daemon.json": "d", "dataset.json": "r", "rejections-named.json": "n", ".lock": ""]) { $1 }, in: root)
        try state.setModelAside()
        #expect(try contents(root) == ["daemon.json": "d", "dataset.json": "r", "rejections-named.json": "n", ".lock": "",
                                       "previous-model": "(folder)"])
        #expect(try contents(state.previousModelPath) == model)
        #expect(try state.readRecord() == nil, "no model here: the next training makes one")

        // The next replacement replaces the one before.
        try write(["model.json": "m2", "checkpoint.ckpt": "c2"], in: root)
        try state.setModelAside()
        #expect(try contents(state.previousModelPath) == ["model.json": "m2", "checkpoint.ckpt": "c2"])
        // Without a model, nothing to do.
        try state.setModelAside()
        #expect(try contents(state.previousModelPath) == ["model.json": "m2", "checkpoint.ckpt": "c2"])
    }

    /// Cut short before the record moved: the model is still here (its record), partly
    /// staged; the next call moves the rest. Cut short after: the staged model is whole, and
    /// becomes `previous-model/` even though a new model has been made here since.
    @Test func aReplacementCutShortIsFinished() throws {
        let state = try StateFolder(root)
        let staging = root + "/.previous-model.tmp"
        try write(["checkpoint.ckpt": "c1"], in: staging)
        try write(["model.json": "m1", "judge.ckpt": "j1", "daemon.json": "d"], in: root)
        try state.setModelAside()
        #expect(try contents(state.previousModelPath) == ["model.json": "m1", "checkpoint.ckpt": "c1", "judge.ckpt": "j1"])
        #expect(try contents(root) == ["daemon.json": "d", "previous-model": "(folder)"])

        try write(["model.json": "m2", "checkpoint.ckpt": "c2"], in: staging)
        try write(["model.json": "m3", "checkpoint.ckpt": "c3"], in: root)
        try state.setModelAside()
        #expect(try contents(state.previousModelPath) == ["model.json": "m3", "checkpoint.ckpt": "c3"], "the latest replaced model")
        #expect(!FileManager.default.fileExists(atPath: staging))
    }
}
