/// An instant on a clock that setting the wall clock does not move (`ContinuousClock`:
/// CLOCK_BOOTTIME on Linux). Every interval synthd times (settling, training budgets and
/// slices, checkpoints, the main loop's timers, the watchdog, progress rates) is measured on
/// it; `Date` is for what is shown or kept across restarts. An NTP step at boot, `date -s` or
/// a resumed VM moves the wall clock by hours: measured on it, two hours back stopped the
/// watchdog's pings and every job for two hours, and a step forward ended a training early.
public typealias Moment = ContinuousClock.Instant

extension ContinuousClock.Instant {
    /// Seconds from this moment to `later` (negative when `later` is earlier).
    public func seconds(to later: Self) -> Double { duration(to: later) / .seconds(1) }

    /// Seconds since this moment.
    public var secondsAgo: Double { seconds(to: .now) }

    /// This moment moved by `seconds` (earlier when negative).
    public func adding(seconds: Double) -> Self { advanced(by: .seconds(seconds)) }
}
