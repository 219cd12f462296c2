import Foundation
import Imaging
import Testing

/// synthd reads a dataset folder as PyTorch's ImageFolder does, or says where it does not. The
/// reference is torchvision's own ImageFolder run on the same tree
/// (scripts/make_imagefolder_fixture.py, expected-imagefolder.json): its classes in label order
/// and its samples. Every class and file of the difference must be named by the load's advice.
@Suite struct ImageFolderAgreementTests {
    struct Expected: Decodable {
        let torchvision: String
        let tree: [String]
        let classes: [String]
        let samples: [[Sample]]

        enum Sample: Decodable {
            case path(String), label(Int)
            init(from decoder: any Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let label = try? value.decode(Int.self) { self = .label(label) } else { self = .path(try value.decode(String.self)) }
            }
        }

        var paths: [(path: String, label: Int)] {
            samples.compactMap { pair in
                guard case .path(let path)? = pair.first, case .label(let label)? = pair.last else { return nil }
                return (path, label)
            }
        }
    }

    @Test func theScanAgreesWithTorchvisionOrSaysWhereNot() throws {
        let fixture = Bundle.module.resourcePath! + "/Fixtures/expected-imagefolder.json"
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: fixture)))
        let root = NSTemporaryDirectory() + "synthd-agreement-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        for relative in expected.tree {
            let path = root + "/" + relative
            if relative.hasSuffix("/") {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } else {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                #expect(FileManager.default.createFile(atPath: path, contents: Data()))
            }
        }
        let scan = try ImageFolder.scan(root)
        let advice = LayoutAdvice.of(scan).joined(separator: "\n")
        let pyTorch = expected.paths
        #expect(pyTorch.count >= 15 && expected.classes.count >= 10, "the fixture as written")

        // Classes: those with images in both, in the same label order; PyTorch's others named.
        let pyTorchClasses = Set(pyTorch.map { expected.classes[$0.label] })
        let synthdClasses = scan.classNames
        let shared = expected.classes.filter { pyTorchClasses.contains($0) && synthdClasses.contains($0) }
        #expect(synthdClasses.filter { shared.contains($0) } == shared, "the same order, so the same labels: \(synthdClasses) against \(expected.classes)")
        #expect(Set(synthdClasses).isSubset(of: pyTorchClasses), "classes synthd reads that PyTorch has no image of: \(synthdClasses)")
        for name in pyTorchClasses.subtracting(synthdClasses).sorted() {
            #expect(advice.contains(name), "PyTorch's class \(name) is not synthd's and the advice does not say so:\n\(advice)")
        }

        // Files: each one PyTorch reads is read by synthd, or named (itself or its top folder).
        let synthdFiles = Set(scan.files.values.joined().map { String($0.dropFirst(root.count + 1)) })
        let onlyPyTorch = pyTorch.map(\.path).filter { !synthdFiles.contains($0) }
        #expect(!onlyPyTorch.isEmpty, "the fixture has files only PyTorch reads")
        for path in onlyPyTorch {
            let top = String(path.prefix { $0 != "/" })
            let name = (path as NSString).lastPathComponent
            let hidden = name.hasPrefix(".") && advice.contains("begin with a dot")
            // A hidden folder below a class folder: named by its path.
            let hiddenFolder = path.split(separator: "/").dropLast().enumerated().contains { index, part in
                part.hasPrefix(".") && index > 0
                    && advice.contains(root + "/" + path.split(separator: "/").prefix(index + 1).joined(separator: "/"))
            }
            #expect(advice.contains(top) && !synthdClasses.contains(top) || hidden || hiddenFolder,
                    "\(path): PyTorch reads it, synthd does not, and the advice does not say so:\n\(advice)")
        }
        let hiddenCount = onlyPyTorch.filter { (($0 as NSString).lastPathComponent).hasPrefix(".") && synthdClasses.contains(String($0.prefix { $0 != "/" })) }.count
        #expect(onlyPyTorch.contains("cat/.thumbnails/1.png"), "\(onlyPyTorch)")
        #expect(advice.contains("\(hiddenCount) files in the class folders have names that begin with a dot"), "\(advice)")
        // And each one synthd reads that PyTorch does not is named.
        let pyTorchFiles = Set(pyTorch.map(\.path))
        let onlySynthd = synthdFiles.filter { !pyTorchFiles.contains($0) }.sorted()
        #expect(onlySynthd == ["dog/5.pnm"], "\(onlySynthd)")
        for path in onlySynthd {
            #expect(advice.contains(root + "/" + path), "\(path): synthd reads it, PyTorch does not, and the advice does not say so:\n\(advice)")
        }
    }
}
