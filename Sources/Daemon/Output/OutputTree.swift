import Engine
import Foundation
import Imaging
#if canImport(Glibc)
import Glibc
#endif

/// The daemon's output tree, and its policy for replacing outputs when a model improves.
///
///     out/<dataset>  ->  .synthd-generations/<dataset>/<checkpoint>    (a symbolic link)
///     out/.synthd-generations/<dataset>/<checkpoint>/<class>/*.png, manifest.jsonl
///
/// Each model checkpoint that generates gets a generation folder of its own, written in full
/// under a `.partial` name that nobody reads, flushed, renamed, and only then published by
/// replacing the `out/<dataset>` link atomically (rename(2) of a new link over the old one).
/// A reader therefore sees one complete generation at a time: never a half-written one, never
/// old and new images mixed (which would double the synthetic share of every class). Earlier
/// generations are not deleted at once: the newest `keep` stay under `.synthd-generations`, so
/// a reader in the middle of an epoch keeps its files, and a user can go back to one.
public struct OutputTree: Sendable {
    public let root: String
    public let keep: Int

    public init(root: String, keep: Int) {
        self.root = root
        self.keep = max(1, keep)
    }

    public static let generationsFolder = ".synthd-generations"

    public func linkPath(_ dataset: String) -> String { root + "/" + dataset }
    public func generationsPath(_ dataset: String) -> String { root + "/" + Self.generationsFolder + "/" + dataset }
    public func generationPath(_ dataset: String, _ generation: String) -> String { generationsPath(dataset) + "/" + generation }

