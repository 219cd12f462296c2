import Cluster
import Daemon
import Foundation
import Imaging
import PostgresNIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Three `synthd run` processes sharing one spool, state and output folder through a private
/// PostgreSQL, driven the way a cluster fails: eight datasets dropped at once, the node
/// running a training killed with SIGKILL mid-training and started again, the database
/// stopped and started mid-run. Every dataset must be trained once and published once, from
/// the job history and the output tree.
@Suite(.serialized) struct ClusterIntegrationTests {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("synthd").path

    /// One node: a synthd process with its own configuration and log.
    final class Node {
        let name: String
        let config: String
        let log: String
        var process = Process()

        init(name: String, root: String, database: String, minutes: Double = 0.12, sliceMinutes: Double = 10) throws {
            self.name = name
            config = root + "/\(name).toml"
            log = root + "/\(name).log"
            try """
            [paths]
            spool = "spool"
            output = "out"
            state = "state"
            [watch]
            settle_seconds = 0.5
            poll_seconds = 1
            [training]
            minutes = \(minutes)
            checkpoint_seconds = 1
            batch = 8
            [generation]
            policy = "per-class"
            per_class = 4
            class_check = false
            [service]
            threads = 1
            nice = 0
            slice_minutes = \(sliceMinutes)
            [cluster]
            database = "\(database)"
            node = "\(name)"
            lease_seconds = 4
            """.write(toFile: config, atomically: true, encoding: .utf8)
        }

