import GAN
import Imaging

/// A command that cannot do what was asked because of the data or folders it was given, not
/// its arguments' form: ArgumentParser prints the message as "Error: ..." and exits 1 without
/// the usage text a `ValidationError` adds (which buries the one line that matters).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension CommandFailure {
    /// A `--state` mixed up: the model there shares no class with the dataset. Generating would
    /// fill OUT/<dataset> with class folders the dataset lacks, under its name; training would
    /// turn the model into one of both datasets. nil when the model shares a class, or there is
    /// no model or no listing to compare.
    static func modelOfAnotherDataset(_ dataset: String, state: String, modelClasses: [String]) -> CommandFailure? {
        guard !modelClasses.isEmpty, let scan = try? ImageFolder.scan(dataset), !scan.classNames.isEmpty,
              Set(scan.classNames).isDisjoint(with: modelClasses) else { return nil }
        return CommandFailure("\(dataset) has none of the classes of the model in \(state) (\(listedNames(modelClasses))); "
                              + "its own are \(listedNames(scan.classNames)): is --state the model of another dataset?")
    }
}