    /// The new link's name before it is renamed over `linkPath` (`link(_:to:)`); what a kill
    /// in between leaves.
    public func linkTemporaryPath(_ dataset: String) -> String { root + "/" + Self.linkTemporaryName(dataset) }
    static func linkTemporaryName(_ dataset: String) -> String { ".\(dataset).link.tmp" }
    static func isLinkTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.hasSuffix(".link.tmp") }

    /// The generation `out/<dataset>` points to, if it is one of ours.
    public func current(_ dataset: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: linkPath(dataset)) else { return nil }
        let prefix = Self.generationsFolder + "/" + dataset + "/"
        return target.hasPrefix(prefix) ? String(target.dropFirst(prefix.count)) : nil
    }

    /// Whether the dataset's published outputs are there: its link, and the generation folder
    /// the link leads to.
    public func isPublished(_ dataset: String) -> Bool {
        guard let generation = current(dataset) else { return false }
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: generationPath(dataset, generation), isDirectory: &isFolder) && isFolder.boolValue
    }

    /// What `publish` did.
    public struct Publication: Equatable, Sendable {
        /// false: the generation was already the published one.
        public var published: Bool
        /// Where a real folder found at `out/<dataset>` was moved to (see `link(_:to:)`).
        public var movedAside: String?
    }

    /// Makes `generation` the dataset's published outputs, calling `write(folder)` to fill it
    /// unless it is already complete. When `write` throws (disk full, stopped), the partial
    /// folder is removed and nothing visible changes.
    @discardableResult
    public func publish(_ dataset: String, generation: String, write: (_ folder: String) throws -> Void) throws -> Publication {
        if current(dataset) == generation { return Publication(published: false) }
        let final = generationPath(dataset, generation)
        if !FileManager.default.fileExists(atPath: final) {
            let partial = final + ".partial"
            try? FileManager.default.removeItem(atPath: partial)
            try createFolder(partial)
            do {
                // Opened before the writes, so that their write-back errors reach it.
                let flush = try FileSystemFlush(containing: partial)
                try write(partial)
                try flush.flush()
                try rename(partial, final)
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                throw error
            }
        }
        let movedAside = try link(dataset, to: generation)
        prune(dataset)
        return Publication(published: true, movedAside: movedAside)
    }

    /// The name a real folder found in the link's place is kept under, in the dataset's
    /// generations folder; never pruned (it is not synthd's). "earlier-" before 2026-12-07,
    /// when such folders were pruned as generations once `keep` newer ones were published.
    static let movedAsidePrefixes = ["moved-aside-", "earlier-"]
    static func isMovedAside(_ name: String) -> Bool { movedAsidePrefixes.contains(where: name.hasPrefix) }

    /// Points `out/<dataset>` at `generation`: a new link under a temporary name, renamed over
    /// the old one. A real folder in its place (from `synthd generate --out`, or copied there)
    /// is moved into the generations folder first, so nothing is lost: returns where to.
    func link(_ dataset: String, to generation: String) throws -> String? {
        let path = linkPath(dataset)
        var status = stat()
        var movedAside: String?
        if lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR {
            let kept = generationPath(dataset, Self.movedAsidePrefixes[0] + "\(Int(Date().timeIntervalSince1970))")
            try rename(path, kept)
            movedAside = kept
        }
        let temporary = linkTemporaryPath(dataset)
        unlink(temporary)
        guard symlink(Self.generationsFolder + "/" + dataset + "/" + generation, temporary) == 0 else {
            throw FileError.io(path: temporary, operation: "create link", errno: errno)
        }
        try rename(temporary, path)
        // The link is published either way; a failed flush here is logged by the caller.
        syncFileSystem(containing: root)
        return movedAside
    }

    /// Deletes all but the newest `keep` complete generations (never the current one) and any
    /// partial folder left by a crash.
    public func prune(_ dataset: String) {
        let folder = generationsPath(dataset)
        let current = current(dataset)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let complete = names.filter { !$0.hasSuffix(".partial") && !Self.isMovedAside($0) }
        let byAge = complete.sorted { modified(folder + "/" + $0) > modified(folder + "/" + $1) }
        var kept = current.map { [$0] } ?? []
        for name in byAge where kept.count < keep && !kept.contains(name) { kept.append(name) }
        for name in names where !kept.contains(name) && !Self.isMovedAside(name) {
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
    }

    /// The datasets whose generations folder holds an unpublished (`.partial`) generation.
    public func datasetsWithUnpublished() -> [String] {
        let top = root + "/" + Self.generationsFolder
        return ((try? FileManager.default.contentsOfDirectory(atPath: top)) ?? []).filter { dataset in
            ((try? FileManager.default.contentsOfDirectory(atPath: top + "/" + dataset)) ?? []).contains { $0.hasSuffix(".partial") }
        }.sorted()
    }

    /// Removes the dataset's unpublished generations; returns the names removed. Only for a
    /// dataset no one is generating (see `Scheduler.sweepUnpublished`).
    public func removeUnpublished(_ dataset: String) -> [String] {
        let folder = generationsPath(dataset)
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { name in
            name.hasSuffix(".partial") && (try? FileManager.default.removeItem(atPath: folder + "/" + name)) != nil
        }.sorted()
    }

    /// Files listed by the current generation's manifest.
    public func imagesPublished(_ dataset: String) -> Int {
        guard let text = try? String(contentsOfFile: linkPath(dataset) + "/" + ImageFolder.manifestName, encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").count
    }

    private func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }

    /// mkdir -p that reports errno (a full disk must be recognisable as one).
    private func createFolder(_ path: String) throws {
        var status = stat()
        if stat(path, &status) == 0 { return }
        let parent = parentFolder(path)
        if !parent.isEmpty && parent != path { try createFolder(parent) }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw FileError.io(path: path, operation: "create folder", errno: errno) }
    }

    private func rename(_ from: String, _ to: String) throws {
        try createFolder(parentFolder(to))
        guard Glibc.rename(from, to) == 0 else { throw FileError.io(path: to, operation: "rename \(from) to", errno: errno) }
    }

    private func parentFolder(_ path: String) -> String { (path as NSString).deletingLastPathComponent }
}