        func start() throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: ClusterIntegrationTests.binary)
            process.arguments = ["run", "--config", config]
            // A file that cannot be made fails at FileHandle below, naming it.
            if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            handle.seekToEndOfFile()
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }

        deinit {
            if process.isRunning { kill9() }
        }

        var text: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
    }

    static func addDataset(_ folder: String, seed: Int) throws {
        for (index, shade) in [60, 180].enumerated() {
            let classFolder = folder + "/class\(index)"
            try FileManager.default.createDirectory(atPath: classFolder, withIntermediateDirectories: true)
            for i in 0..<8 {
                var image = Image(width: 12, height: 12, mode: .grey)
                for y in 3..<9 { for x in 3..<9 { image[x, y, 0] = UInt8((shade + 7 * i + seed) % 256) } }
                try PNG.write(image, to: "\(classFolder)/\(i).png")
            }
        }
    }

    /// What a one-off synthd command prints.
    static func synthd(_ arguments: [String]) throws -> String { try run(arguments).output }

    /// A one-off synthd command's exit status and what it prints.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    func rows(_ database: ClusterDatabase, _ query: PostgresQuery) throws -> [PostgresRow] {
        try database.query(query).rows.map { $0 }
    }

    func waitFor(_ what: String, timeout: Double, nodes: [Node], jobsDatabase: ClusterDatabase,
                 _ condition: () throws -> Bool) throws {
        let start = Date()
        while try !condition() {
            if Date().timeIntervalSince(start) > timeout {
                let logs = nodes.map { "== \($0.name)\n\($0.text)" }.joined()
                let jobs = (try? ClusterQueue(database: jobsDatabase, node: "test").snapshot())?.map {
                    "\($0.id) \($0.kind.rawValue) \($0.dataset) \($0.state.rawValue) node \($0.node ?? "-") attempts \($0.attempts)"
                }.joined(separator: "\n") ?? "(database unreachable)"
                Issue.record("timed out after \(timeout) s waiting for \(what); jobs:\n\(jobs)\nlogs:\n\(logs)")
                throw CancellationError()
            }
            usleep(200_000)
        }
    }

    @Test func threeNodesShareEightDatasetsThroughAKillAndADatabaseRestart() throws {
        let server = try PrivatePostgres()
        let root = NSTemporaryDirectory() + "synthd-cluster-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/spool", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let url = "\(server.address)".replacingOccurrences(of: "&port=5432", with: "")
        let nodes = try ["a", "b", "c"].map { try Node(name: $0, root: root, database: url) }
        for node in nodes { try node.start() }
        defer { for node in nodes { node.stop() } }
        let database = server.connect(timeout: 5)
        try waitFor("three nodes to join", timeout: 60, nodes: nodes, jobsDatabase: database) {
            (try? NodeRegistry(database: database).nodes().count) == 3
        }

        // Eight datasets, each staged outside and renamed in (a whole drop).
        for index in 0..<8 {
            try Self.addDataset(root + "/staging/d\(index)", seed: index)
            try FileManager.default.moveItem(atPath: root + "/staging/d\(index)", toPath: root + "/spool/d\(index)")
        }

        // Kill -9 the node running a training that has checkpointed.
        var victim: (job: Int, dataset: String, node: String)?
        try waitFor("a training job with a checkpoint", timeout: 90, nodes: nodes, jobsDatabase: database) {
            for row in try rows(database, "SELECT id, dataset, node FROM synthd_jobs WHERE state = 'running' AND kind = 'train'") {
                let (id, dataset, node) = try row.decode((Int, String, String).self)
                if FileManager.default.fileExists(atPath: "\(root)/state/datasets/\(dataset)/model.json") {
                    victim = (id, dataset, node)
                    return true
                }
            }
            return false
        }
        let killed = try #require(victim)
        let node = try #require(nodes.first { $0.name == killed.node })
        node.kill9()
        try waitFor("another node to take over job \(killed.job)", timeout: 60, nodes: nodes, jobsDatabase: database) {
            try rows(database, """
                SELECT 1 FROM synthd_job_history WHERE job = \(killed.job) AND event = 'claimed' AND node <> \(killed.node)
                """).count == 1
        }
        try node.start()  // it rejoins

        // The database goes away for a few seconds mid-run, and comes back.
        try server.stop()
        sleep(3)
        try server.start()

        try waitFor("every dataset published", timeout: 240, nodes: nodes, jobsDatabase: database) {
            let published = (0..<8).filter { FileManager.default.fileExists(atPath: "\(root)/out/d\($0)/manifest.jsonl") }
            let running = try rows(database, "SELECT 1 FROM synthd_jobs WHERE state IN ('queued', 'running')").count
            return published.count == 8 && running == 0
        }

        // Every dataset trained once and published once.
        for index in 0..<8 {
            let done = try rows(database, "SELECT kind FROM synthd_jobs WHERE dataset = \("d\(index)") AND state = 'done'")
                .map { try $0.decode(String.self) }.sorted()
            #expect(done == ["generate", "train"], "d\(index): jobs done \(done)")
            let generations = try FileManager.default.contentsOfDirectory(atPath: "\(root)/out/.synthd-generations/d\(index)")
            #expect(generations.count == 1, "d\(index): generations \(generations)")
            for entry in ["class0", "class1"] {
                let files = try FileManager.default.contentsOfDirectory(atPath: "\(root)/out/d\(index)/\(entry)")
                #expect(files.count == 4 && files.allSatisfy { $0.hasSuffix(".png") }, "d\(index)/\(entry): \(files)")
                for file in files { _ = try PNG.read(path: "\(root)/out/d\(index)/\(entry)/\(file)") }
            }
        }
        // The killed node's job: its lease expired and another node resumed it from the checkpoint.
        let history = try rows(database, "SELECT event, node, detail FROM synthd_job_history WHERE job = \(killed.job) ORDER BY id")
            .map { try $0.decode((String, String?, String?).self) }
        #expect(history.contains { $0.0 == "lease expired" && ($0.2 ?? "").contains("lease of \(killed.node)") })
        let resumedFrom = history.last { $0.0 == "claimed" }?.2 ?? ""
        #expect(!resumedFrom.hasSuffix("checkpointed step 0"), "resumed from the checkpoint: \(resumedFrom)")
        // The restarted node is back.
        let registered = try NodeRegistry(database: database).nodes()
        #expect(registered.map(\.name) == ["a", "b", "c"])
        #expect(registered.allSatisfy { $0.silentSeconds < 10 && $0.stoppedAt == nil }, "\(registered)")
        for node in nodes {
            #expect(node.process.isRunning, "node \(node.name) exited: \(node.text)")
        }
    }

    /// `synthd drain NODE`: the node's running slice ends, its job goes back to the queue, it
    /// takes no more; another node picks the job up from its checkpoint.
    @Test func aDrainedNodeGivesItsJobBackAndTakesNoMore() throws {
        let server = try PrivatePostgres()
        let root = NSTemporaryDirectory() + "synthd-drain-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/spool", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let url = "\(server.address)".replacingOccurrences(of: "&port=5432", with: "")
        let a = try Node(name: "a", root: root, database: url, minutes: 2, sliceMinutes: 0.05)
        let b = try Node(name: "b", root: root, database: url, minutes: 2, sliceMinutes: 0.05)
        try a.start()
        defer { a.stop(); b.stop() }
        let database = server.connect(timeout: 5)
        try Self.addDataset(root + "/staging/pets", seed: 1)
        try waitFor("node a to join", timeout: 60, nodes: [a], jobsDatabase: database) {
            (try? NodeRegistry(database: database).nodes().count) == 1
        }
        try FileManager.default.moveItem(atPath: root + "/staging/pets", toPath: root + "/spool/pets")
        try waitFor("node a to train", timeout: 60, nodes: [a], jobsDatabase: database) {
            try rows(database, "SELECT 1 FROM synthd_jobs WHERE state = 'running' AND node = 'a'").count == 1
        }

        let drain = Process()
        drain.executableURL = URL(fileURLWithPath: Self.binary)
        drain.arguments = ["drain", "a", "--config", a.config]
        try drain.run()
        drain.waitUntilExit()
        #expect(drain.terminationStatus == 0)
        try waitFor("node a to give the job back", timeout: 60, nodes: [a], jobsDatabase: database) {
            try rows(database, "SELECT 1 FROM synthd_job_history WHERE event = 'requeued' AND node = 'a'").count >= 1
        }
        sleep(3)
        let claimsOfA = try rows(database, "SELECT 1 FROM synthd_job_history WHERE event = 'claimed' AND node = 'a'").count
        #expect(claimsOfA == 1, "a draining node takes no more jobs")
        #expect(try NodeRegistry(database: database).nodes().first?.draining == true)
        let status = try Self.synthd(["status", "--config", a.config])
        #expect(status.contains("a: cpu") && status.contains("draining") && status.contains("queue (1 waiting): train pets")
                && status.contains("pets: queued"), "\(status)")

        try b.start()
        try waitFor("node b to take the job over", timeout: 60, nodes: [a, b], jobsDatabase: database) {
            try rows(database, "SELECT 1 FROM synthd_job_history WHERE event = 'claimed' AND node = 'b'").count == 1
        }
        let resumed = try rows(database, "SELECT detail FROM synthd_job_history WHERE event = 'claimed' AND node = 'b'")
            .first?.decode(String?.self) ?? ""
        #expect(!resumed.hasSuffix("checkpointed step 0"), "from the checkpoint node a left: \(resumed)")

        // A reload that does not read shows under its node (the nodes share the state folder,
        // where one machine keeps it), until a reload reads.
        let good = try String(contentsOfFile: a.config, encoding: .utf8)
        try good.replacingOccurrences(of: "minutes = 2", with: "minuets = 2").write(toFile: a.config, atomically: true, encoding: .utf8)
        kill(a.process.processIdentifier, SIGHUP)
        try waitFor("node a to say its reload failed", timeout: 30, nodes: [a, b], jobsDatabase: database) {
            try NodeRegistry(database: database).nodes().first { $0.name == "a" }?.reloadFailed != nil
        }
        let failed = try Self.synthd(["status", "--config", b.config])
        #expect(failed.contains("draining, idle\n    configuration not reloaded at ")
                && failed.contains("unknown key 'minuets' in [training] (did you mean 'minutes'?)\n      (mend the file and reload again)\n"),
                "\(failed)")
        try good.write(toFile: a.config, atomically: true, encoding: .utf8)
        kill(a.process.processIdentifier, SIGHUP)
        try waitFor("node a to say its reload read", timeout: 30, nodes: [a, b], jobsDatabase: database) {
            try NodeRegistry(database: database).nodes().first { $0.name == "a" }?.reloadFailed == nil
        }
    }

    /// `synthd forget` in a cluster: refused while the dataset is in the spool; once it has
    /// left, its state folder, outputs and record in the database are deleted, and the
    /// nodes go on without it.
    @Test func aDatasetThatLeftIsForgottenWithItsRecord() throws {
        let server = try PrivatePostgres()
        let root = NSTemporaryDirectory() + "synthd-forget-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/spool", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let url = "\(server.address)".replacingOccurrences(of: "&port=5432", with: "")
        let a = try Node(name: "a", root: root, database: url)
        try a.start()
        defer { a.stop() }
        let database = server.connect(timeout: 5)
        try waitFor("node a to join", timeout: 60, nodes: [a], jobsDatabase: database) {
            (try? NodeRegistry(database: database).nodes().count) == 1
        }
        // Dropped as an archive: a node unpacks it into the shared spool.
        try Self.addDataset(root + "/staging/pets", seed: 1)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/tar")
        tar.arguments = ["-cf", root + "/pets.tar", "-C", root + "/staging", "pets"]
        try tar.run()
        tar.waitUntilExit()
        try FileManager.default.moveItem(atPath: root + "/pets.tar", toPath: root + "/spool/pets.tar")
        // `synthd wait` reads the cluster's records and nodes: unpacked, trained, published.
        let waited = try Self.run(["wait", "pets", "--quiet", "--timeout", "2m", "--config", a.config])
        #expect(waited.status == 0 && waited.output == root + "/out/pets\n", "\(waited)\n\(a.text)")
        try waitFor("pets published", timeout: 120, nodes: [a], jobsDatabase: database) {
            let live = try rows(database, "SELECT 1 FROM synthd_jobs WHERE state IN ('queued', 'running')")
            return FileManager.default.fileExists(atPath: root + "/out/pets/manifest.jsonl") && live.isEmpty
        }
        // `synthd check` reads the cluster's record of the dataset (there is no daemon.json).
        let checked = try Self.synthd(["check", root + "/spool/pets", "--config", a.config])
        #expect(checked.contains("model: the daemon's 32x32 model of ") && checked.contains(", trained on these files: nothing to train"),
                "\(checked)")
        let refused = try Self.synthd(["forget", "pets", "--config", a.config])
        #expect(refused.contains("still in the spool"), "\(refused)")
        #expect(FileManager.default.fileExists(atPath: root + "/state/datasets/pets/model.json"))

        let unpacked = try Self.synthd(["status", "--config", a.config])
        #expect(unpacked.contains("archives dropped into the spool:\n  pets.tar: unpacked into \(root)/spool/pets (16 images"), "\(unpacked)")
        try FileManager.default.removeItem(atPath: root + "/spool/pets")
        try waitFor("pets recorded as removed", timeout: 60, nodes: [a], jobsDatabase: database) {
            let runtime = try rows(database, "SELECT runtime->>'phase' FROM synthd_datasets WHERE name = 'pets'")
            return try runtime.first?.decode(String?.self) == "removed"
        }
        let left = try Self.run(["wait", "pets", "--timeout", "60", "--config", a.config])
        #expect(left.status == 1 && left.output.contains("pets.tar was unpacked into \(root)/spool/pets, which has left the spool since"),
                "\(left)")
        // A forget cut short on another node left a folder aside, and a job of the dataset is
        // still stopping there: the record must wait, the folder need not.
        let aside = root + "/state/datasets/.pets.forgotten.tmp.999999"
        try FileManager.default.createDirectory(atPath: aside + "/samples", withIntermediateDirectories: true)
        _ = try database.query("""
            INSERT INTO synthd_jobs (dataset, kind, state, node, lease_expires_at)
            VALUES ('pets', 'train', 'cancelled', 'z', now() + interval '1 hour')
            """, "a job still stopping")
        let waiting = try Self.synthd(["forget", "pets", "--config", a.config])
        #expect(waiting.contains("is stopping on node z; try again"), "\(waiting)")
        #expect(!FileManager.default.fileExists(atPath: aside), "the interrupted deletion finished")
        #expect(FileManager.default.fileExists(atPath: root + "/state/datasets/pets/model.json"), "the model kept")
        _ = try database.query("DELETE FROM synthd_jobs WHERE node = 'z'", "the job stopped")
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        let forgotten = try Self.synthd(["forget", "pets", "--config", a.config])
        #expect(forgotten.contains("pets: what an interrupted deletion left and its model and state and 1 output generation deleted"),
                "\(forgotten)")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/datasets/pets"))
        #expect(!FileManager.default.fileExists(atPath: root + "/out/pets"))
        #expect(try rows(database, "SELECT 1 FROM synthd_datasets WHERE name = 'pets'").isEmpty)
        #expect(try rows(database, "SELECT 1 FROM synthd_jobs WHERE dataset = 'pets'").isEmpty)
        let again = try Self.synthd(["forget", "pets", "--config", a.config])
        #expect(again.contains("no dataset 'pets'"), "\(again)")
        sleep(3)
        #expect(try rows(database, "SELECT 1 FROM synthd_datasets WHERE name = 'pets'").isEmpty, "no node wrote the record back")
        #expect(a.process.isRunning, "node a exited: \(a.text)")
        let status = try Self.synthd(["status", "--config", a.config])
        #expect(!status.contains("pets:"), "\(status)")
        let archives = try Self.synthd(["status", "--archives", "--config", a.config])
        #expect(archives.hasPrefix("pets.tar: unpacked into \(root)/spool/pets") && archives.contains("has left the spool since"), "\(archives)")
    }
}
