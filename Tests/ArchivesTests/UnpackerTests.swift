@testable import Archives
import CZlib
import FileTestSupport
import Foundation
import Imaging
import Testing

/// The archives of `scripts/make_archive_fixtures.py` (written by Python's zipfile and
/// tarfile) unpacked, and compared file by file with what the script put in them.
@Suite final class UnpackerTests {
    /// Every folder a test unpacks into lies under this one, removed when the test ends.
    let base = NSTemporaryDirectory() + "synthd-unpack-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: base) }

    static let fixtures = Bundle.module.resourcePath! + "/Fixtures/"
    static let unlimited = Unpacker.Limits(maxBytes: 1 << 30, reserveBytes: 0)

    struct Expected: Decodable {
        let root: String
        let files: [String: UInt32]
        let skipped: [String]
    }

    static let expected: [String: Expected] = {
        // zip and tar by Python's zipfile and tarfile; 7z by py7zr (scripts/make_7z_fixtures.py).
        ["expected.json", "expected-7z.json"].reduce(into: [String: Expected]()) { all, name in
            let data = try! Data(contentsOf: URL(fileURLWithPath: fixtures + name))
            all.merge(try! JSONDecoder().decode([String: Expected].self, from: data)) { first, _ in first }
        }
    }()

    func scratch() throws -> String {
        let path = base + "/" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func unpack(_ name: String, limits: Unpacker.Limits = unlimited, into folder: String? = nil) throws -> (Unpacker.Result, String) {
        let destination = (try folder ?? scratch()) + "/out"
        let (format, _) = try #require(ArchiveFormat.of(name: name))
        let reader = try ArchiveFormat.open(path: Self.fixtures + name, named: format)
        return (try Unpacker(limits: limits).unpack(reader, into: destination), destination)
    }

    /// Every file below `root`, relative, with its CRC-32.
    func listing(_ root: String) throws -> [String: UInt32] {
        var result: [String: UInt32] = [:]
        let enumerator = try #require(FileManager.default.enumerator(atPath: root))
        for case let relative as String in enumerator {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue else { continue }
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: root + "/" + relative)))
            result[relative] = bytes.withUnsafeBytes { UInt32(crc32(0, $0.baseAddress?.assumingMemoryBound(to: Bytef.self), UInt32($0.count))) }
        }
        return result
    }

    @Test(arguments: ["flowers.zip", "zip64.zip", "two-members.tar.gz", "hostile.tar", "cp437.zip", "long-path.tar",
                      "shoes.tar.xz", "shoes.tar.bz2", "shoes.tar.zst", "bzip2.zip", "lzma.zip",
                      "shoes.7z", "lzma.7z", "bzip2.7z", "deflate.7z", "copy.7z", "bcj.7z", "bcj-lzma.7z", "7zip-default.7z", "7zip-plain-header.7z"])
    func unpacksWhatPythonPacked(name: String) throws {
        let expected = try #require(Self.expected[name])
        let (result, destination) = try unpack(name)
        let root = expected.root.isEmpty ? destination : destination + "/" + expected.root
        #expect(result.root == root)
        #expect(try listing(destination).mapKeys { expected.root.isEmpty ? $0 : String($0.dropFirst(expected.root.count + 1)) } == expected.files)
        #expect(result.files == expected.files.count)
        #expect(result.skipped.map(\.path).sorted() == expected.skipped)
    }

    /// How far into the archive file a reader is: rising member by member (a compressed
    /// tar's is its decoder's, which reads ahead), and the whole file once unpacked.
    @Test(arguments: ["two-members.tar.gz", "hostile.tar", "long-path.tar", "shoes.tar.bz2", "shoes.tar.xz", "flowers.zip", "zip64.zip",
                      "shoes.7z", "copy.7z"])
    func progressSaysHowFarIntoTheFile(name: String) throws {
        let (format, _) = try #require(ArchiveFormat.of(name: name))
        let reader = try ArchiveFormat.open(path: Self.fixtures + name, named: format)
        var fractions: [Double] = []
        while try reader.nextEntry() != nil { fractions.append(reader.fractionRead ?? -1) }
        #expect(fractions.count >= 2 && fractions == fractions.sorted() && fractions.allSatisfy { $0 >= 0 && $0 <= 1 }, "\(fractions)")
        if name.hasSuffix(".zip") || name.hasSuffix(".tar") { #expect(fractions.first! < fractions.last!, "\(fractions)") }
        var reported: [Double?] = []
        let again = try ArchiveFormat.open(path: Self.fixtures + name, named: format)
        _ = try? Unpacker(limits: Self.unlimited).unpack(again, into: try scratch() + "/out", progress: { reported.append($0.fraction) })
        #expect(reported.last == 1, "\(reported)")
    }

    /// A large 7z folder is decoded ahead on a thread of its own while its files are written:
    /// the same files come out (the fixtures' folders are small, so the threshold is lowered
    /// to take that path), also where a member of it is passed over (the README).
    @Test(arguments: ["shoes.7z", "7zip-default.7z", "lzma.7z"])
    func aSevenZipFolderReadAheadUnpacksTheSame(name: String) throws {
        let expected = try #require(Self.expected[name])
        let reader = try SevenZipReader(file: ArchiveFile(path: Self.fixtures + name), readAheadBytes: 0)
        let destination = try scratch() + "/out"
        let result = try Unpacker(limits: Self.unlimited).unpack(reader, into: destination)
        let root = expected.root.isEmpty ? destination : destination + "/" + expected.root
        #expect(result.root == root)
        #expect(try listing(destination).mapKeys { expected.root.isEmpty ? $0 : String($0.dropFirst(expected.root.count + 1)) } == expected.files)
    }

    @Test func hostileMembersAreSkippedWithTheirReasons() throws {
        let (result, destination) = try unpack("hostile.tar")
        let reasons = Dictionary(uniqueKeysWithValues: result.skipped.map { ($0.path, $0.reason) })
        #expect(reasons["../escape.png"]?.contains("leads out of the archive's folder") == true)
        #expect(reasons["ok/link.png"]?.contains("a link") == true)
        #expect(reasons["ok/hard.png"]?.contains("a link") == true)
        #expect(reasons["ok/fifo.png"]?.contains("FIFO") == true)
        #expect(reasons["ok/anim.gif"]?.contains("GIF") == true)
        #expect(reasons["ok/bad\u{1}name.png"]?.contains("control characters") == true)
        // Nothing was written beside the destination.
        let parent = (destination as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent) == ["out"])
        #expect(!FileManager.default.fileExists(atPath: destination + "/ok/link.png"))
    }

    @Test func macOSResourceForksAndOtherFilesAreNotWritten() throws {
        let (result, destination) = try unpack("flowers.zip")
        #expect(!FileManager.default.fileExists(atPath: destination + "/__MACOSX"))
        #expect(!FileManager.default.fileExists(atPath: destination + "/flowers/.DS_Store"))
        #expect(!FileManager.default.fileExists(atPath: destination + "/flowers/README.txt"))
        #expect(result.ignored >= 3)
    }

    @Test func refusalsNameTheMemberAndTheReason() throws {
        #expect {
            try unpack("ppmd.zip")
        } throws: { error in
            guard case ArchiveError.unsupported(_, let entry, let reason) = error else { return false }
            return entry == "cat/1.png" && reason.contains("compressed by PPMd")
        }
        #expect {
            try unpack("encrypted.zip")
        } throws: { error in
            guard case ArchiveError.unsupported(_, "cat/1.png", let reason) = error else { return false }
            return reason.contains("encrypted")
        }
        #expect {
            try unpack("understated.zip")
        } throws: { error in
            guard case ArchiveError.damagedEntry(_, "cat/1.png", let reason) = error else { return false }
            return reason.contains("more than its declared 100 bytes")
        }
        #expect {
            try unpack("encrypted.7z")
        } throws: { error in
            guard case ArchiveError.unsupported(_, "cat/1.png", let reason) = error else { return false }
            return reason == "encrypted (password-protected)"
        }
        #expect {
            try unpack("ppmd.7z")
        } throws: { error in
            guard case ArchiveError.unsupported(_, "cat/1.png", let reason) = error else { return false }
            return reason.hasPrefix("compressed by PPMd, which synthd does not unpack")
        }
        #expect {
            try unpack("7zip-bcj2.7z")
        } throws: { error in
            guard case ArchiveError.unsupported(_, "pets/cat/1.png", let reason) = error else { return false }
            return reason.hasPrefix("coders of several streams each (") && reason.contains("BCJ2")
        }
        #expect {
            try unpack("arm.7z")
        } throws: { error in
            guard case ArchiveError.unsupported(_, "cat/1.png", let reason) = error else { return false }
            return reason.hasPrefix("a chain of BCJ (ARM) and LZMA2")
        }
        #expect(throws: ArchiveError.noImages(archive: Self.fixtures + "no-images.zip")) { try unpack("no-images.zip") }
        #expect(throws: ArchiveError.noImages(archive: Self.fixtures + "competition.zip", archives: ["train.zip", "test.tar.xz"])) {
            try unpack("competition.zip")
        }
    }

    @Test func limitsStopABombBeforeItFillsTheDisk() throws {
        #expect {
            try unpack("flowers.zip", limits: .init(maxBytes: 200, reserveBytes: 0))
        } throws: { error in
            guard case ArchiveError.overLimit(_, let reason) = error else { return false }
            return reason.contains("max_unpacked_gigabytes")
        }
        #expect {
            try unpack("flowers.zip", limits: .init(maxBytes: 1 << 30, maxFiles: 2, reserveBytes: 0))
        } throws: { error in
            guard case ArchiveError.overLimit(_, let reason) = error else { return false }
            return reason.contains("more than 2 images")
        }
        #expect {
            try unpack("flowers.zip", limits: .init(maxBytes: 1 << 30, reserveBytes: .max / 2))
        } throws: { error in
            guard case ArchiveError.overLimit(_, let reason) = error else { return false }
            return reason.contains("free")
        }
    }

    /// In a spool a group shares, what was unpacked is the group's to remove, whatever the umask.
    @Test func groupWritableFoldersAndFilesInASharedSpool() throws {
        let destination = try scratch() + "/out"
        let reader = try ArchiveFormat.open(path: Self.fixtures + "flowers.zip", named: .zip)
        let old = umask(0o022)
        defer { umask(old) }
        _ = try Unpacker(limits: Self.unlimited, groupWritable: true).unpack(reader, into: destination)
        func mode(_ path: String) throws -> Int { (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! NSNumber).intValue }
        #expect(try mode(destination + "/flowers/daisy") & 0o7777 == 0o2775)
        #expect(try mode(destination + "/flowers/daisy/a.png") & 0o777 == 0o664)
        let plain = try scratch() + "/out"
        _ = try Unpacker(limits: Self.unlimited).unpack(try ArchiveFormat.open(path: Self.fixtures + "flowers.zip", named: .zip), into: plain)
        #expect(try mode(plain + "/flowers/daisy") & 0o777 == 0o755)
    }

    @Test func aStopEndsTheUnpacking() throws {
        let reader = try ArchiveFormat.open(path: Self.fixtures + "flowers.zip", named: .zip)
        #expect(throws: ArchiveError.stopped(archive: Self.fixtures + "flowers.zip")) {
            try Unpacker(limits: Self.unlimited).unpack(reader, into: try scratch() + "/out", shouldStop: { true })
        }
    }

    @Test func namesSayTheFormatAndTheDatasetName() {
        #expect(ArchiveFormat.of(name: "flowers.tar.gz")! == (.tarGzip, "flowers"))
        #expect(ArchiveFormat.of(name: "Pets.TGZ")! == (.tarGzip, "Pets"))
        #expect(ArchiveFormat.of(name: "a.b.zip")! == (.zip, "a.b"))
        #expect(ArchiveFormat.of(name: ".zip") == nil)
        #expect(ArchiveFormat.of(name: "flowers.tar.xz")! == (.tarXZ, "flowers"))
        #expect(ArchiveFormat.of(name: "flowers.tbz2")! == (.tarBZip2, "flowers"))
        #expect(ArchiveFormat.of(name: "Flowers.7Z")! == (.sevenZip, "Flowers"))
        #expect(ArchiveFormat.unreadReason(name: "flowers.7z") == nil)
        #expect(ArchiveFormat.of(name: "flowers.rar") == nil)
        #expect(ArchiveFormat.unreadReason(name: "flowers.rar")?.contains("RAR file") == true)
        #expect(ArchiveFormat.unreadReason(name: "photo.xz")?.contains("xz file") == true)
        #expect(ArchiveFormat.unreadReason(name: "flowers.zip") == nil)
    }

    @Test func aFileNamedLikeAnArchiveThatIsNotOneIsRefused() throws {
        let folder = try scratch()
        try Data("just text".utf8).write(to: URL(fileURLWithPath: folder + "/x.tar.gz"))
        try Data("just text".utf8).write(to: URL(fileURLWithPath: folder + "/x.zip"))
        #expect(throws: ArchiveError.self) { try ArchiveFormat.open(path: folder + "/x.tar.gz", named: .tarGzip) }
        #expect(throws: ArchiveError.self) { try ArchiveFormat.open(path: folder + "/x.zip", named: .zip) }
    }

    /// Mutants per fixture and a seed: 300 and 0 in CI; a longer fuzz by the environment
    /// (SYNTHD_FUZZ_COUNT=20000 SYNTHD_FUZZ_SEED=7: 100,000 mutants in 104 s, none crashed).
    static let fuzz = (count: Int(ProcessInfo.processInfo.environment["SYNTHD_FUZZ_COUNT"] ?? "") ?? 300,
                       seed: Int(ProcessInfo.processInfo.environment["SYNTHD_FUZZ_SEED"] ?? "") ?? 0)

    /// Damaged copies of every fixture: each unpacks or throws its typed error, never traps,
    /// and never writes outside its destination.
    @Test func damagedArchives() throws {
        let names = ["flowers.zip", "zip64.zip", "two-members.tar.gz", "hostile.tar", "cp437.zip", "shoes.tar.xz", "shoes.tar.bz2", "shoes.tar.zst",
                     "bzip2.zip", "lzma.zip", "shoes.7z", "lzma.7z", "deflate.7z", "7zip-default.7z", "7zip-plain-header.7z"]
        let folder = try scratch()
        var outcomes = [0, 0]
        for (index, name) in names.enumerated() {
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.fixtures + name)))
            for (mutant, bytes) in Mutations(of: original, count: Self.fuzz.count, seed: UInt64(index + 1 + 100 * Self.fuzz.seed)).enumerated() {
                let path = folder + "/m\(mutant)-" + name
                try Data(bytes).write(to: URL(fileURLWithPath: path))
                let destination = folder + "/out-\(index)-\(mutant)"
                do {
                    let reader = try ArchiveFormat.open(path: path, named: ArchiveFormat.of(name: name)!.format)
                    _ = try Unpacker(limits: .init(maxBytes: 1 << 24, reserveBytes: 0)).unpack(reader, into: destination)
                    outcomes[0] += 1
                } catch {
                    outcomes[1] += 1
                }
                try? FileManager.default.removeItem(atPath: destination)
                try FileManager.default.removeItem(atPath: path)
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        // Both outcomes happen: the damage reaches the checks, and some survives them
        // (a flipped bit in a name or a comment).
        #expect(outcomes[0] > 0 && outcomes[1] > 0, "\(outcomes)")
    }
}

