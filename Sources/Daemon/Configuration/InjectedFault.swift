/// A fault that the fault-injection tests ask a daemon to have, through the environment
/// (`SYNTHD_INJECT_FAULT`), never through the configuration file: what a real fault does that
/// a test cannot bring about from outside the process.
public enum InjectedFault: String, Sendable, CaseIterable {
    /// A training job stops making progress after its first report and ignores every request
    /// to stop, as a job stuck on a hung file system or GPU does.
    case trainingHangs = "training-hangs"

    public static let environmentVariable = "SYNTHD_INJECT_FAULT"
}
