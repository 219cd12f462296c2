import CZlib
import Foundation
import Imaging
import Testing

@Suite struct IDXTests {
    /// Two 2x3 images as IDX: magic 0 0 8 3, dimensions 2, 2, 3 (big-endian), then 12 bytes.
    let idx: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3] + Array(1...12)

    func temporary(_ name: String) -> String { NSTemporaryDirectory() + "synthd-idx-\(UUID().uuidString)-\(name)" }

    @Test func readsPlainAndGzippedFiles() throws {
        let plain = temporary("plain.idx")
        try Data(idx).write(to: URL(fileURLWithPath: plain))
        let compressed = temporary("packed.idx.gz")
        let file = gzopen(compressed, "wb")!
        _ = idx.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        defer { for path in [plain, compressed] { try? FileManager.default.removeItem(atPath: path) } }
        for path in [plain, compressed] {
            let array = try IDX.read(path: path)
            #expect(array.dimensions == [2, 2, 3])
            #expect(array.bytes == Array(1...12))
        }
    }

    @Test func wrongLengthAndTypeAreRefused() throws {
        let path = temporary("bad.idx")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(Array(idx.dropLast())).write(to: URL(fileURLWithPath: path))
        #expect(throws: IDX.Error.malformed(path: path, reason: "11 data bytes for dimensions [2, 2, 3]")) {
            try IDX.read(path: path)
        }
        var floats = idx
        floats[2] = 0x0D
        try Data(floats).write(to: URL(fileURLWithPath: path))
        #expect(throws: IDX.Error.self) { try IDX.read(path: path) }
    }

    /// A file that cannot be opened is named with the system's reason.
    @Test func aMissingFileSaysWhy() {
        #expect(throws: IDX.Error.unreadable(path: "/nonexistent/labels.idx", reason: "No such file or directory")) {
            try IDX.read(path: "/nonexistent/labels.idx")
        }
    }
}
