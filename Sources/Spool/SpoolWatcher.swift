import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches a spool folder recursively with inotify, on a thread of its own.
///
/// The watcher's inotify instance, its record of watches (`WatchTable`) and its reader of
/// events (`InotifyEventReader`) are its thread's own. New folders are watched as they appear;
/// files that land in them before the watch exists are covered because the folder's own
/// creation already reports its dataset as changed, and a dataset is scanned only once it has
/// settled.
///
/// Until stop 70 libinotifytools kept the watches' records, one set per process; its renaming
/// skipped records and it never freed a deleted folder's (see `WatchTable`).
public final class SpoolWatcher: @unchecked Sendable {
    public let spool: String
    /// What the watcher reacts to. IN_CLOSE_WRITE and IN_MOVED_TO count as arrivals; a file
    /// still being written (IN_CREATE, IN_MODIFY) does not, beyond resetting the settle clock.
    /// IN_ATTRIB (chmod, chown, touch) too: a dataset that could not be read is taken again
    /// once its permissions are fixed, where before that fix went unheard until a restart.
    static let events = Int32(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
                              | IN_DELETE_SELF | IN_MOVE_SELF | IN_MODIFY | IN_ATTRIB)

    private let stopFlag = NSLock()
    private var stopped = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// How many watches `watches` records, for other threads (`watchRecordCount`).
    private let recordCount = Atomic<Int>(0)

