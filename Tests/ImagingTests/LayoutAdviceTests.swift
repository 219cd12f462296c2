import Foundation
import Imaging
import Testing

/// Folders that read as an ImageFolder but not as their user meant are read as PyTorch would
/// read them, and said: images outside any class folder, a download's split folders, a
/// dataset one level too high.
@Suite struct LayoutAdviceTests {
    /// A folder with empty files at `relatives` (the scan decides by name, not by content).
    func folder(_ relatives: [String]) throws -> String {
        let root = NSTemporaryDirectory() + "synthd-layout-\(UUID().uuidString)"
        for relative in relatives {
            let path = root + "/" + relative
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])))
        }
        return root
    }

    @Test func anIntendedLayoutGetsNoAdvice() throws {
        // Classes with their own images and folders of dates below them; a README beside them.
        let root = try folder(["cat/1.png", "cat/2019/2.png", "dog/2019/3.jpg", "dog/4.png", "README.md", ".DS_Store"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(root)) == [])
        // Two classes whose images all lie in folders of their own, different names: no split.
        let sorted = try folder(["cat/a/1.png", "dog/b/2.png"])
        defer { try? FileManager.default.removeItem(atPath: sorted) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(sorted)) == [])
        // Classes kept in yearly folders of the same names: read as meant, no advice.
        let yearly = try folder(["boot/2019/1.png", "boot/2020/2.png", "sandal/2019/3.png", "sandal/2020/4.png"])
        defer { try? FileManager.default.removeItem(atPath: yearly) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(yearly)) == [])
        // One class, its images in one folder below it: nothing to tell apart.
        let single = try folder(["cat/2019/1.png"])
        defer { try? FileManager.default.removeItem(atPath: single) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(single)) == [])
    }

    @Test func imagesOutsideAnyClassFolderAreNamed() throws {
        let root = try folder(["b.png", "a.jpg", "notes.txt", ".hidden.png", "cat/1.png"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let advice = LayoutAdvice.of(try ImageFolder.scan(root))
        #expect(advice == ["2 images lie directly in \(root), outside any class folder, and are not read (a.jpg, ...): "
            + "a dataset is \(root)/<class>/<images>; move each image into a folder named for its class"])
        let tiff = try folder(["x.tiff", "y.bmp"])
        defer { try? FileManager.default.removeItem(atPath: tiff) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(tiff)).first?.hasPrefix("2 images lie directly in \(tiff), outside any class folder") == true,
                "images of formats not read count too: a flat folder of them is not 'no images yet'")
        let one = try folder(["x.png"])
        defer { try? FileManager.default.removeItem(atPath: one) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(one)).first?.hasPrefix("1 image lies directly in \(one), outside any class folder, and is not read (x.png):") == true)
    }

    /// Images of formats synthd does not read (GIF, HEIC, ...) are skipped with their reason,
    /// as a corrupt image is, not passed over like a README; TIFF is read.
    @Test func imagesOfFormatsNotReadAreSkippedWithTheirReason() throws {
        let root = try folder(["cat/1.png", "cat/2.HEIC", "cat/3.gif", "cat/4.webp", "cat/6.bmp", "cat/7.TIFF", "cat/notes.txt", "cat/.5.tiff"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scan = try ImageFolder.scan(root)
        #expect(scan.files["cat"] == [root + "/cat/1.png", root + "/cat/4.webp", root + "/cat/6.bmp", root + "/cat/7.TIFF"])
        #expect(scan.skipped.map(\.path) == [root + "/cat/2.HEIC", root + "/cat/3.gif"])
        #expect(scan.skipped.first?.reason == "a HEIC image, not read: synthd reads PNG, JPEG, WebP, BMP, PGM/PPM and TIFF (convert it, e.g. with "
            + "ImageMagick's `mogrify -format png *.HEIC`, and remove the original)")
        #expect(scan.ignored.contains(root + "/cat/notes.txt") && scan.ignored.contains(root + "/cat/.5.tiff"))
    }

    @Test func splitFoldersReadAsClassesAreSaid() throws {
        let root = try folder(["train/cat/1.png", "train/dog/2.png", "test/cat/3.png", "test/dog/4.png", "val/cat/5.png", "val/dog/6.png"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scan = try ImageFolder.scan(root)
        #expect(scan.classNames == ["test", "train", "val"], "read as PyTorch's ImageFolder reads it")
        #expect(LayoutAdvice.of(scan) == ["class folders test, train and val each hold folders of the same names (cat and dog): "
            + "they look like a download's splits, with the classes one level down; synthd reads test, train and val as the "
            + "classes, as PyTorch's ImageFolder would. To train the classes inside, make each split a dataset of its own "
            + "(\(root)/test as a dataset folder)"])
        // A class with an image of its own is a class, whatever lies below it.
        #expect(FileManager.default.createFile(atPath: root + "/val/7.png", contents: Data([1])))
        #expect(LayoutAdvice.of(try ImageFolder.scan(root)).first?.hasPrefix("class folders test and train each hold") == true)
    }

    @Test func aDatasetOneLevelTooHighIsSaid() throws {
        let root = try folder(["shoes/boot/1.png", "shoes/sandal/2.png", "shoes/sneaker/3.png"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(root)) == ["one class, 'shoes', whose images all lie in folders below it "
            + "(boot, sandal and sneaker): read as one class, as PyTorch's ImageFolder would; if those folders are the classes, "
            + "the dataset is \(root)/shoes (`synthd train \(root)/shoes`, or move it into the spool as a dataset of its own)"])
    }

    /// Folders synthd passes over but PyTorch's ImageFolder takes as classes (checked with
    /// torchvision's: `.ipynb_checkpoints` became class 0 and `__MACOSX` class 1 of a tree whose
    /// one real class was then 2) are named with the fix; hidden files and synthd's own staging
    /// folder are not.
    @Test func foldersPyTorchTakesAsClassesAreSaid() throws {
        let root = try folder(["cat/1.png", ".ipynb_checkpoints/n-checkpoint.ipynb", "__MACOSX/cat/._1.png", ".DS_Store",
                               ".synthd-unpacking.x/cat/2.png"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let advice = LayoutAdvice.of(try ImageFolder.scan(root))
        #expect(advice.count == 1, "\(advice)")
        #expect(advice.first?.hasPrefix(".ipynb_checkpoints and __MACOSX in \(root) are left out by synthd, but PyTorch's "
            + "ImageFolder takes every folder as a class, hidden ones included") == true, "\(advice)")
        #expect(advice.first?.hasSuffix("(rm -r \(root)/.ipynb_checkpoints \(root)/__MACOSX)") == true, "\(advice)")
        let one = try folder(["cat/1.png", ".ipynb_checkpoints/n.ipynb"])
        defer { try? FileManager.default.removeItem(atPath: one) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(one)).first?.contains(".ipynb_checkpoints in \(one) is left out by synthd") == true)
    }

    /// Hidden files with image names in class folders: PyTorch's ImageFolder reads them
    /// (checked with torchvision's, which listed `__MACOSX/a/._1.png` as an image), synthd does
    /// not; macOS's resource forks are named as such, with the command that deletes them.
    @Test func hiddenImagesInClassFoldersAreSaid() throws {
        let root = try folder(["cat/1.png", "cat/._1.png", "cat/2019/._2.JPG", "dog/3.png", "dog/.4.webp", "dog/.notes.txt", ".cover.png"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let all = LayoutAdvice.of(try ImageFolder.scan(root))
        let advice = all.filter { $0.contains("begin with a dot") }
        #expect(advice.count == 1, "\(all)")
        #expect(advice.first?.hasPrefix("3 files in the class folders have names that begin with a dot and end as an image's "
            + "(\(root)/cat/._1.png): synthd leaves hidden files out, but PyTorch's ImageFolder reads them; 2 are macOS's resource "
            + "forks") == true, "\(advice)")
        #expect(advice.first?.hasSuffix("Delete them: find \(root) -name '._*' -delete") == true, "\(advice)")
        let thumbnails = try folder(["cat/1.png", "cat/.thumbnails/1.png", "dog/2.png", "dog/2019/.cache/deep/x.JPG",
                                     "dog/.ipynb_checkpoints/n.ipynb"])
        defer { try? FileManager.default.removeItem(atPath: thumbnails) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(thumbnails)) == ["2 hidden folders below class folders (\(thumbnails)/cat/.thumbnails "
            + "and \(thumbnails)/dog/2019/.cache): synthd passes over them, but PyTorch's ImageFolder reads the images in them as the "
            + "class's. If they are not the class's images, delete them (rm -r \(thumbnails)/cat/.thumbnails \(thumbnails)/dog/2019/.cache)"])
        let plain = try folder(["cat/1.png", "cat/.1.png"])
        defer { try? FileManager.default.removeItem(atPath: plain) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(plain)) == ["1 file in the class folders has a name that begins with a dot and "
            + "ends as an image's (\(plain)/cat/.1.png): synthd leaves hidden files out, but PyTorch's ImageFolder reads them"])
    }

    @Test func longListsAreCounted() throws {
        let classes = (0..<8).map { "c\($0)" }
        let root = try folder(classes.flatMap { ["train/\($0)/1.png", "test/\($0)/1.png"] })
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(LayoutAdvice.of(try ImageFolder.scan(root)).first?.contains("(c0, c1, c2, c3, c4 and 3 more)") == true)
    }
}
