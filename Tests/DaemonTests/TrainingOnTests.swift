@testable import Daemon
import Testing

/// `TrainingOn`: only a dataset's own `minutes` beyond what its model has had starts a round.
@Suite struct TrainingOnTests {
    func runtime(trainedMinutes: Double?, trained: Bool = true) -> DatasetRuntime {
        var runtime = DatasetRuntime()
        runtime.trainedFingerprint = trained ? "f" : nil
        runtime.trainedMinutes = trainedMinutes
        return runtime
    }

    func settings(minutes: Double) -> Configuration {
        var settings = Configuration()
        settings.trainingMinutes = minutes
        return settings
    }

    @Test func onlyTheDatasetsOwnMinutesBeyondWhatTheModelHadCount() {
        let base = Configuration()  // 20 minutes
        #expect(TrainingOn.asked(by: settings(minutes: 60), over: base, of: runtime(trainedMinutes: 20)) == TrainingOn(asked: 60, had: 20))
        #expect(TrainingOn.asked(by: settings(minutes: 60), over: base, of: runtime(trainedMinutes: 60)) == nil, "had them")
        #expect(TrainingOn.asked(by: settings(minutes: 30), over: base, of: runtime(trainedMinutes: 60)) == nil, "lowered: nothing undone")
        #expect(TrainingOn.asked(by: settings(minutes: 60), over: base, of: runtime(trainedMinutes: 20, trained: false)) == nil,
                "no completed training: the one under way takes the minutes asked")
        // A model trained before synthd kept its minutes counts as trained for the daemon's.
        #expect(TrainingOn.asked(by: settings(minutes: 45), over: base, of: runtime(trainedMinutes: nil)) == TrainingOn(asked: 45, had: 20))
        // The daemon's own minutes are a new dataset's budget, whatever the model had.
        #expect(TrainingOn.asked(by: base, over: base, of: runtime(trainedMinutes: 5)) == nil)
        #expect(TrainingOn.asked(by: settings(minutes: 20.01), over: base, of: runtime(trainedMinutes: 20)) == nil, "under a second more")
        #expect(TrainingOn(asked: 60, had: 20).description == "synthd.toml asks for 1h00m of training, the model has had 20m00s: training on for 40m00s")
    }
}
