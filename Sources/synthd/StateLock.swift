import ArgumentParser
import Engine
import Foundation
import GAN

/// Takes a state folder's lock for a command, or exits with `FileLock.busyExitStatus` and a
/// message naming who holds it: two processes training one model would overwrite each
/// other's checkpoints. A lock that cannot be made at all (a read-only folder) exits 1 and
/// says what to do. Holding it, removes what an interrupted write left in the folder.
func lockOrExit(_ folder: StateFolder, purpose: String) throws -> FileLock {
    do {
        let lock = try folder.lock(for: purpose)
        let leftovers = folder.removeInterruptedWrites()
        if !leftovers.isEmpty {
            FileHandle.standardError.write(Data("note: removed what an interrupted write left in \(folder.path): \(leftovers.joined(separator: ", "))\n".utf8))
        }
        return lock
    } catch {
        var message = "synthd: \(error)"
        if error.isHeld { message += "; \(folder.path) is in use: wait for that process to finish, or stop it" }
        if error.folderIsNotWritable {
            // Even generation holds it: no training may change the model while it is read.
            message += "; synthd takes \(folder.path)'s lock while it reads or writes the model there, so the folder must be "
                + "writable (a model on read-only media: copy its folder to a writable place and give that to --state)"
        }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        throw ExitCode(error.isHeld ? FileLock.busyExitStatus : ExitCode.failure.rawValue)
    }
}
