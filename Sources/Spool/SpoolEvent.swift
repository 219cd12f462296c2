/// A change in the spool, reduced to what scheduling needs: which dataset, and what happened.
public enum SpoolEvent: Equatable, Sendable {
    /// Something arrived, changed or left inside `spool/<dataset>`.
    case changed(dataset: String)
    /// A `.ready` file appeared in `spool/<dataset>`: it is complete, no need to wait.
    case ready(dataset: String)
    /// `spool/<dataset>` itself was deleted or moved away.
    case removed(dataset: String)
    /// Events may have been lost (queue overflow, a watch that could not be added): rescan
    /// everything. The reason says why, and what to do about it when something can be done.
    case rescan(reason: String)
    /// Some folders could not be watched (the kernel's limit on inotify watches): rescan now,
    /// and keep scanning periodically, since changes there send no events.
    case watchLimit(reason: String)
    /// The spool folder itself was removed or moved away: nothing is watched until a folder is
    /// there again, which then comes as a `rescan`. The reason says so.
    case spoolMissing(reason: String)
    /// A file arrived directly in the spool (`shoes.zip`): not a dataset, but what a user who
    /// dropped it expects to hear about.
    case strayFile(name: String)
}

/// Maps a path under the spool to the dataset it belongs to: its first component.
public func datasetName(of path: String, spool: String) -> String? {
    let root = spool.hasSuffix("/") ? spool : spool + "/"
    guard path.hasPrefix(root) else { return nil }
    let relative = path.dropFirst(root.count)
    guard let first = relative.split(separator: "/").first, !first.isEmpty else { return nil }
    return String(first)
}
