import Cluster
import Daemon
import Foundation
import Testing

@Suite struct DatabaseAddressTests {
    @Test func readsTCPAndSocketAddresses() throws {
        let tcp = try DatabaseAddress.parse("postgresql://synthd@db.example:6543/jobs?sslmode=require", environment: [:])
        #expect(tcp.transport == .tcp(host: "db.example", port: 6543))
        #expect(tcp.user == "synthd" && tcp.database == "jobs" && tcp.requireTLS && tcp.password == nil)
        let socket = try DatabaseAddress.parse("postgres://me@/synthd?host=/run/postgresql", environment: [:])
        #expect(socket.transport == .unixSocket(folder: "/run/postgresql", port: 5432))
        #expect(socket.description == "postgresql://me@/synthd?host=/run/postgresql&port=5432")
    }

    @Test func refusesAPasswordInTheAddress() {
        #expect {
            try DatabaseAddress.parse("postgresql://synthd:hunter2@db/synthd", environment: [:])
        } throws: { error in
            let text = "\(error)"
            return text.contains("password_file") && text.contains("SYNTHD_DATABASE_PASSWORD") && !text.contains("hunter2")
        }
    }

    @Test func takesThePasswordFromAFileElseTheEnvironment() throws {
        let file = NSTemporaryDirectory() + "synthd-password-" + UUID().uuidString
        try "s3cret\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let environment = ["SYNTHD_DATABASE_PASSWORD": "fromenv", "PGPASSWORD": "libpq"]
        #expect(try DatabaseAddress.parse("postgresql://u@h/d", passwordFile: file, environment: environment).password == "s3cret")
        #expect(try DatabaseAddress.parse("postgresql://u@h/d", environment: environment).password == "fromenv")
        #expect(try DatabaseAddress.parse("postgresql://u@h/d", environment: ["PGPASSWORD": "libpq"]).password == "libpq")
        let address = try DatabaseAddress.parse("postgresql://u@h/d", environment: environment)
        #expect(!address.description.contains("fromenv"))
        #expect(throws: ClusterError.self) { try DatabaseAddress.parse("postgresql://u@h/d", passwordFile: file + ".missing") }
    }

    @Test(arguments: ["mysql://u@h/d", "postgresql://h/d", "postgresql://u@h/", "postgresql://u@h/d?colour=blue",
                      "postgresql://u@h/d?sslmode=verify-full", "postgresql://u@/d", "postgresql://u@/d?host=/s&sslmode=require",
                      "postgresql://u@h/d?port=99999"])
    func refusesAddressesThatDoNotRead(_ text: String) {
        #expect(throws: ClusterError.self) { try DatabaseAddress.parse(text, environment: [:]) }
    }

    @Test func findsThePasswordInSystemdsCredentials() throws {
        let folder = NSTemporaryDirectory() + "synthd-credentials-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(DatabaseAddress.passwordFile("", environment: ["CREDENTIALS_DIRECTORY": folder]) == nil)
        try "pw".write(toFile: folder + "/synthd-database-password", atomically: true, encoding: .utf8)
        #expect(DatabaseAddress.passwordFile("", environment: ["CREDENTIALS_DIRECTORY": folder]) == folder + "/synthd-database-password")
        #expect(DatabaseAddress.passwordFile("/etc/x", environment: ["CREDENTIALS_DIRECTORY": folder]) == "/etc/x")
        #expect(DatabaseAddress.passwordFile("", environment: [:]) == nil)
    }
}

@Suite struct ClusterErrorTests {
    /// The scheduler tells a refusal it expects (the end of a job cancelled meanwhile) from an
    /// error by this: only a lost lease is a job no longer held.
    @Test func onlyALostLeaseIsAJobNoLongerHeld() {
        let refusals: [any JobRefusal] = [
            ClusterError.leaseLost(job: 4, dataset: "set3", token: 4),
            ClusterError.unreachable("postgresql://synthd@db/synthd", reason: "connection refused"),
            ClusterError.query("claim of job 4", reason: "deadlock detected"),
        ]
        #expect(refusals.map(\.jobNoLongerHeld) == [true, false, false])
    }
}
