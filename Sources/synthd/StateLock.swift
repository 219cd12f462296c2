import ArgumentParser
import Engine
import Foundation
import GAN

/// Takes a state folder's lock for a command, or exits with `FileLock.busyExitStatus` and a
/// message naming who holds it: two processes training one model would overwrite each
/// other's checkpoints. Holding it, removes what an interrupted write left in the folder.
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
        if case .held = error { message += "; \(folder.path) is in use: wait for that process to finish, or stop it" }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        throw ExitCode(FileLock.busyExitStatus)
    }
}
