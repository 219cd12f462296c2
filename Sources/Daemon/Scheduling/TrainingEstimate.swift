import Engine
import GAN

/// How far a training job is and when its training ends, across the slices and restarts its
/// budget is spread over: what `synthd status` shows and the log says every minute.
///
/// The end is the round's own estimate (`TrainingProgress.remaining`), not the minutes left:
/// a model without augmentation also stops after `max_epochs` passes, which on a GPU comes
/// minutes before its budget does, and an ETA from the minutes alone said 5 minutes to a round
/// that had 40 seconds to go.
struct TrainingEstimate: Equatable {
    /// The job's training done, 0...1.
    let fraction: Double
    let secondsLeft: Double

    /// `budget`: the job's seconds in all; `remainingAtStart`: what was left of them when this
    /// slice began (earlier slices and runs took the rest).
    init(budget: Double, remainingAtStart: Double, progress: TrainingProgress) {
        let done = max(0, budget - remainingAtStart) + progress.elapsed
        secondsLeft = max(0, progress.remaining)
        fraction = done + secondsLeft > 0 ? min(1, done / (done + secondsLeft)) : 1
    }

    /// The log's line: "training 35%: step 2310  D 1.741  G 0.713  640 img/s, ETA 13m02s".
    func line(_ progress: TrainingProgress) -> String {
        "training \(Int((fraction * 100).rounded(.down)))%: \(progress.summary), ETA \(durationText(secondsLeft))"
    }
}
