import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Layouts that read as an ImageFolder but are most likely not what their user meant, found
/// from a scan alone. synthd reads them as PyTorch's ImageFolder would (so the same folder
/// means the same thing in both), and says what it read and what to do instead, in the CLI's
/// output, the daemon's log and `synthd status`:
/// - images directly in the dataset folder, beside or instead of class folders: not read;
/// - split folders read as classes: class folders named as a download's splits (`train`,
///   `test`, `val`, ...) that hold folders of the same names (`train/cat`, `test/cat`), the
///   real classes one level down (folders of the same names under real classes, `boot/2019`
///   and `sandal/2019`, are a layout synthd reads as meant and get no advice);
/// - one class folder whose images all lie in folders below it: the dataset is one level down;
/// - folders synthd leaves out that PyTorch's ImageFolder takes as classes (hidden ones such as
///   Jupyter's `.ipynb_checkpoints`, and macOS's `__MACOSX`): the user's classifier would see
///   other classes, and other labels, than synthd's outputs have;
/// - files in class folders whose names begin with a dot and end as an image's: synthd leaves
///   them out, PyTorch reads them, and macOS's resource forks (`._name.jpg`) make it fail;
///   likewise hidden folders below a class folder, whose images PyTorch reads;
/// - images synthd reads under a name PyTorch's ImageFolder passes over (`.pnm`).
public enum LayoutAdvice {
    /// How many names a message gives before counting the rest.
    static let namesListed = 5

    /// The advice on a scan, one message a finding; empty when the layout looks intended.
    public static func of(_ scan: ImageFolder.Scan) -> [String] {
        [looseImages(scan), nestedClasses(scan), foldersPyTorchReadsAsClasses(scan), hiddenImages(scan), hiddenFoldersInClasses(scan),
         namesPyTorchPassesOver(scan)]
            .compactMap { $0 }
    }

    /// Images directly in the dataset folder: no class, so not read.
    public static func looseImages(_ scan: ImageFolder.Scan) -> String? {
        let loose = scan.ignored.filter { path in
            let (folder, name) = split(path)
            // Both name tests pass over hidden and partial names.
            return folder == scan.root && (ImageFolder.isImageName(name) || ImageFolder.unreadFormat(name) != nil)
                && ImageFolder.fileKind(path) == S_IFREG
        }
        guard let first = loose.first else { return nil }
        let count = loose.count == 1 ? "1 image lies" : "\(loose.count) images lie"
        return "\(count) directly in \(scan.root), outside any class folder, and "
            + (loose.count == 1 ? "is" : "are") + " not read (\(split(first).name)"
            + (loose.count > 1 ? ", ..." : "") + "): a dataset is \(scan.root)/<class>/<images>; "
            + "move each image into a folder named for its class"
    }

    /// Split folders read as classes, or a single class whose images all lie in folders below
    /// it (the dataset one level down).
    static func nestedClasses(_ scan: ImageFolder.Scan) -> String? {
        let classes = scan.classNames  // a sort of the scan's keys: taken once
        var subfolders: [String: Set<String>] = [:]  // class -> first-level folders, for classes with no image of their own
        for name in classes {
            let prefix = scan.root + "/" + name + "/"
            var folders: Set<String> = []
            var ownImage = false
            for path in scan.files[name]! {
                let below = path.dropFirst(prefix.count)
                guard let slash = below.firstIndex(of: "/") else { ownImage = true; break }
                folders.insert(String(below[..<slash]))
            }
            if !ownImage { subfolders[name] = folders }
        }
        if classes.count == 1, let folders = subfolders[classes[0]], folders.count >= 2 {
            let inner = scan.root + "/" + classes[0]
            return "one class, '\(classes[0])', whose images all lie in folders below it (\(listed(folders.sorted()))): "
                + "read as one class, as PyTorch's ImageFolder would; if those folders are the classes, "
                + "the dataset is \(inner) (`synthd train \(inner)`, or move it into the spool as a dataset of its own)"
        }
        // Names that two or more nested classes share, with a class named as a split among
        // them: a split layout's class folders.
        var seen: [String: Int] = [:]
        for folders in subfolders.values { for folder in folders { seen[folder, default: 0] += 1 } }
        let shared = seen.filter { $0.value >= 2 }.keys.sorted()
        let splits = subfolders.filter { !$0.value.isDisjoint(with: shared) }.keys.sorted()
        guard shared.count >= 2, splits.count >= 2, splits.contains(where: { splitNames.contains($0.lowercased()) }) else { return nil }
        return "class folders \(listed(splits)) each hold folders of the same names (\(listed(shared))): "
            + "they look like a download's splits, with the classes one level down; synthd reads \(listed(splits)) "
            + "as the classes, as PyTorch's ImageFolder would. To train the classes inside, make each split a "
            + "dataset of its own (\(scan.root)/\(splits[0]) as a dataset folder)"
    }

