/// Seconds `body` took on the monotonic clock: the payoff measurements' timer
/// (`BFloat16Payoff`, `WinogradPayoff`).
func secondsTaken(_ body: () -> Void) -> Double {
    let elapsed = ContinuousClock().measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}
