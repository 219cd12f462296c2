/// A count with its noun as the log and the CLI say it: "1 class", "10 classes", "1 image",
/// "300 images", "-1 image". The plural adds "es" after s, sh, ch and x, else "s"; `plural`
/// for a noun that takes neither.
public func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    let many = plural ?? noun + (["s", "sh", "ch", "x"].contains { noun.hasSuffix($0) } ? "es" : "s")
    return "\(count) " + (abs(count) == 1 ? noun : many)
}