    // The watcher thread's own:
    /// The inotify instance (`initialize`).
    private var inotifyDescriptor: Int32 = -1
    /// Reads the events of `inotifyDescriptor`.
    private let reader = InotifyEventReader()
    /// The folder each watch stands for.
    private var watches = WatchTable() {
        didSet { recordCount.store(watches.count, ordering: .relaxed) }
    }
    /// Whether an inotify instance is open (`initialize`) and not yet let go of (`release`).
    private var isInitialized = false
    /// A folder that left its place in the spool, waiting for the event that says where it went.
    private var pendingMove: (cookie: UInt32, path: [UInt8])?
    /// Watches let go of whose events may still be queued (until their `IN_IGNORED`).
    private var dropped: Set<Int32> = []
    /// Called on the watcher's thread with each folder the watches' walk has listed, before
    /// its subfolders are watched (`TreeWatch.afterListing`); tests set it before `start`.
    var afterListing: (String) -> Void = { _ in }
    /// Watch records made (one per folder watched anew).
    private let recordsMade = Atomic<Int>(0)
    /// `recordsMade`, for tests.
    var recordsMadeCount: Int { recordsMade.load(ordering: .relaxed) }
    /// IN_MASK_CREATE (Linux 4.18): add a watch only where there is none.
    private static let onlyCreate: UInt32 = 0x1000_0000
    /// When the descriptor was last found closed or failing (`lostDescriptor`).
    private var lastLostDescriptor: ContinuousClock.Instant?
    /// The folder the spool's watch is on, whether it was a mount point then, and when its
    /// path was last checked against it (`checkSpool`).
    private var watchedSpool: SpoolIdentity?
    private var spoolWasMountPoint = false
    private var lastSpoolCheck = ContinuousClock.now

    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
        /// The kernel's limit on watches (fs.inotify.max_user_watches) was reached.
        public var isWatchLimit = false
        /// The folder asked for was gone (or no longer a folder) when its watch was added.
        var folderWent = false
    }

    public init(spool: String) {
        self.spool = spool.hasSuffix("/") ? String(spool.dropLast()) : spool
    }

    /// Starts watching; `handler` is called on the watcher's thread for every event.
    /// Throws when inotify cannot start or the spool cannot be watched.
    public func start(_ handler: @escaping @Sendable (SpoolEvent) -> Void) throws {
        let ready = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let thread = Thread { [self] in
            if let reason = initialize() {
                failure.set(Error(description: "failed to start inotify: \(reason)"))
                ready.signal()
                return
            }
            noteSpool()
            if let error = watch(spool) {
                guard error.isWatchLimit else {
                    release()
                    failure.set(error)
                    ready.signal()
                    return
                }
                // Not fatal: what is watched is watched, the rest is found by periodic scans.
                handler(.watchLimit(reason: error.description))
            }
            ready.signal()
            loop(handler)
            release()
            finished.signal()
        }
        thread.name = "synthd spool watcher"
        self.thread = thread
        thread.start()
        ready.wait()
        if let error = failure.value {
            self.thread = nil  // the thread has ended; nothing to stop
            throw error
        }
    }

    /// Stops the watcher's thread and waits for it to release inotify (within about a second),
    /// so that another watcher can start after it.
    public func stop() {
        stopFlag.lock()
        let wasRunning = !stopped && thread != nil
        stopped = true
        stopFlag.unlock()
        if wasRunning { _ = finished.wait(timeout: .now() + 3) }
    }

    private var isStopped: Bool {
        stopFlag.lock()
        defer { stopFlag.unlock() }
        return stopped
    }

    /// How many watches the watcher records. Tests read it: the records of folders deleted or
    /// moved away must not pile up.
    public var watchRecordCount: Int { recordCount.load(ordering: .relaxed) }

    /// Opens an inotify instance; the reason when inotify cannot start. Whatever the watcher
    /// knew of earlier watches is forgotten.
    private func initialize() -> String? {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else {
            return "\(String(cString: strerror(errno))); raise fs.inotify.max_user_instances if the limit is reached"
        }
        inotifyDescriptor = fd
        reader.reset()
        watches.removeAll()
        isInitialized = true
        pendingMove = nil
        dropped = []
        return nil
    }

    /// Watches `path` and the folders under it (`TreeWatch`); returns an error naming the
    /// folder and the fix when one fails.
    private func watch(_ path: String) -> Error? {
        let tree = TreeWatch(addWatch: addWatch(_:flags:), afterListing: afterListing)
        guard let failure = tree.watch(path) else { return nil }
        if failure.code == ENOSPC {
            return Error(description: "\(failure.path): inotify watch limit reached; raise fs.inotify.max_user_watches "
                + "(sysctl -w fs.inotify.max_user_watches=524288); until then folders not watched are found by periodic scans",
                         isWatchLimit: true)
        }
        return Error(description: "\(failure.path): failed to watch: \(String(cString: strerror(failure.code)))",
                     folderWent: failure.path == path && (failure.code == ENOENT || failure.code == ENOTDIR))
    }

    /// Adds one folder's watch and its record (`TreeWatch.addWatch`); 0, or the errno of the
    /// failure.
    private func addWatch(_ path: UnsafePointer<CChar>, flags: Int32) -> Int32 {
        // A folder walked again (its permissions changed, or after lost events) is watched
        // already: the kernel says so (IN_MASK_CREATE: EEXIST), and its record stands.
        let mask = UInt32(bitPattern: Self.events | flags)
        var wd = inotify_add_watch(inotifyDescriptor, path, mask | Self.onlyCreate)
        if wd < 0 {
            let code = errno
            if code == EEXIST { return 0 }
            guard code == EINVAL else { return code }
            // A kernel before 4.18, without the flag: it hands a watched folder its watch again.
            wd = inotify_add_watch(inotifyDescriptor, path, mask)
            if wd < 0 { return errno }
        }
        let bytes = UnsafeRawBufferPointer(start: path, count: strlen(path))
        if watches.add(wd, path: Array(bytes)) { recordsMade.add(1, ordering: .relaxed) }
        return 0
    }

    private func loop(_ handler: (SpoolEvent) -> Void) {
        while !isStopped {
            if lastSpoolCheck.duration(to: .now) >= .seconds(1) {
                lastSpoolCheck = .now
                if checkSpool(handler) { continue }
            }
            // 1 s bounds how long stop() takes.
            let next: UnsafeMutablePointer<inotify_event>?
            switch reader.next(from: inotifyDescriptor, timeoutMilliseconds: 1000) {
            case .event(let event): next = event
            case .timeout: next = nil
            case .lost(let found):
                lostDescriptor(found == .closed ? "was closed" : "was closed and its number taken by another file", isOurs: false, handler)
                continue
            case .failed(let code):
                lostDescriptor(code == EBADMSG ? "read bytes that are not inotify events" : "failed (\(String(cString: strerror(code))))",
                               isOurs: true, handler)
                continue
            }
            // A folder moved within the spool reports IN_MOVED_FROM and, next, IN_MOVED_TO with
            // the same cookie. Any other event next, or none for a second: it left the spool.
            if let move = pendingMove, !(next.map { Self.isMovedTo($0, cookie: move.cookie) } ?? false) {
                pendingMove = nil
                dropWatches(under: move.path)
            }
            guard let event = next else { continue }
            let mask = Int32(bitPattern: event.pointee.mask)
            if dropped.contains(event.pointee.wd) {
                if mask & Int32(IN_IGNORED) != 0 { dropped.remove(event.pointee.wd) }
                continue
            }
            if mask & Int32(IN_Q_OVERFLOW) != 0 {
                // Folders made while events were lost have no watch yet: add them all again
                // (watched ones keep theirs), then let the daemon look at everything.
                let error = watch(spool)
                handler(.rescan(reason: "inotify queue overflowed (events were lost); raise fs.inotify.max_queued_events"))
                if let error, error.isWatchLimit { handler(.watchLimit(reason: error.description)) }
                continue
            }
            guard let folderPath = watches.path(of: event.pointee.wd) else {
                if mask & Int32(IN_IGNORED) == 0 { handler(.rescan(reason: "event for an unknown watch")) }
                continue
            }
            if mask & Int32(IN_IGNORED) != 0 {
                // The kernel dropped the watch (its folder deleted, its file system unmounted),
                // after events that said what changed.
                watches.remove(event.pointee.wd)
                continue
            }
            let (nameBytes, nameIsUTF8) = Self.name(of: event)
            let name = String(decoding: nameBytes, as: UTF8.self)
            let pathBytes = nameBytes.isEmpty ? folderPath : folderPath + [UInt8(ascii: "/")] + nameBytes
            let folder = String(decoding: folderPath, as: UTF8.self) + "/"
            let path = folder + name
            if folder == spool + "/" && name.isEmpty && mask & Int32(IN_UNMOUNT) != 0 {
                spoolUnmounted(handler)
                continue
            }
            if folder == spool + "/" && name.isEmpty && mask & Int32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                handler(.spoolMissing(reason: "\(spool): the spool folder was removed or moved away; nothing arrives until a "
                    + "folder is there again (looked for every second), then everything in it is looked at"))
                awaitSpool(handler)
                continue
            }
            let isFolder = mask & Int32(IN_ISDIR) != 0
            if isFolder && mask & Int32(IN_MOVED_FROM) != 0 { pendingMove = (event.pointee.cookie, pathBytes) }
            if isFolder && mask & Int32(IN_MOVED_TO) != 0, let from = pendingMove, from.cookie == event.pointee.cookie {
                // Renamed inside the spool: the kernel's watches (its subfolders' too) follow
                // the folder; their records take the new path, or their events would go to the
                // old name.
                watches.rename(from.path, to: pathBytes)
                pendingMove = nil
            }
            if isFolder && nameIsUTF8 && mask & Int32(IN_CREATE | IN_MOVED_TO) != 0 {
                // A folder made, moved in or renamed is walked. A renamed one too: renamed while
                // a walk was listing it (a staging folder renamed as soon as it was made), the
                // walk's later watches failed under the old path and its subfolders went
                // unwatched; this walk watches those and finds the rest watched already.
                // A name that is not UTF-8 reads as another name (U+FFFD for its bytes), which
                // cannot be watched: the daemon reports the folder by its dataset's scan, or by
                // the name alone at the top (see `SafeName`).
                if let error = watch(path), !error.folderWent {
                    // A folder gone before its event was read (a tool's scratch folder) asks for
                    // nothing: its removal has its own event, where a rescan walks every dataset.
                    handler(error.isWatchLimit ? .watchLimit(reason: error.description) : .rescan(reason: error.description))
                }
            }
            // A dataset moved into the spool whole with its `.ready` file, or made and given
            // one before its watch was added, has no event for that file: the file says the
            // same (it used to wait out the settle time).
            if isFolder && nameIsUTF8 && folder == spool + "/" && mask & Int32(IN_CREATE | IN_MOVED_TO) != 0,
               SettleTracker.isMarkedReady(path), let dataset = datasetName(of: path, spool: spool) {
                handler(.ready(dataset: dataset))
            }
            // The parent's report only (a watched folder also reports its own change, with no
            // name: a second walk of the same tree, of the whole spool for the spool's own).
            if isFolder && nameIsUTF8 && !name.isEmpty && mask & Int32(IN_ATTRIB) != 0, let error = watch(path), error.isWatchLimit {
                // A folder that could not be watched while it was unreadable is watched once
                // its permissions allow (those already watched keep their watches).
                handler(.watchLimit(reason: error.description))
            }
            let topLevel = folder == spool + "/"
            // Files directly in the spool are not datasets. A symbolic link made there (`ln -s
            // ~/photos/shoes spool/`) is not a folder to inotify, but the daemon looks at it, if
            // only to say that it does not follow links out of the spool.
            let linkArrived = topLevel && mask & Int32(IN_CREATE | IN_MOVED_TO) != 0 && Self.isLinkToFolder(path)
            if topLevel && !isFolder && !linkArrived {
                if mask & Int32(IN_CLOSE_WRITE | IN_MOVED_TO) != 0 { handler(.strayFile(name: name)) }
                continue
            }
            guard let dataset = datasetName(of: topLevel ? path : folder, spool: spool) else { continue }
            if topLevel && mask & Int32(IN_DELETE | IN_MOVED_FROM) != 0 {
                handler(.removed(dataset: dataset))
            } else if name == SettleTracker.readyFileName && mask & Int32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) != 0 {
                handler(.ready(dataset: dataset))
            } else if mask & Int32(IN_DELETE_SELF | IN_MOVE_SELF) == 0 || !topLevel {
                handler(.changed(dataset: dataset))
            }
        }
    }

    /// After the spool folder went: drops every watch (a folder moved away keeps its watches
    /// and would go on reporting under the spool's names), waits for a folder at the spool's
    /// path, watches it afresh and asks for a rescan. Until stop 40 the watcher went deaf: a
    /// spool removed and made again (`rm -rf spool; mkdir spool`) was never watched again.
    private func awaitSpool(_ handler: (SpoolEvent) -> Void) {
        release()
        while !isStopped && SpoolIdentity.of(spool) == nil { sleep(1) }
        guard !isStopped else { return }
        restart(handler, .rescan(reason: "\(spool): the spool folder is there again; looking at everything in it"))
    }

    /// Notes which folder the spool's path leads to, before it is watched.
    private func noteSpool() {
        watchedSpool = SpoolIdentity.of(spool)
        spoolWasMountPoint = SpoolIdentity.isMountPoint(spool)
        lastSpoolCheck = .now
    }

    /// Whether the spool's path still leads to the folder watched; if not, what became of it is
    /// handled (true). A file system mounted over the spool sends no event; one unmounted under
    /// it sends `IN_UNMOUNT`, which may still wait in the queue behind other events. A path
    /// that leads nowhere is left to the events of its removal or unmounting.
    private func checkSpool(_ handler: (SpoolEvent) -> Void) -> Bool {
        guard let watched = watchedSpool, let now = SpoolIdentity.of(spool), now != watched else { return false }
        if spoolWasMountPoint && !SpoolIdentity.isMountPoint(spool) {
            spoolUnmounted(handler)
        } else {
            restart(handler, .rescan(reason: "\(spool): the spool's path leads to another folder now (a file system mounted on it, "
                + "the folder replaced, or its link changed); watching it afresh and looking at everything in it"))
        }
        return true
    }

    /// The spool's file system was unmounted: its watches went with it. What is left at the path
    /// (the folder it was mounted on, or nothing) is not the spool: its datasets stay as they
    /// are (as for a spool removed) until a file system is mounted there again, or, for a spool
    /// that was not a mount point itself (a folder of the file system unmounted), until its path
    /// leads to a folder again; then it is watched afresh and looked at whole.
    private func spoolUnmounted(_ handler: (SpoolEvent) -> Void) {
        handler(.spoolMissing(reason: "\(spool): the spool's file system was unmounted; nothing arrives until it is mounted "
            + "again (looked for every second), then everything in it is looked at"))
        release()
        let wasMountPoint = spoolWasMountPoint
        while !isStopped {
            if SpoolIdentity.of(spool) != nil && (!wasMountPoint || SpoolIdentity.isMountPoint(spool)) { break }
            sleep(1)
        }
        guard !isStopped else { return }
        restart(handler, .rescan(reason: "\(spool): the spool's file system is mounted again; looking at everything in it"))
    }

    /// Drops every watch and record (if not dropped already), watches the spool afresh, then
    /// asks for a look at everything (`look`, a rescan with its reason): changes made while
    /// nothing was watched sent no event.
    private func restart(_ handler: (SpoolEvent) -> Void, _ look: SpoolEvent) {
        release()
        if let reason = initialize() {
            // The descriptor is gone and cannot be had again: periodic scans keep the daemon
            // going without events.
            handler(.watchLimit(reason: "failed to restart inotify: \(reason); the spool is scanned periodically instead"))
            while !isStopped { sleep(1) }
            return
        }
        noteSpool()
        if let error = watch(spool) {
            handler(error.isWatchLimit ? .watchLimit(reason: error.description) : .rescan(reason: error.description))
        }
        handler(look)
    }

    /// Closes the inotify instance and forgets its watches, and drops the rest of the batch of
    /// events in hand: read after a restart, it named watch numbers that the next instance
    /// gives to other folders (a class folder deleted before a renewal read as a dataset
    /// leaving the spool). Whatever it said, the look at everything after a restart covers. A
    /// descriptor whose number another file holds now is not closed (that file is not ours).
    private func release() {
        guard isInitialized else { return }
        isInitialized = false
        reader.reset()
        watches.removeAll()
        if inotifyDescriptor >= 0, KernelWatches.descriptor(inotifyDescriptor) == .inotify { close(inotifyDescriptor) }
        inotifyDescriptor = -1
    }

    /// The inotify descriptor was closed under the watcher (by another part of the process
    /// closing a number twice) or failed: nothing would be heard again, where the watcher went
    /// on answering and heard nothing (seen once in CI, right after a renewal gave it a number
    /// just freed). Watches the spool afresh and asks for a look at everything.
    /// `isOurs`: whether the number is still the watcher's instance (a failed read), to be
    /// closed; one closed under it is not, whatever holds the number now (another inotify
    /// instance of the process, even).
    private func lostDescriptor(_ what: String, isOurs: Bool, _ handler: (SpoolEvent) -> Void) {
        // One that fails again at once (a read error that lasts) is renewed once a second, not
        // in a busy loop of rescans.
        if let last = lastLostDescriptor, last.duration(to: .now) < .seconds(10) { sleep(1) }
        lastLostDescriptor = .now
        let fd = inotifyDescriptor
        if !isOurs { inotifyDescriptor = -1 }
        restart(handler, .rescan(reason: "the spool watcher's inotify descriptor \(fd) \(what); watching the spool afresh, and looking at "
            + "everything in case something changed meanwhile"))
    }

    /// A folder moved out of the spool keeps its watches (the kernel's follow the folder), whose
    /// records name them by their old paths: a file written where the folder went read as a
    /// change of the dataset it had left, or of one made since under its name, and the watches
    /// counted against the user's limit until a restart. Lets go of every watch under `path`.
    private func dropWatches(under path: [UInt8]) {
        for wd in watches.watches(under: path) {
            inotify_rm_watch(inotifyDescriptor, wd)
            watches.remove(wd)
            // Its IN_IGNORED is queued (by the removal, or by the kernel's own drop, where the
            // watch went first): the events before it are passed over.
            dropped.insert(wd)
        }
    }

    private static func isMovedTo(_ event: UnsafeMutablePointer<inotify_event>, cookie: UInt32) -> Bool {
        event.pointee.mask & UInt32(IN_MOVED_TO) != 0 && event.pointee.cookie == cookie
    }

    private static func isLinkToFolder(_ path: String) -> Bool {
        var link = stat(), target = stat()
        return lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK && stat(path, &target) == 0
            && target.st_mode & S_IFMT == S_IFDIR
    }

    /// inotify_event.name is a flexible array member, which Swift does not import. The name's
    /// bytes, and whether they are UTF-8.
    private static func name(of event: UnsafeMutablePointer<inotify_event>) -> ([UInt8], isUTF8: Bool) {
        guard event.pointee.len > 0 else { return ([], true) }
        let raw = UnsafeRawPointer(event) + MemoryLayout<inotify_event>.size
        let bytes = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: Int(event.pointee.len))
        let name = Array(bytes.prefix { $0 != 0 })
        return (name, String(validating: name, as: UTF8.self) != nil)
    }
}

private final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: SpoolWatcher.Error?
    func set(_ error: SpoolWatcher.Error) { lock.lock(); self.error = error; lock.unlock() }
    var value: SpoolWatcher.Error? { lock.lock(); defer { lock.unlock() }; return error }
}
