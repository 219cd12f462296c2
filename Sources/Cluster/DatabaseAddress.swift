import Foundation

/// Where the cluster's PostgreSQL is, and how to log in: `[cluster] database`.
///
///     postgresql://synthd@db.example:5432/synthd          TCP
///     postgresql://synthd@/synthd?host=/run/postgresql    a Unix socket in that folder
///     postgresql://synthd@db.example/synthd?sslmode=require
///
/// The password never comes from the address, which travels in configuration files, command
/// lines and logs: it is read from `[cluster] password_file`, else from the environment
/// (`SYNTHD_DATABASE_PASSWORD`, then libpq's `PGPASSWORD`).
public struct DatabaseAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The socket file is `<folder>/.s.PGSQL.<port>`, as libpq names it.
        case unixSocket(folder: String, port: Int)
    }

    public var transport: Transport
    public var user: String
    public var database: String
    public var password: String?
    /// `sslmode=require`: TLS or no connection. Otherwise none (a Unix socket, or a private
    /// network); synthd does not silently fall back from TLS.
    public var requireTLS: Bool

    /// The address as written, without any password.
    public var description: String {
        switch transport {
        case .tcp(let host, let port): "postgresql://\(user)@\(host):\(port)/\(database)" + (requireTLS ? "?sslmode=require" : "")
        case .unixSocket(let folder, let port): "postgresql://\(user)@/\(database)?host=\(folder)&port=\(port)"
        }
    }

    public init(transport: Transport, user: String, database: String, password: String? = nil, requireTLS: Bool = false) {
        self.transport = transport
        self.user = user
        self.database = database
        self.password = password
        self.requireTLS = requireTLS
    }

    /// Reads `text`; the password from `passwordFile`, else `environment`.
    public static func parse(_ text: String, passwordFile: String? = nil,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws(ClusterError) -> DatabaseAddress {
        func bad(_ reason: String) -> ClusterError { .badAddress(redacted(text), reason: reason) }
        guard let components = URLComponents(string: text), let scheme = components.scheme,
              ["postgresql", "postgres"].contains(scheme) else {
            throw bad("expected postgresql://USER@HOST[:PORT]/DATABASE or postgresql://USER@/DATABASE?host=/socket/folder")
        }
        if components.password != nil {
            throw bad("has a password in it; put the password in the file named by [cluster] password_file, "
                + "or in SYNTHD_DATABASE_PASSWORD, so that it stays out of configuration files, command lines and logs")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] {
            guard ["host", "port", "sslmode"].contains(item.name) else {
                throw bad("unknown parameter '\(item.name)' (known: host, port, sslmode)")
            }
            query[item.name] = item.value ?? ""
        }
        guard let user = components.user, !user.isEmpty else { throw bad("names no user (postgresql://USER@...)") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw bad("names no database (.../DATABASE)") }
        var port = components.port ?? 5432
        if let text = query["port"] {
            guard let value = Int(text), (1...65535).contains(value) else { throw bad("port must be 1...65535, not \(text)") }
            port = value
        }
        let sslmode = query["sslmode"] ?? "disable"
        guard ["disable", "require"].contains(sslmode) else { throw bad("sslmode must be disable or require, not \(sslmode)") }
        let transport: Transport
        if let folder = query["host"], folder.hasPrefix("/") {
            transport = .unixSocket(folder: folder, port: port)
        } else if let host = components.host, !host.isEmpty {
            transport = .tcp(host: host, port: port)
        } else {
            throw bad("names no host (postgresql://USER@HOST/... or ?host=/socket/folder)")
        }
        if case .unixSocket = transport, sslmode == "require" { throw bad("sslmode=require over a Unix socket: TLS is for TCP") }
        var password: String?
        if let passwordFile {
            do {
                password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                throw bad("cannot read the password file \(passwordFile): \((error as NSError).localizedDescription)")
            }
        } else {
            password = environment["SYNTHD_DATABASE_PASSWORD"] ?? environment["PGPASSWORD"]
        }
        return DatabaseAddress(transport: transport, user: user, database: database, password: password, requireTLS: sslmode == "require")
    }

    /// The password file to read: `configured` when set, else systemd's credential
    /// `synthd-database-password` (`LoadCredential=` in the unit: readable by the service only,
    /// never on disk under /etc in the clear for other users), else none.
    public static func passwordFile(_ configured: String,
                                    environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if !configured.isEmpty { return configured }
        guard let folder = environment["CREDENTIALS_DIRECTORY"] else { return nil }
        let path = folder + "/synthd-database-password"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The address with any password in it replaced by `***` (errors quote the address).
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
              let colon = text[scheme.upperBound..<at].firstIndex(of: ":") else { return text }
        return String(text[..<text.index(after: colon)]) + "***" + String(text[at...])
    }
}
