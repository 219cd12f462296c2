import ArgumentParser
import CUDA
import Cluster
import Daemon
import Engine
import Foundation
import Logging

/// `synthd run`: the daemon.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: watch the spool, train each dataset in the background, publish synthetic images.",
        discussion: """
        Every folder under the spool is a dataset (<dataset>/<class>/<images>). When one appears or settles \
        after a change, synthd trains its GAN (or fine-tunes the existing one) and writes synthetic images to \
        OUTPUT/<dataset>/<class>/. SIGTERM or SIGINT checkpoints and exits; SIGHUP reloads the configuration. \
        The configuration is --config, else /etc/synthd/synthd.toml when it exists, else config/synthd.toml. \
        Errors in it exit with status 78.
        """)

    @Option(help: "Configuration file (TOML).") var config: String?
    @Option(help: "Spool folder (overrides [paths] spool).") var spool: String?
    @Option(help: "Output folder (overrides [paths] output).") var output: String?
    @Option(help: "State folder (overrides [paths] state).") var state: String?
    @Option(help: "Seconds without changes before a dataset is picked up.") var settleSeconds: Double?
    @Option(help: "Training budget of a new dataset, in minutes.") var trainMinutes: Double?
    @Option(help: "Where jobs compute: \(DeviceRequest.help) (overrides [service] device).") var device: String?
    @Option(help: "Join a cluster: its PostgreSQL, postgresql://USER@HOST/DATABASE, without a password (overrides [cluster] database; docs/cluster.md).")
    var database: String?

    func validate() throws {
        if let settleSeconds, settleSeconds < 0 { throw ValidationError("--settle-seconds must not be negative") }
        if let trainMinutes, trainMinutes <= 0 { throw ValidationError("--train-minutes must be positive") }
        if let device, DeviceRequest(device) == nil { throw ValidationError("--device must be \(DeviceRequest.help), not '\(device)'") }
        if let database, Configuration.hasPassword(database) {
            throw ValidationError("--database must not carry a password (command lines are visible to every user): "
                + "put it in the file named by [cluster] password_file, or in SYNTHD_DATABASE_PASSWORD")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap { _ in LineLogHandler() }
        let logger = Logger(label: "synthd")
        let path = config ?? ConfigurationLocation.default()
        let (spool, output, state, settleSeconds, trainMinutes, device, database) =
            (spool, output, state, settleSeconds, trainMinutes, device, database)
        let fault = ProcessInfo.processInfo.environment[InjectedFault.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        let injectedFault = try fault.map { name in
            guard let known = InjectedFault(rawValue: name) else {
                let known = InjectedFault.allCases.map(\.rawValue).joined(separator: ", ")
                logger.critical("\(InjectedFault.environmentVariable)=\(name): no such fault (the tests' faults: \(known))")
                throw ExitCode(Configuration.Error.exitStatus)
            }
            logger.warning("\(InjectedFault.environmentVariable): this synthd injects the fault \(name), for a test")
            return known
        }
        let service = Service(configurationPath: path, overrides: { c in
            if let spool { c.spool = spool }
            if let output { c.output = output }
            if let state { c.state = state }
            if let settleSeconds { c.settleSeconds = settleSeconds }
            if let trainMinutes { c.trainingMinutes = trainMinutes }
            if let device { c.device = device }
            if let database { c.database = database }
            c.injectedFault = injectedFault
        }, logger: logger, joinCluster: { configuration, device in
            try ClusterNode.join(configuration, device: device, threads: ProcessInfo.processInfo.activeProcessorCount, logger: logger)
        })
        do {
            try service.run()
        } catch let error as Configuration.Error {
            logger.critical("\(error)")
            throw ExitCode(Configuration.Error.exitStatus)
        } catch let error as DeviceSelectionError {
            logger.critical("cannot start: \(error)")
            throw ExitCode(DeviceChoice.unavailableExitStatus)
        } catch let error as OutputFolderInUse {
            logger.critical("cannot start: \(error)")
            throw ExitCode(FileLock.busyExitStatus)
        } catch let error as FileLock.Error where error.isHeld {
            logger.critical("cannot start: \(error): another synthd runs on this state folder; stop it first, or give this one another [paths] state")
            throw ExitCode(FileLock.busyExitStatus)
        } catch let error as FileLock.Error {
            // Not another daemon: a folder it cannot write (a read-only mount), which a restart
            // may find mended (systemd restarts it a few times at most).
            let hint = error.folderIsNotWritable
                ? " (synthd run writes its lock, models and images there: make the folder writable, or set another in [paths])" : ""
            logger.critical("cannot start: \(error)\(hint)")
            throw ExitCode.failure
        } catch let error as JobsStalled {
            logger.critical("\(error)")
            throw ExitCode(JobsStalled.exitStatus)
        } catch let error as ClusterError {
            logger.critical("cannot start: \(error)")
            // A wrong address or password is a configuration error (no restart loop); a
            // database that does not answer yet is worth retrying (systemd restarts us).
            if case .badAddress = error { throw ExitCode(Configuration.Error.exitStatus) }
            throw ExitCode.failure
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode.failure
        }
    }
}

/// Where the configuration is when none is named.
enum ConfigurationLocation {
    static let installed = "/etc/synthd/synthd.toml"
    static let checkout = "config/synthd.toml"

    /// The configuration at `path`, else the default location's, else the built-in one; an
    /// error in it exits with status 78.
    static func load(_ path: String?) throws -> Configuration {
        do {
            return try (path ?? `default`()).map { path throws(Configuration.Error) in try Configuration.load(path: path) } ?? Configuration()
        } catch {
            FileHandle.standardError.write(Data("synthd: \(error)\n".utf8))
            throw ExitCode(Configuration.Error.exitStatus)
        }
    }

    /// The installed file when there is one, else the checkout's (nil: built-in defaults).
    static func `default`() -> String? {
        if let path = ProcessInfo.processInfo.environment["SYNTHD_CONFIG"], !path.isEmpty { return path }
        for path in [installed, checkout] where FileManager.default.fileExists(atPath: path) { return path }
        return nil
    }
}
