import Foundation
import Logging
import PostgresNIO
import Synchronization

/// One connection to the cluster's PostgreSQL, used synchronously: the daemon's main loop and
/// its lease keeper are plain threads (a blocking wait on a future is what they can do), and
/// each has a `ClusterDatabase` of its own, so that a slow query on one never holds up the
/// other's lease renewal.
///
/// The connection is made at first use and again after it breaks; every query has a time
/// limit, after which the connection is dropped (a hung server must not hang the daemon).
public final class ClusterDatabase: @unchecked Sendable {
    public let address: DatabaseAddress
    /// Seconds for connecting and for any one query.
    public let timeout: Int64
    let logger: Logger
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var nextConnectionID = 1
    private let statements = Atomic<Int>(0)

    public init(address: DatabaseAddress, logger: Logger, timeout: Int64 = 15) {
        self.address = address
        self.logger = logger
        self.timeout = timeout
    }

    deinit {
        close()
        try? group.syncShutdownGracefully()
    }

    /// Statements sent so far (the database load a node makes: docs/cluster.md).
    public var statementCount: Int { statements.load(ordering: .relaxed) }

    /// Runs one statement. Throws `ClusterError.unreachable` when the connection cannot be
    /// made or broke, `.query` when the server refused the statement.
    @discardableResult
    public func query(_ query: PostgresQuery, _ what: @autoclosure () -> String = "a query") throws(ClusterError) -> PostgresQueryResult {
        lock.lock()
        defer { lock.unlock() }
        return try run(query, what())
    }

    /// Runs `body` in one transaction (BEGIN ... COMMIT, rolled back when `body` throws).
    /// Nothing else uses this connection meanwhile.
    public func transaction<T>(_ body: (Transaction) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        try run("BEGIN", "BEGIN")
        do {
            let result = try body(Transaction(database: self))
            try run("COMMIT", "COMMIT")
            return result
        } catch {
            _ = try? run("ROLLBACK", "ROLLBACK")
            throw error
        }
    }

    /// The statements of one transaction.
    public struct Transaction {
        let database: ClusterDatabase
        @discardableResult
        public func query(_ query: PostgresQuery, _ what: @autoclosure () -> String = "a query") throws(ClusterError) -> PostgresQueryResult {
            try database.run(query, what())
        }
    }

    /// Drops the connection (the next query makes a new one).
    public func close() {
        lock.lock()
        let closing = connection
        connection = nil
        lock.unlock()
        let closed: EventLoopFuture<Void>? = closing?.close()
        try? closed?.wait()
    }

    // MARK: Private (called with the lock held)

    @discardableResult
    private func run(_ query: PostgresQuery, _ what: String) throws(ClusterError) -> PostgresQueryResult {
        let connection = try connected()
        statements.add(1, ordering: .relaxed)
        let promise = connection.eventLoop.makePromise(of: PostgresQueryResult.self)
        connection.query(query, logger: logger).cascade(to: promise)
        let limit = timeout, shown = address.description
        let timer = connection.eventLoop.scheduleTask(in: .seconds(limit)) {
            promise.fail(ClusterError.unreachable(shown, reason: "no answer within \(limit) s"))
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
        }
        defer { timer.cancel() }
        do {
            return try promise.futureResult.wait()
        } catch {
            if connection.isClosed || error is ClusterError {
                self.connection = nil
                throw ClusterError.unreachable(address.description, reason: Self.describe(error))
            }
            throw ClusterError.query(what, reason: Self.describe(error))
        }
    }

    private func connected() throws(ClusterError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        var configuration: PostgresConnection.Configuration
        switch address.transport {
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS
            if address.requireTLS {
                do { tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration())) } catch {
                    throw .badAddress(address.description, reason: "cannot set up TLS: \(error)")
                }
            } else {
                tls = .disable
            }
            configuration = .init(host: host, port: port, username: address.user, password: address.password,
                                  database: address.database, tls: tls)
        case .unixSocket(let folder, let port):
            configuration = .init(unixSocketPath: folder + "/.s.PGSQL.\(port)", username: address.user,
                                  password: address.password, database: address.database)
        }
        configuration.options.connectTimeout = .seconds(timeout)
        let id = nextConnectionID
        nextConnectionID += 1
        do {
            let made = try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
            connection = made
            return made
        } catch {
            throw .unreachable(address.description, reason: Self.describe(error))
        }
    }

    /// The server's own message where there is one ("relation ... does not exist"), else the
    /// connection error in words.
    static func describe(_ error: any Error) -> String {
        if let error = error as? ClusterError, case .unreachable(_, let reason) = error { return reason }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return message + state
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    /// Whether the server refused a statement because of a unique index (SQLSTATE 23505).
    static func isUniqueViolation(_ error: ClusterError) -> Bool {
        if case .query(_, let reason) = error { return reason.hasSuffix("(SQLSTATE 23505)") }
        return false
    }
}
