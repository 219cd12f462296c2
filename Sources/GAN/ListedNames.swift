/// Items of a line a person reads (a log line, `synthd status`): the first `limit` joined,
/// then how many more. A model of 1,000 classes logged a line of 1,000 names at every
/// generation; `synthd status --json` and the generation's report keep every item. The limit
/// is the one rejected files are listed up to (`RejectedFile.listedInText`).
public func listedNames(_ items: [String], limit: Int = RejectedFile.listedInText, noun: String = "classes") -> String {
    let shown = items.prefix(limit).joined(separator: ", ")
    return items.count > limit ? "\(shown) and \(items.count - limit) more \(noun)" : shown
}