    /// Folders beside the classes that synthd passes over (`ImageFolder.isVisible`) and
    /// PyTorch's ImageFolder does not: it takes every folder as a class, hidden ones included,
    /// so `.ipynb_checkpoints` becomes its class 0 (and, holding no image, makes it refuse the
    /// tree unless told allow_empty=True), and `__MACOSX` a class of resource forks (`._x.png`)
    /// it fails to open. Either way its labels are not synthd's.
    static func foldersPyTorchReadsAsClasses(_ scan: ImageFolder.Scan) -> String? {
        let folders = scan.ignored.filter { path in
            let name = split(path).name
            return split(path).folder == scan.root && (name.hasPrefix(".") || name == "__MACOSX")
                && !name.hasPrefix(".synthd") && ImageFolder.fileKind(path) == S_IFDIR
        }.map { split($0).name }.sorted()
        guard !folders.isEmpty else { return nil }
        let (them, are) = folders.count == 1 ? ("it", "is") : ("them", "are")
        return "\(listed(folders)) in \(scan.root) \(are) left out by synthd, but PyTorch's ImageFolder takes every folder "
            + "as a class, hidden ones included: your classifier would see \(folders.count == 1 ? "a class" : "classes") that "
            + "synthd's outputs have not, and every class after \(them) with another label. Delete \(them) from the dataset "
            + "(rm -r \(folders.map { scan.root + "/" + $0 }.joined(separator: " ")))"
    }

    /// The extensions PyTorch's ImageFolder reads (torchvision's `IMG_EXTENSIONS`).
    static let pyTorchExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"]

    /// Whether the name ends in one of `pyTorchExtensions`, in any case.
    static func hasPyTorchExtension(_ name: String) -> Bool {
        guard let dot = name.lastIndex(of: ".") else { return false }
        return pyTorchExtensions.contains(name[name.index(after: dot)...].lowercased())
    }

    /// Hidden files with an image's name inside the class folders: synthd passes over every
    /// name that begins with a dot; torchvision's ImageFolder checks the extension only, so it
    /// reads them, and a Mac's copy onto a USB or network drive leaves a `._name` resource fork
    /// beside every file, which Pillow cannot open: the user's training stops at the first.
    static func hiddenImages(_ scan: ImageFolder.Scan) -> String? {
        let hidden = scan.ignored.filter { path in
            let (folder, name) = split(path)
            return folder != scan.root && name.hasPrefix(".") && name.dropFirst().contains(".") && hasPyTorchExtension(name)
        }
        guard let first = hidden.first else { return nil }
        let forks = hidden.filter { split($0).name.hasPrefix("._") }.count
        let count = hidden.count == 1 ? "1 file" : "\(hidden.count) files"
        let named = hidden.count == 1 ? "has a name that begins with a dot and ends" : "have names that begin with a dot and end"
        var text = "\(count) in the class folders \(named) as an image's (\(first)): synthd leaves hidden files out, but "
            + "PyTorch's ImageFolder reads them"
        if forks > 0 {
            let which = forks == hidden.count ? (forks == 1 ? "it is" : "they are") : forks == 1 ? "1 is" : "\(forks) are"
            text += "; \(which) \(forks == 1 ? "a macOS resource fork" : "macOS's resource forks") (._name, left by a Mac's copy "
                + "onto a USB or network drive), not \(forks == 1 ? "an image" : "images"), and PyTorch stops at "
                + (forks == 1 ? "it. Delete it" : "the first. Delete them") + ": find \(scan.root) -name '._*' -delete"
        }
        return text
    }

