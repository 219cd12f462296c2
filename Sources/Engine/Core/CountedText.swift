/// A count with its noun as the log and the CLI say it: "1 class", "10 classes", "1 image",
/// "300 images". `plural` for the nouns that do not just take an s.
public func counted(_ count: Int, _ noun: String, plural: String? = nil) -> String {
    "\(count) " + (abs(count) == 1 ? noun : plural ?? noun + "s")
}
