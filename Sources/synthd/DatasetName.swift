import Foundation

/// A dataset named on the command line (`synthd wait`, `synthd status`): the name of its folder
/// directly under the spool. Shell completion gives `shoes/`, and a path (`spool/shoes`) is what
/// a user has at hand: both name `shoes`. A class folder (`shoes/boot`), `.`, `..` or a folder
/// outside the spool is refused with what to give instead: `synthd wait` waited for such a name
/// for ever, as a dataset "not yet seen by the daemon".
enum DatasetName {
    /// `spool`: where datasets are; nil when unknown (`synthd status --state`), where a path
    /// is taken by its last component.
    static func of(_ argument: String, spool: String?) throws -> String {
        var text = argument
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        let inSpool = spool.map { " (\($0))" } ?? ""
        guard !["", ".", "..", "/"].contains(text) else {
            throw CommandFailure("'\(argument)' is not a dataset's name: give the name of a dataset folder in the spool\(inSpool)")
        }
        guard text.contains("/") else { return text }
        guard let spool else { return (text as NSString).lastPathComponent }
        let root = DatasetPath.resolved(spool)
        // As given (from here), then, for a relative one, below the spool (`shoes/boot`).
        let candidates = [DatasetPath.resolved(text)] + (text.hasPrefix("/") ? [] : [DatasetPath.resolved(spool + "/" + text)])
        for path in candidates where path.hasPrefix(root + "/") {
            let parts = path.dropFirst(root.count + 1).split(separator: "/").map(String.init)
            if parts.count == 1 { return parts[0] }
            throw CommandFailure("\(argument) is a folder inside the dataset \(parts[0]) (a class?): give the dataset's name, \(parts[0])")
        }
        throw CommandFailure("\(argument) is not a folder in the spool\(inSpool): give the name of a dataset folder in it")
    }
}
