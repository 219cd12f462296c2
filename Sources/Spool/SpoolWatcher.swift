import CInotifyTools
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches a spool folder recursively with libinotifytools, on a thread of its own.
///
/// libinotifytools keeps global state (one inotify descriptor, static buffers), so only this
/// thread touches it, and only one watcher may exist per process. New folders are watched as
/// they appear; files that land in them before the watch exists are covered because the
/// folder's own creation already reports its dataset as changed, and a dataset is scanned
/// only once it has settled.
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
    /// A count of libinotifytools' records asked for (`watchRecordCount`), and the answer.
    private var recordCountWanted = false, recordCountAnswer = 0

    // The watcher thread's own (libinotifytools' state with them):
    /// libinotifytools' inotify descriptor, told apart from others when it was opened.
    private var inotifyDescriptor: Int32 = -1
    /// Reads the events of `inotifyDescriptor` (libinotifytools only keeps the watches' records).
    private let reader = InotifyEventReader()
    /// Whether libinotifytools' state is set up (`initialize`) and not yet ended (`release`).
    private var isInitialized = false
    /// A folder that left its place in the spool, waiting for the event that says where it went.
    private var pendingMove: (cookie: UInt32, path: String)?
    /// Watches let go of whose events may still be queued (until their `IN_IGNORED`).
    private var dropped: Set<Int32> = []
    private var staleRecords: StaleWatchRecords
    /// The kernel's live watches of an inotify descriptor (`KernelWatches`); tests replace it
    /// (before `start`) to take the path where they cannot be read.
    var liveWatches: (Int32) -> [Int32]? = KernelWatches.watchDescriptors(of:)
    /// Called on the watcher's thread with each folder the watches' walk has listed, before
    /// its subfolders are watched (`TreeWatch.afterListing`); tests set it before `start`.
    var afterListing: (String) -> Void = { _ in }
    /// Watch records libinotifytools was asked to make (one per folder watched anew).
    private let recordsMade = Atomic<Int>(0)
    /// `recordsMade`, for tests.
    var recordsMadeCount: Int { recordsMade.load(ordering: .relaxed) }
    /// IN_MASK_CREATE (Linux 4.18): add a watch only where there is none.
    private static let onlyCreate: UInt32 = 0x1000_0000
    /// When the descriptor was last found closed or failing (`lostDescriptor`).
    private var lastLostDescriptor: ContinuousClock.Instant?

    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
        /// The kernel's limit on watches (fs.inotify.max_user_watches) was reached.
        public var isWatchLimit = false
        /// The folder asked for was gone (or no longer a folder) when its watch was added.
        var folderWent = false
    }

    /// `staleRecordLimit`: how many records of deleted folders' watches libinotifytools may
    /// keep at least before the watches are renewed (see `StaleWatchRecords`); tests lower it.
    public init(spool: String, staleRecordLimit: Int = 4096) {
        self.spool = spool.hasSuffix("/") ? String(spool.dropLast()) : spool
        staleRecords = StaleWatchRecords(limit: staleRecordLimit)
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

    /// How many watch records libinotifytools holds, of live watches and dead ones, as its
    /// thread counts them (nil when it does not answer within 3 s). Tests read it: the records
    /// of folders deleted or moved away must not pile up.
    public func watchRecordCount() -> Int? {
        stopFlag.lock()
        recordCountWanted = true
        stopFlag.unlock()
        for _ in 0..<150 {
            usleep(20_000)
            stopFlag.lock()
            defer { stopFlag.unlock() }
            if !recordCountWanted { return recordCountAnswer }
        }
        return nil
    }

    private func answerRecordCount() {
        stopFlag.lock()
        defer { stopFlag.unlock() }
        guard recordCountWanted else { return }
        recordCountAnswer = Int(inotifytools_get_num_watches())
        recordCountWanted = false
    }

    /// Starts libinotifytools and notes which inotify descriptor is its own; the reason when
    /// inotify cannot start. Whatever the watcher knew of earlier watches is forgotten.
    private func initialize() -> String? {
        // The library does not say which descriptor it opened: the one inotify instance more
        // than before is it. Another thread that opened one at the same moment makes two; then
        // the library starts again (a few times: the watcher reads events from that number).
        var opened: Set<Int32> = []
        for _ in 0..<5 {
            let before = KernelWatches.inotifyDescriptors()
            guard inotifytools_initialize() != 0 else {
                return "\(String(cString: strerror(inotifytools_error()))); raise fs.inotify.max_user_instances if the limit is reached"
            }
            opened = KernelWatches.inotifyDescriptors().subtracting(before)
            if opened.count == 1 { break }
            inotifytools_cleanup()
        }
        guard opened.count == 1, let fd = opened.first else {
            return "could not tell libinotifytools' inotify descriptor apart from others opened at the same time "
                + "(\(opened.sorted())); another part of the process keeps opening inotify instances"
        }
        inotifyDescriptor = fd
        reader.reset()
        isInitialized = true
        pendingMove = nil
        dropped = []
        staleRecords.reset()
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

    /// Adds one folder's watch and libinotifytools' record of it (`TreeWatch.addWatch`);
    /// 0, or the errno of the failure.
    private func addWatch(_ path: UnsafePointer<CChar>, flags: Int32) -> Int32 {
        // A folder walked again (its permissions changed, or after lost events) is watched
        // already, and libinotifytools would make a second record of its watch that it never
        // frees (its tree keeps the first): a few hundred bytes a folder at each `chmod -R`.
        // The kernel says so first (IN_MASK_CREATE: EEXIST for a watched folder).
        let added = inotify_add_watch(inotifyDescriptor, path, UInt32(bitPattern: Self.events | flags) | Self.onlyCreate)
        if added < 0 {
            let code = errno
            if code == EEXIST { return 0 }
            if code != EINVAL { return code }  // EINVAL: a kernel before 4.18, without the flag
        }
        guard inotifytools_watch_file(path, Self.events | flags) == 0 else {
            recordsMade.add(1, ordering: .relaxed)
            return 0
        }
        // No kernel watch without its record: its events would read as an unknown watch's.
        if added >= 0 { inotify_rm_watch(inotifyDescriptor, added) }
        let code = inotifytools_error()
        return code != 0 ? code : EIO  // a watch number the library refused leaves no errno
    }

    private func loop(_ handler: (SpoolEvent) -> Void) {
        while !isStopped {
            answerRecordCount()
            // 1 s bounds how long stop() takes.
            let next: UnsafeMutablePointer<inotify_event>?
            switch reader.next(from: inotifyDescriptor, timeoutMilliseconds: 1000) {
            case .event(let event): next = event
            case .timeout: next = nil
            case .lost(let found):
                lostDescriptor(found == .closed ? "was closed" : "was closed and its number taken by another file", handler)
                continue
            case .failed(let code):
                lostDescriptor(code == EBADMSG ? "read bytes that are not inotify events" : "failed (\(String(cString: strerror(code))))", handler)
                continue
            }
            // A folder moved within the spool reports IN_MOVED_FROM and, next, IN_MOVED_TO with
            // the same cookie. Any other event next, or none for a second: it left the spool.
            if let move = pendingMove, !(next.map { Self.isMovedTo($0, cookie: move.cookie) } ?? false) {
                pendingMove = nil
                // Watched afresh instead: the event in hand names a watch of the old instance,
                // whose number may now be another folder's (the rescan covers it).
                if !dropWatches(under: move.path, handler) { continue }
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
            // libinotifytools 3.22 names an unknown watch "" (older versions: NULL).
            guard let folderName = inotifytools_filename_from_wd(event.pointee.wd), folderName.pointee != 0 else {
                if mask & Int32(IN_IGNORED) == 0 { handler(.rescan(reason: "event for an unknown watch")) }
                continue
            }
            if mask & Int32(IN_IGNORED) != 0 {
                // The kernel dropped the watch (its folder deleted, its file system unmounted),
                // after events that said what changed. libinotifytools keeps its record.
                if staleRecords.noteOne(records: { Int(inotifytools_get_num_watches()) }) {
                    let dead = staleRecords.count
                    restart(handler, .watchesRenewed(reason: "renewed the spool's watches, to free libinotifytools' records of \(dead) "
                        + "deleted folders; looking at everything in case something changed meanwhile"))
                }
                continue
            }
            let folder = String(cString: folderName)  // ends with "/"
            let (name, nameIsUTF8) = Self.name(of: event)
            let path = folder + name
            if folder == spool + "/" && name.isEmpty && mask & Int32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 {
                handler(.spoolMissing(reason: "\(spool): the spool folder was removed or moved away; nothing arrives until a "
                    + "folder is there again (looked for every second), then everything in it is looked at"))
                awaitSpool(handler)
                continue
            }
            let isFolder = mask & Int32(IN_ISDIR) != 0
            if isFolder && mask & Int32(IN_MOVED_FROM) != 0 { pendingMove = (event.pointee.cookie, path) }
            // A name that is not UTF-8 reads as another name (U+FFFD for its bytes), which
            // cannot be watched: the daemon reports the folder by its dataset's scan, or by
            // the name alone at the top (see `SafeName`).
            if isFolder && nameIsUTF8 && mask & Int32(IN_CREATE | IN_MOVED_TO) != 0 {
                if mask & Int32(IN_MOVED_TO) != 0, let from = pendingMove, from.cookie == event.pointee.cookie {
                    // Renamed inside the spool: its watches (and its subfolders') are kept by
                    // the kernel, but libinotifytools still names them by the old path; tell it
                    // the new one, as inotifywait does, or its events go to the old name.
                    inotifytools_replace_filename(from.path + "/", path + "/")
                    pendingMove = nil
                } else if let error = watch(path), !error.folderWent {
                    // A folder gone before its event was read (a tool's scratch folder) asks for
                    // nothing: its removal has its own event, where a rescan walks every dataset.
                    handler(error.isWatchLimit ? .watchLimit(reason: error.description) : .rescan(reason: error.description))
                }
            }
            // A dataset moved into the spool whole with its `.ready` file, or made and given
            // one before its watch was added, has no event for that file: the file says the
            // same (it used to wait out the settle time).
            if isFolder && nameIsUTF8 && folder == spool + "/" && mask & Int32(IN_CREATE | IN_MOVED_TO) != 0,
               access(path + "/.ready", F_OK) == 0, let dataset = datasetName(of: path, spool: spool) {
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
            } else if name == ".ready" && mask & Int32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) != 0 {
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
        while !isStopped {
            var status = stat()
            if stat(spool, &status) == 0, status.st_mode & S_IFMT == S_IFDIR { break }
            sleep(1)
        }
        guard !isStopped else { return }
        restart(handler, .rescan(reason: "\(spool): the spool folder is there again; looking at everything in it"))
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
        if let error = watch(spool) {
            handler(error.isWatchLimit ? .watchLimit(reason: error.description) : .rescan(reason: error.description))
        }
        handler(look)
    }

    /// Ends libinotifytools' state, and drops the rest of the batch of events in hand: read
    /// after the renewal, it named watch numbers that the next instance gives to other folders
    /// (a class folder deleted before a renewal read as a dataset leaving the spool). Whatever
    /// it said, the look at everything after a renewal covers. A descriptor whose number
    /// another file holds now is not closed (that file is not ours).
    private func release() {
        guard isInitialized else { return }
        isInitialized = false
        reader.reset()
        let fd = inotifyDescriptor
        var found = KernelWatches.descriptor(fd)
        if found == .closed {
            // The cleanup closes the number: held here first (F_DUPFD takes the lowest free
            // number from `fd` up, atomically), so that a file another thread opens meanwhile
            // cannot be the one closed. Taken already: another file's, as below.
            let placeholder = open("/dev/null", O_RDONLY | O_CLOEXEC)
            let held = placeholder >= 0 ? fcntl(placeholder, F_DUPFD_CLOEXEC, fd) : -1
            if placeholder >= 0 { close(placeholder) }
            if held >= 0, held != fd { close(held) }
            if held != fd { found = .other }
        }
        if found == .other {
            // Kept open across the cleanup's close (a file opened in between by another thread
            // would lose its number to dup2: a window of microseconds, against a certain loss).
            let kept = fcntl(fd, F_DUPFD_CLOEXEC, 0)
            inotifytools_cleanup()
            if kept >= 0 {
                dup2(kept, fd)
                close(kept)
            }
            return
        }
        inotifytools_cleanup()
    }

    /// The inotify descriptor was closed under the watcher (by another part of the process
    /// closing a number twice) or failed: nothing would be heard again, where the watcher went
    /// on answering and heard nothing (seen once in CI, right after a renewal gave it a number
    /// just freed). Watches the spool afresh and asks for a look at everything.
    private func lostDescriptor(_ what: String, _ handler: (SpoolEvent) -> Void) {
        // One that fails again at once (a read error that lasts) is renewed once a second, not
        // in a busy loop of rescans.
        if let last = lastLostDescriptor, last.duration(to: .now) < .seconds(10) { sleep(1) }
        lastLostDescriptor = .now
        restart(handler, .rescan(reason: "the spool watcher's inotify descriptor \(inotifyDescriptor) \(what); watching the spool afresh, and looking at "
            + "everything in case something changed meanwhile"))
    }

    /// A folder moved out of the spool keeps its watches (the kernel's follow the folder), and
    /// libinotifytools its records, which name them by their old paths: a file written where
    /// the folder went read as a change of the dataset it had left, or of one made since under
    /// its name, and the watches counted against the user's limit until a restart. Lets go of
    /// every watch under `path`. Should the kernel's list of watches be unreadable, the spool is
    /// watched afresh instead, and false returned.
    private func dropWatches(under path: String, _ handler: (SpoolEvent) -> Void) -> Bool {
        guard let live = liveWatches(inotifyDescriptor) else {
            restart(handler, .watchesRenewed(reason: "\(path) left the spool; its watches were let go of by watching the spool afresh"))
            return false
        }
        let prefix = path + "/"
        for wd in live {
            guard let name = inotifytools_filename_from_wd(wd), String(cString: name).hasPrefix(prefix) else { continue }
            if inotifytools_remove_watch_by_wd(wd) != 0 { dropped.insert(wd) }
        }
        return true
    }

    private static func isMovedTo(_ event: UnsafeMutablePointer<inotify_event>, cookie: UInt32) -> Bool {
        event.pointee.mask & UInt32(IN_MOVED_TO) != 0 && event.pointee.cookie == cookie
    }

    private static func isLinkToFolder(_ path: String) -> Bool {
        var link = stat(), target = stat()
        return lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK && stat(path, &target) == 0
            && target.st_mode & S_IFMT == S_IFDIR
    }

    /// inotify_event.name is a flexible array member, which Swift does not import. The name,
    /// with U+FFFD for bytes that are not UTF-8, and whether it was UTF-8.
    private static func name(of event: UnsafeMutablePointer<inotify_event>) -> (String, isUTF8: Bool) {
        guard event.pointee.len > 0 else { return ("", true) }
        let raw = UnsafeRawPointer(event) + MemoryLayout<inotify_event>.size
        let bytes = UnsafeBufferPointer(start: raw.assumingMemoryBound(to: UInt8.self), count: Int(event.pointee.len))
        let name = bytes.prefix { $0 != 0 }
        return (String(decoding: name, as: UTF8.self), String(validating: name, as: UTF8.self) != nil)
    }
}

private final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: SpoolWatcher.Error?
    func set(_ error: SpoolWatcher.Error) { lock.lock(); self.error = error; lock.unlock() }
    var value: SpoolWatcher.Error? { lock.lock(); defer { lock.unlock() }; return error }
}