    /// Hidden folders below a class folder that hold images (a viewer's `.thumbnails`): synthd
    /// passes over them, torchvision's ImageFolder walks into every folder and reads the images
    /// in them as the class's. (One without images, a notebook's `.ipynb_checkpoints`, changes
    /// nothing for PyTorch and is not said.)
    static func hiddenFoldersInClasses(_ scan: ImageFolder.Scan) -> String? {
        let folders = scan.ignored.filter { path in
            let (folder, name) = split(path)
            // `._` names are macOS's resource forks, files: a dataset copied from a Mac has one
            // beside every image, and a stat each would be most of this advice's time.
            return folder != scan.root && name.hasPrefix(".") && !name.hasPrefix("._") && ImageFolder.fileKind(path) == S_IFDIR
                && holdsPyTorchImages(path)
        }
        guard !folders.isEmpty else { return nil }
        let (count, them) = folders.count == 1 ? ("1 hidden folder", "it") : ("\(folders.count) hidden folders", "them")
        return "\(count) below class folders (\(listed(folders))): synthd passes over \(them), but PyTorch's ImageFolder "
            + "reads the images in \(them) as the class's. If they are not the class's images, delete \(them) "
            + "(rm -r \(folders.prefix(namesListed).joined(separator: " "))\(folders.count > namesListed ? " ..." : ""))"
    }

    /// Whether torchvision's walk would find an image in `folder`: a name with one of its
    /// extensions, at any depth (links to folders not followed here). A listing, no file
    /// opened; stops at the first image, or after 10,000 entries without one (a `.git` or a
    /// cache below a class folder is not said on a guess).
    static func holdsPyTorchImages(_ folder: String) -> Bool {
        guard let entries = FileManager.default.enumerator(atPath: folder) else { return false }
        var seen = 0
        while let entry = entries.nextObject() as? String {
            seen += 1
            if seen > 10_000 { return false }
            if hasPyTorchExtension(split(entry).name) { return true }
        }
        return false
    }

    /// Images synthd reads whose extension PyTorch's ImageFolder does not list: `.pnm`, the
    /// common name of PGM and PPM files (Netpbm's tools write it), which torchvision reads only
    /// as `.pgm` or `.ppm`. The model would learn from images the user's classifier never sees.
    static func namesPyTorchPassesOver(_ scan: ImageFolder.Scan) -> String? {
        let passed = scan.classNames.flatMap { scan.files[$0]! }.filter { path in
            !hasPyTorchExtension(split(path).name)
        }
        guard let first = passed.first else { return nil }
        let count = passed.count == 1 ? "1 image is" : "\(passed.count) images are"
        return "\(count) named .pnm (\(first)): synthd reads \(passed.count == 1 ? "it" : "them"), but PyTorch's "
            + "ImageFolder passes over that extension, so your classifier would not see \(passed.count == 1 ? "it" : "them"). "
            + "Rename each to .pgm (grey) or .ppm (colour), as its content is"
    }

    /// How datasets name their splits (PyTorch's and Kaggle's downloads, Keras's examples).
    public static let splitNames: Set<String> = ["train", "training", "test", "testing", "val", "valid", "validation", "dev", "holdout", "eval"]

    /// "a", "a and b", "a, b and c", up to `namesListed` names, then "a, b, c, d, e and 3 more".
    static func listed(_ names: [String]) -> String {
        if names.count > namesListed { return names.prefix(namesListed).joined(separator: ", ") + " and \(names.count - namesListed) more" }
        guard let last = names.last, names.count > 1 else { return names.first ?? "" }
        return names.dropLast().joined(separator: ", ") + " and " + last
    }

    static func split(_ path: String) -> (folder: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}
