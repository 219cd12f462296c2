/// Another `synthd run` (with a state folder of its own) writes into this output folder.
public struct OutputFolderInUse: Error, CustomStringConvertible {
    /// The lock file each daemon holds in its output folder (hidden: readers of the tree pass
    /// over it, as PyTorch's ImageFolder passes over files beside the class folders).
    public static let lockName = ".synthd.lock"

    public let output: String
    /// What the other daemon wrote in the lock file (pid, state folder).
    public let holder: String

    public var description: String {
        "\(output) is the output folder of another synthd (\(holder.isEmpty ? "another process" : holder)): two daemons "
            + "must not share one (each would sweep the other's generations in progress); give this one another [paths] output, "
            + "or join them in a cluster ([cluster] database)"
    }
}