extension Dictionary {
    func mapKeys<T: Hashable>(_ transform: (Key) -> T) -> [T: Value] {
        Dictionary<T, Value>(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}

/// Where the class folders are after unpacking: folders that wrap them are stepped into, a
/// class is not.
@Suite final class DatasetRootTests {
    let base = NSTemporaryDirectory() + "synthd-root-\(UUID().uuidString)"
    deinit { try? FileManager.default.removeItem(atPath: base) }

    func tree(_ files: [String]) throws -> String {
        let root = base + "/" + UUID().uuidString
        for file in files {
            let path = root + "/" + file
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data([1]).write(to: URL(fileURLWithPath: path))
        }
        return root
    }

    @Test func wrappingFoldersAreSteppedInto() throws {
        let root = try tree(["flowers/flowers/daisy/1.png", "flowers/flowers/rose/2.png", "flowers/flowers/notes.txt"])
        #expect(Unpacker.datasetRoot(in: root) == root + "/flowers/flowers")
    }

    @Test func aSingleClassStaysAClass() throws {
        let root = try tree(["cats/1.png", "cats/2.png"])
        #expect(Unpacker.datasetRoot(in: root) == root)
        let nested = try tree(["cats/2019/1.png"])
        #expect(Unpacker.datasetRoot(in: nested) == nested + "/cats")  // its folder 2019 is then the one class
    }

    @Test func splitsAreLeftForTheLayoutAdvice() throws {
        let root = try tree(["data/train/cat/1.png", "data/test/cat/2.png"])
        #expect(Unpacker.datasetRoot(in: root) == root + "/data")
    }

    /// A download's splits: the training split is the dataset, the others are named to be
    /// left out; anything else at the root, or a training split of loose images, is not a split.
    @Test func theTrainingSplitOfADownloadIsChosen() throws {
        let split = try tree(["Train/cat/1.png", "Train/dog/2.png", "val/cat/3.png", "val/dog/4.png", "test/5.png"])
        let chosen = try #require(Unpacker.chooseTrainingSplit(in: split))
        #expect(chosen.training == split + "/Train" && chosen.others == ["test", "val"])
        #expect(Unpacker.chooseTrainingSplit(in: try tree(["train/cat/1.png", "cats/2.png"])) == nil, "a class among the splits")
        #expect(Unpacker.chooseTrainingSplit(in: try tree(["train/1.png", "test/2.png"])) == nil, "a training split without classes")
        #expect(Unpacker.chooseTrainingSplit(in: try tree(["val/cat/1.png", "test/cat/2.png"])) == nil, "no training split")
        #expect(Unpacker.chooseTrainingSplit(in: try tree(["train/cat/1.png"])) == nil, "one folder is a class, or a wrapper")
    }

    /// Unpacked from a tar as GNU tar writes it: only the training split lands, counted alone.
    @Test func anArchiveOfSplitsUnpacksItsTrainingSplit() throws {
        let source = try tree(["flowers/train/daisy/1.png", "flowers/train/daisy/2.png", "flowers/train/rose/3.png",
                               "flowers/valid/daisy/4.png", "flowers/test/5.png", "flowers/test/6.png"])
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-cf", source + "/flowers.tar", "-C", source, "flowers"]
        try tar.run()
        tar.waitUntilExit()
        let reader = try ArchiveFormat.open(path: source + "/flowers.tar", named: .tar)
        let result = try Unpacker(limits: UnpackerTests.unlimited).unpack(reader, into: source + "/out")
        #expect(result.root == source + "/out/flowers/train")
        #expect(result.files == 3 && result.bytes == 3)
        #expect(result.leftOutSplits.map(\.name) == ["test", "valid"] && result.leftOutSplits.map(\.files) == [2, 1])
    }
}
