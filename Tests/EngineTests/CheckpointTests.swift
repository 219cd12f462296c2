import Engine
import Foundation
import NumericTestSupport
import Testing

@Suite final class CheckpointTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "synthd-checkpoint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: folder) }

    func sample() -> Checkpoint {
        var checkpoint = Checkpoint()
        checkpoint.add("a.weight", randomTensor([2, 3], seed: 1))
        checkpoint.add("b.bias", randomTensor([4], seed: 2))
        checkpoint.metadata["step"] = "1200"
        checkpoint.metadata["rng"] = "42 17 nil"
        return checkpoint
    }

    @Test func roundTripPreservesTensorsAndMetadata() throws {
        let path = folder + "/model.ckpt"
        let original = sample()
        try original.write(to: path)
        let read = try Checkpoint.read(from: path)
        #expect(read.entries == original.entries)
        #expect(read.metadata == original.metadata)
        // The temporary file of the atomic write is gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["model.ckpt"])

        let a = Tensor(zeros: [2, 3]), b = Tensor(zeros: [4])
        try read.restore([NamedTensor("a.weight", a), NamedTensor("b.bias", b)], path: path)
        #expect(a.values == original.entry(named: "a.weight")!.values)
    }

    @Test func truncatedFileIsRefused() throws {
        let path = folder + "/short.ckpt"
        let bytes = sample().encoded()
        try Data(bytes.prefix(bytes.count - 10)).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.truncated(path: path, expectedBytes: bytes.count, actualBytes: bytes.count - 10)) {
            try Checkpoint.read(from: path)
        }
    }

    @Test func flippedByteIsRefusedByTheChecksum() throws {
        let path = folder + "/corrupt.ckpt"
        var bytes = sample().encoded()
        bytes[40] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try Checkpoint.read(from: path)
            Issue.record("a corrupt checkpoint was accepted")
        } catch {
            guard case .checksumMismatch(let errorPath, _, _) = error else {
                Issue.record("expected a checksum mismatch, got \(error)")
                return
            }
            #expect(errorPath == path)
            #expect(error.description.hasPrefix(path + ": checkpoint is corrupt"))
            #expect(error.description.contains("delete its state folder to train afresh"), "says what to do")
        }
    }

    @Test func otherVersionAndOtherFilesAreRefused() throws {
        let path = folder + "/future.ckpt"
        var bytes = sample().encoded()
        bytes[8] = 99  // the version's low byte
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.unsupportedVersion(path: path, found: 99, supported: Checkpoint.formatVersion)) {
            try Checkpoint.read(from: path)
        }
        let png = folder + "/image.png"
        try Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0]).write(to: URL(fileURLWithPath: png))
        #expect(throws: CheckpointError.notACheckpoint(path: png)) { try Checkpoint.read(from: png) }
        let empty = folder + "/empty.ckpt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(throws: CheckpointError.notACheckpoint(path: empty)) { try Checkpoint.read(from: empty) }
    }

    @Test func restoreChecksNamesAndShapesBeforeWriting() throws {
        let checkpoint = sample()
        let a = Tensor(zeros: [2, 3])
        #expect(throws: CheckpointError.shapeMismatch(path: "x", name: "b.bias", expected: [5], found: [4])) {
            try checkpoint.restore([NamedTensor("a.weight", a), NamedTensor("b.bias", Tensor(zeros: [5]))], path: "x")
        }
        #expect(a.values.allSatisfy { $0 == 0 }, "a failed restore must not change any tensor")
        #expect(throws: CheckpointError.missingTensor(path: "x", name: "c")) {
            try checkpoint.restore([NamedTensor("c", a)], path: "x")
        }
    }

    @Test func unwritableFolderGivesAnErrorNamingTheFile() {
        let path = folder + "/no/such/folder/model.ckpt"
        do {
            try sample().write(to: path)
            Issue.record("writing into a missing folder succeeded")
        } catch {
            #expect(error.description.contains(path + ".tmp."))
            #expect(error.description.contains("No such file or directory"))
        }
    }

    /// New files are written unnamed and linked in; an existing one is replaced through a
    /// named temporary file. Either way the folder ends with exactly the files asked for.
    @Test(arguments: [false, true])
    func atomicWritesLeaveOnlyTheFile(durable: Bool) throws {
        let path = folder + "/out.bin"
        try writeFileAtomically(path: path, bytes: [1, 2, 3], durable: durable)
        #expect(try readFile(path: path) == [1, 2, 3])
        try writeFileAtomically(path: path, bytes: [9, 8], durable: durable)
        #expect(try readFile(path: path) == [9, 8], "an existing file is replaced")
        try writeFileAtomically(path: folder + "/second.bin", bytes: [], durable: durable)
        #expect(try readFile(path: folder + "/second.bin").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["out.bin", "second.bin"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o600 == 0o600 } == true, "readable and writable by its owner")
    }

    /// The temporary names of writes in progress, and the pid that a sweep reads back from
    /// them; a user's file that merely looks alike is not one.
    @Test func temporaryNamesCarryTheirWritersPid() {
        #expect(AtomicTemporary.path(for: "/s/model.json", pid: 4242) == "/s/model.json.tmp.4242")
        #expect(AtomicTemporary.writer(of: AtomicTemporary.path(for: "/s/model.json", pid: 4242)) == 4242)
        #expect(AtomicTemporary.writer(of: "checkpoint.ckpt.tmp.17") == 17)
        #expect(AtomicTemporary.writer(of: ".set8.forgotten.tmp.9") == 9)
        for other in ["model.json", "notes.tmp", "notes.tmp.", "notes.tmp.x", "notes.tmp.-3", "notes.tmp.0", ".tmp.5", "/s/.tmp.5", "a.tmp.99999999999"] {
            #expect(AtomicTemporary.writer(of: other) == nil, "\(other)")
        }
    }

    /// Non-durable writes are flushed by syncfs on their own file system, found from a file or
    /// a folder in it; a path that cannot be opened falls back to sync(2).
    @Test func flushesTheFileSystemOfAPath() throws {
        try writeFileAtomically(path: folder + "/pending.bin", bytes: [1], durable: false)
        #expect(syncFileSystem(containing: folder + "/pending.bin"))
        #expect(syncFileSystem(containing: folder))
        #expect(!syncFileSystem(containing: folder + "/no-such-file"))
    }
}
