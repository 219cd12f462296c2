@testable import Daemon
import Engine
@testable import GAN
import Testing

@Suite struct TrainingEstimateTests {
    static func progress(elapsed: Double, remaining: Double) -> TrainingProgress {
        TrainingProgress(step: 2310, runSteps: 1900, elapsed: elapsed, fraction: 0, remaining: remaining, imagesPerSecond: 640.4,
                         report: StepReport(discriminatorLoss: 1.7414, generatorLoss: 0.7131))
    }

    /// A job of 1,200 s whose earlier slices took 400: this slice's 200 s leave the round's own
    /// estimate of what is left, whichever of the minutes and the passes ends it.
    @Test func spansTheJobsSlicesAndEndsWhereTheRoundEnds() {
        let resumed = TrainingEstimate(budget: 1200, remainingAtStart: 800, progress: Self.progress(elapsed: 200, remaining: 600))
        #expect(resumed.fraction == 0.5 && resumed.secondsLeft == 600)
        // Capped by its passes: 40 s left of a budget that had 1,190.
        let capped = TrainingEstimate(budget: 1200, remainingAtStart: 1200, progress: Self.progress(elapsed: 10, remaining: 40))
        #expect(capped.fraction == 0.2 && capped.secondsLeft == 40)
        let done = TrainingEstimate(budget: 0, remainingAtStart: 0, progress: Self.progress(elapsed: 0, remaining: -1))
        #expect(done.fraction == 1 && done.secondsLeft == 0)
        #expect(resumed.line(Self.progress(elapsed: 200, remaining: 600))
                == "training 50%: step 2310  D 1.741  G 0.713  640 img/s, ETA 10m00s")
        // Adaptive augmentation's p and the mode-seeking term's pair spread come before the speed.
        var both = Self.progress(elapsed: 200, remaining: 600)
        both.report.augmentationProbability = 0.43
        both.report.pairSpread = 0.4118
        #expect(resumed.line(both) == "training 50%: step 2310  D 1.741  G 0.713  augment p 0.43  pair spread 0.412  640 img/s, ETA 10m00s")
    }

    @Test func durationsReadAsProgressLinesShowThem() {
        #expect(durationText(42.4) == "42s")
        #expect(durationText(782) == "13m02s")
        #expect(durationText(7500) == "2h05m")
        #expect(durationText(-5) == "0s")
        #expect(durationText(.nan) == "?" && durationText(.infinity) == "?")
        #expect(durationText(1e300) == "277777777h46m", "a damaged record's ETA is clamped, not a trap")
    }

    @Test func countsTakeTheirNounsNumber() {
        #expect(counted(1, "class") == "1 class")
        #expect(counted(10, "class") == "10 classes" && counted(2, "new class") == "2 new classes")
        #expect(counted(3, "batch") == "3 batches" && counted(2, "mouse", plural: "mice") == "2 mice")
        #expect(counted(0, "image") == "0 images")
        #expect(counted(-1, "image") == "-1 image" && counted(-3, "image") == "-3 images")
    }
}
