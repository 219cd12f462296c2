/// A command that cannot do what was asked because of the data or folders it was given, not
/// its arguments' form: ArgumentParser prints the message as "Error: ..." and exits 1 without
/// the usage text a `ValidationError` adds (which buries the one line that matters).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
