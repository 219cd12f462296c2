/// A span of time as progress lines and `synthd status` show it: "42s", "13m02s", "2h05m";
/// "?" when it is not known (an estimate without a rate yet). A damaged record's absurd span
/// is clamped rather than trapping on the conversion to an integer.
public func durationText(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(min(max(seconds, 0), 1e12).rounded())
    if s >= 3600 { return "\(s / 3600)h" + twoDigits(s % 3600 / 60) + "m" }
    if s >= 60 { return "\(s / 60)m" + twoDigits(s % 60) + "s" }
    return "\(s)s"
}

private func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
