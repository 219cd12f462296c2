import CUDA
import Engine
import Foundation
import GAN
import Imaging

/// The daemon's configuration (`config/synthd.toml` in a checkout, `/etc/synthd/synthd.toml`
/// installed). Every key is optional and has a default; an unknown table or key, or a value of
/// the wrong type or range, is an error naming the file, the line, the key and the reason.
public struct Configuration: Equatable, Sendable {
    // [paths] (relative paths are resolved against the configuration file's folder)
    public var spool = "spool"
    public var output = "out"
    public var state = "state"
    // [watch]
    public var settleSeconds = 30.0
    /// Seconds between periodic scans of the whole spool; 0: only when inotify cannot watch
    /// every folder (then every 60 s).
    public var pollSeconds = 0.0
    /// Whether a `.zip`, `.tar`, `.tar.gz` or `.tgz` dropped into the spool is unpacked
    /// beside it as the dataset named after it (`ArchiveIntake`).
    public var unpackArchives = true
    /// The most one archive's images may take once unpacked (a zip bomb stops there).
    public var maxUnpackedGigabytes = 50.0
    // [training]
    public var trainingMinutes = 20.0
    /// Budget of a fine-tuning round (images or classes added to a trained dataset).
    public var fineTuneMinutes = 5.0
    /// The most passes over the dataset's images one training round makes (a new model's
    /// training, a fine-tuning round), whichever ends first with the minutes, for a model that
    /// trains without augmentation; 0: no cap (why: `TrainingBudget.defaultMaxEpochs`).
    public var maxEpochs = TrainingBudget.defaultMaxEpochs
    public var checkpointSeconds = 60.0
    public var resolution = 32
    public var batch = 64
    public var seed = 0
    public var augmentation = AugmentationPolicy.auto
    public var conditioning = GeneratorConditioning.standard
    public var discriminator = DiscriminatorNormalization.standard
    /// Whether new models hold about one real image in ten out of training and generate from
    /// the checkpoint chosen on them (`TrainingOptions.holdOut`; off by default, see there).
    public var holdOut = false
    /// The mode-seeking term in new models' G loss (`ModeSeekingPolicy`: "auto", the default,
    /// gives it to small datasets; or a weight, 0 for off).
    public var modeSeeking = ModeSeekingPolicy.auto
    // [generation]
    public var policy = GenerationPolicy.balance
    public var perClass = 1000
    public var balanceTo = 0
    /// With `balance`: after topping up, every class gets this share of the balanced class
    /// size on top, so that a dataset that is already balanced is enlarged too (see
    /// `GenerationPlan`).
    public var enlarge = 0.5
    /// With `balance`: no class gets more synthetic images than this many per real image of
    /// it; 0: no cap. A class of 20 images among classes of 200 is drawn badly, and topped up
    /// to 300 it teaches a classifier the generator's version of the class: on such a dataset
    /// the uncapped top-up cost 1.5 points and 0.5 per real image 0.1 (docs/quality.md). A
    /// balanced dataset's `enlarge` share of 0.5 is within the cap.
    public var maxSyntheticPerReal = 0.5
    /// Generations kept per dataset: the current one plus earlier ones (see OutputTree).
    public var keepGenerations = 2
    /// Standard deviation of the latent vectors (see `Sampler.temperature`); nil: 1.5 with the
    /// class check for a model of 10,000 images or more, else 1 (`Sampler.defaultTemperature`).
    public var temperature: Double?
    /// How far each written image is moved at random, as a share of its side
    /// (`SyntheticWriter.maxShift`); 0: written as drawn.
    public var shift = SyntheticWriter.defaultShift
    /// The longest a written image's shorter side may be (`SyntheticWriter.maxShortSide`); 0:
    /// the dataset's size.
    public var maxShortSide = SyntheticWriter.defaultMaxShortSide
    /// Whether generation draws again the samples the judge puts in another class (`Judge`).
    public var classCheck = true
    /// Whether the class check also rejects near-copies of real images (`NearCopies`).
    public var dropNearCopies = true
    // [service]
    public var concurrency = 1
    /// Minutes a training job runs before another dataset's job gets its turn.
    public var sliceMinutes = 10.0
    /// Threads for the numeric kernels of one job; 0: the cores divided by `concurrency`.
    public var threads = 0
    public var nice = 10
    /// Days after which a dataset that left the spool is forgotten: its model, state and
    /// outputs deleted (`Forgetting`); 0: kept for ever.
    public var forgetRemovedAfterDays = 0.0
    /// A running job that shows no progress for this long stops the watchdog pings (systemd
    /// then restarts synthd).
    public var stallMinutes = 30.0
    /// Set from the environment by the fault-injection tests only (`InjectedFault`).
    public var injectedFault: InjectedFault?
    /// Where jobs compute: "auto", "cpu", "cuda" or "cuda:N" (see `DeviceRequest`).
    public var device = "auto"
    /// How a GPU's matrix products round their operands: TF32 tensor cores (the default, as
    /// PyTorch's convolutions), plain FP32 (slower by a third) or bfloat16 tensor cores (twice
    /// TF32's peak; as `--bf16`); docs/cuda.md says what each changes. Ignored on the CPU.
    /// `tf32 = false`, the key's older spelling, is `gpu_products = "fp32"`.
    public var gpuProducts = GPUProducts.tensorFloat32
    /// On a CPU with AMX (Intel Sapphire Rapids and later) or AVX512-BF16 (AMD Zen 4),
    /// bfloat16 products with FP32 sums; elsewhere FP32 with training's 4/2/1 convolutions by
    /// Winograd (`ComputeContext.winogradConvolutions`). false: plain FP32 (docs/performance.md
    /// says what each costs). Ignored on a GPU.
    public var bfloat16 = true
    /// A folder searched first for CUDA's libraries ("" : the usual places).
    public var cudaLibraries = ""
    /// The most images one generation of a dataset may write: a dataset's own synthd.toml
    /// cannot ask for more (it may not set this key).
    public var maxImagesPerDataset = 1_000_000
    public var maxImageMegapixels = 16
    public var maxFileMegabytes = 64
    /// The two above, as the image readers take them.
    public var imageLimits: ImageLimits { ImageLimits(maxFileBytes: maxFileMegabytes << 20, maxPixels: maxImageMegapixels << 20) }
    // [cluster] (see docs/cluster.md)
    /// The cluster's PostgreSQL (`postgresql://USER@HOST/DATABASE`); "" : a single machine,
    /// its queue in the state folder. Never with a password in it (`passwordFile`).
    public var database = ""
    /// A file holding the database password ("" : `SYNTHD_DATABASE_PASSWORD`, `PGPASSWORD`).
    public var passwordFile = ""
    /// This node's name in the cluster ("" : the host name).
    public var node = ""
    /// Seconds a job's lease lasts without renewal: how long a dead node's job waits before
    /// another node takes it (renewed every quarter of it).
    public var leaseSeconds = 30.0

    /// Whether a database address carries a password (`scheme://user:password@...`).
    public static func hasPassword(_ address: String) -> Bool {
        guard let scheme = address.range(of: "://"), let at = address[scheme.upperBound...].firstIndex(of: "@") else { return false }
        return address[scheme.upperBound..<at].contains(":")
    }

    /// Whether this daemon is one node of a cluster.
    public var isClustered: Bool { !database.isEmpty }

    /// The name this daemon has in a cluster: `[cluster] node`, else the host name.
    public var nodeName: String { node.isEmpty ? ProcessInfo.processInfo.hostName : node }

    /// Seconds between scans of the whole spool: as configured; in a cluster at least every
    /// 10 s (inotify does not see what other machines write on shared storage); nil: none.
    public var effectivePollSeconds: Double? {
        if pollSeconds > 0 { return pollSeconds }
        return isClustered ? 10 : nil
    }

    public enum GenerationPolicy: String, Sendable, CaseIterable {
        case balance
        case perClass = "per-class"
    }

    public init() {}

    public struct Error: Swift.Error, Equatable, CustomStringConvertible {
        public let path: String
        public let line: Int?
        public let reason: String
        /// The file's further problems, in the order of their lines: a file is read to its end,
        /// so that whoever edits it learns of every mistake at once, not one per restart.
        public var others: [Error] = []
        public var description: String {
            ([self.withoutOthers] + others).map { problem in
                problem.line.map { "\(problem.path):\($0): \(problem.reason)" } ?? "\(problem.path): \(problem.reason)"
            }.joined(separator: "\n")
        }
        var withoutOthers: Error { Error(path: path, line: line, reason: reason) }
        /// The exit status for configuration errors (EX_CONFIG in sysexits.h).
        public static let exitStatus: Int32 = 78
    }

    /// Reads and validates a configuration file.
    public static func load(path: String) throws(Error) -> Configuration {
        var configuration = try parse(readText(path), path: path)
        let folder = (path as NSString).deletingLastPathComponent
        for keyPath in [\Configuration.spool, \.output, \.state] where !configuration[keyPath: keyPath].hasPrefix("/") {
            configuration[keyPath: keyPath] = absolute(((folder.isEmpty ? "." : folder) as NSString)
                .appendingPathComponent(configuration[keyPath: keyPath]))
        }
        return configuration
    }

    /// The file's text. Only a regular file is read (see `readFile`): a FIFO named
    /// `synthd.toml` in a dataset must not block the daemon.
    static func readText(_ path: String) throws(Error) -> String {
        do { return try readTextFile(path: path, maxBytes: 1 << 20) } catch {
            throw Error(path: path, line: nil, reason: "cannot read: \(error.reason)")
        }
    }

    /// Absolute, with `.` and `..` resolved.
    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// The absolute path with every symbolic link in its existing part resolved (the part
    /// not made yet appended as it is).
    public static func resolved(_ path: String) -> String {
        var head = absolute(path), tail: [String] = []
        while head != "/" {
            if let real = realpath(head, nil) {
                defer { free(real) }
                return ([String(cString: real)] + tail.reversed()).joined(separator: "/").replacingOccurrences(of: "//", with: "/")
            }
            tail.append((head as NSString).lastPathComponent)
            head = (head as NSString).deletingLastPathComponent
        }
        return "/" + tail.reversed().joined(separator: "/")
    }

    /// Refuses folder layouts that would feed synthd its own files: an output or state folder
    /// inside the spool would be watched and trained on as a dataset, and a spool inside them
    /// would be written over; a state folder inside the output tree would be read as a class
    /// by every classifier pointed at it. Paths are compared with their symbolic links
    /// resolved (`output = /data/out` with `/data/out` a link into the spool passed the
    /// textual check). `source` names where the paths came from.
    public func checkFolders(source: String) throws(Error) {
        func inside(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b.hasSuffix("/") ? b : b + "/") }
        let spool = Self.absolute(self.spool), output = Self.absolute(self.output), state = Self.absolute(self.state)
        let real = (spool: Self.resolved(spool), output: Self.resolved(output), state: Self.resolved(state))
        func shown(_ path: String, _ resolved: String) -> String { path == resolved ? path : "\(path), that is \(resolved)" }
        for (name, path, resolved) in [("output", output, real.output), ("state", state, real.state)] {
            if inside(resolved, real.spool) || inside(real.spool, resolved) {
                throw Error(path: source, line: nil, reason: "[paths] \(name) (\(shown(path, resolved))) and spool "
                    + "(\(shown(spool, real.spool))) must not contain one another: synthd would train on its own files")
            }
        }
        if inside(real.state, real.output) || inside(real.output, real.state) {
            throw Error(path: source, line: nil, reason: "[paths] state (\(shown(state, real.state))) and output "
                + "(\(shown(output, real.output))) must not contain one another: the output tree is read as classes by "
                + "whoever trains on it, and must hold only synthd's images")
        }
    }

    /// The tables a dataset's own `synthd.toml` may set.
    public static let datasetTables: Set<String> = ["training", "generation"]
    public static let allTables: Set<String> = ["paths", "watch", "training", "generation", "service", "cluster"]

    /// The configuration for one dataset: `base` with the `[training]` and `[generation]` keys
    /// of `<dataset>/synthd.toml`, when that file exists.
    public static func forDataset(at folder: String, base: Configuration) throws(Error) -> Configuration {
        let path = folder + "/synthd.toml"
        let text: String
        do { text = try readTextFile(path: path, maxBytes: 1 << 20) } catch {
            if error.errno == ENOENT { return base }
            throw Error(path: path, line: nil, reason: "cannot read: \(error.reason)")
        }
        return try parse(text, path: path, base: base, tables: datasetTables)
    }

    /// Parses configuration text; `path` names it in errors. Relative paths stay relative.
    /// Only `tables` may appear (a dataset's file may not move the spool, say).
    public static func parse(_ text: String, path: String, base: Configuration = Configuration(),
                             tables allowed: Set<String> = allTables) throws(Error) -> Configuration {
        let tables: [String: [String: TOML.Entry]]
        do { tables = try TOML.parse(text) } catch { throw Error(path: path, line: error.line, reason: error.reason) }
        var c = base
        var reader = Reader(path: path, tables: tables, known: allowed)
        read(&reader, into: &c)
        reader.finish()
        if let error = reader.error { throw error }
        return c
    }

    /// Every key of every table, as `read` asks for them: what a dataset's file, which reads
    /// only two tables, may have meant by a key of another.
    static let keysByTable: [String: [String]] = {
        var reader = Reader(path: "", tables: [:], known: allTables), c = Configuration()
        read(&reader, into: &c)
        return reader.asked
    }()

    /// Reads every key `reader` knows into `c`, noting each problem in the reader.
    static func read(_ reader: inout Reader, into c: inout Configuration) {
        reader.table("paths") { (r: inout Reader) in
            r.string("spool", into: &c.spool)
            r.string("output", into: &c.output)
            r.string("state", into: &c.state)
        }
        reader.table("watch") { (r: inout Reader) in
            r.number("settle_seconds", into: &c.settleSeconds, range: 0...86400)
            r.number("poll_seconds", into: &c.pollSeconds, range: 0...86400)
            r.boolean("unpack_archives", into: &c.unpackArchives)
            r.number("max_unpacked_gigabytes", into: &c.maxUnpackedGigabytes, range: 0.001...1_000_000)
        }
        reader.table("training") { (r: inout Reader) in
            r.number("minutes", into: &c.trainingMinutes, range: 0.001...100_000)
            r.number("finetune_minutes", into: &c.fineTuneMinutes, range: 0.001...100_000)
            r.number("max_epochs", into: &c.maxEpochs, range: 0...1_000_000)
            r.number("checkpoint_seconds", into: &c.checkpointSeconds, range: 1...86400)
            r.integer("resolution", into: &c.resolution, allowed: [32, 64])
            r.integer("batch", into: &c.batch, range: 2...4096)
            r.integer("seed", into: &c.seed, range: 0...Int.max)
            var augmentation = c.augmentation.rawValue
            r.string("augmentation", into: &augmentation, allowed: AugmentationPolicy.allCases.map(\.rawValue))
            c.augmentation = AugmentationPolicy(rawValue: augmentation)!
            var conditioning = c.conditioning.rawValue
            r.string("conditioning", into: &conditioning, allowed: GeneratorConditioning.allCases.map(\.rawValue))
            c.conditioning = GeneratorConditioning(rawValue: conditioning)!
            var discriminator = c.discriminator.rawValue
            r.string("discriminator", into: &discriminator, allowed: DiscriminatorNormalization.allCases.map(\.rawValue))
            c.discriminator = DiscriminatorNormalization(rawValue: discriminator)!
            r.boolean("hold_out", into: &c.holdOut)
            r.modeSeeking("mode_seeking", into: &c.modeSeeking)
        }
        reader.table("generation") { (r: inout Reader) in
            var policy = c.policy.rawValue
            r.string("policy", into: &policy, allowed: GenerationPolicy.allCases.map(\.rawValue))
            c.policy = GenerationPolicy(rawValue: policy)!
            r.integer("per_class", into: &c.perClass, range: 1...10_000_000)
            r.integer("balance_to", into: &c.balanceTo, range: 0...10_000_000)
            r.number("enlarge", into: &c.enlarge, range: 0...100)
            r.number("max_synthetic_per_real", into: &c.maxSyntheticPerReal, range: 0...1000)
            r.integer("keep_generations", into: &c.keepGenerations, range: 1...1000)
            if let temperature = r.number("temperature", range: 0.01...3) { c.temperature = temperature }
            r.number("shift", into: &c.shift, range: SyntheticWriter.shiftRange)
            r.integer("max_short_side", into: &c.maxShortSide, range: 0...65_536)
            r.boolean("class_check", into: &c.classCheck)
            r.boolean("drop_near_copies", into: &c.dropNearCopies)
        }
        reader.table("service") { (r: inout Reader) in
            r.integer("concurrency", into: &c.concurrency, range: 1...64)
            r.number("slice_minutes", into: &c.sliceMinutes, range: 0.001...100_000)
            r.integer("threads", into: &c.threads, range: 0...1024)
            r.integer("nice", into: &c.nice, range: 0...19)
            r.number("stall_minutes", into: &c.stallMinutes, range: 1...10_000)
            r.number("forget_removed_after_days", into: &c.forgetRemovedAfterDays, range: 0...100_000)
            r.string("device", into: &c.device, where: { DeviceRequest($0) != nil }, expected: DeviceRequest.help)
            var products = c.gpuProducts.rawValue
            r.string("gpu_products", into: &products, allowed: GPUProducts.allCases.map(\.rawValue))
            c.gpuProducts = GPUProducts(rawValue: products)!
            if let tf32 = r.optionalBoolean("tf32") {
                if r.entry("gpu_products") == nil {
                    c.gpuProducts = tf32 ? .tensorFloat32 : .float32
                } else {
                    r.problem(at: r.entry("tf32")?.line, "[service] tf32 is the older spelling of gpu_products: set only gpu_products")
                }
            }
            r.boolean("bfloat16", into: &c.bfloat16)
            r.string("cuda_libraries", into: &c.cudaLibraries)
            r.integer("max_images_per_dataset", into: &c.maxImagesPerDataset, range: 1...1_000_000_000)
            r.integer("max_image_megapixels", into: &c.maxImageMegapixels, range: 1...1024)
            r.integer("max_file_megabytes", into: &c.maxFileMegabytes, range: 1...4096)
        }
        reader.table("cluster") { (r: inout Reader) in
            r.string("database", into: &c.database, where: { !Self.hasPassword($0) },
                         expected: "an address without a password (put the password in the file named by password_file)")
            r.string("password_file", into: &c.passwordFile)
            r.string("node", into: &c.node, where: { $0.isEmpty || SafeName.problem(with: $0) == nil }, expected: "a plain name (letters, digits, - _ .)")
            r.number("lease_seconds", into: &c.leaseSeconds, range: 3...3600)
        }
    }

    /// Reads typed keys and remembers which were asked for and which were used, so that the rest
    /// can be refused with a hint; collects every problem instead of stopping at the first.
    struct Reader {
        let path: String
        let tables: [String: [String: TOML.Entry]]
        /// The tables this file may hold.
        let known: Set<String>
        var used: Set<String> = []
        /// Every key each table was asked for, present or not: what a mistyped key may have meant.
        var asked: [String: [String]] = [:]
        var problems: [Error] = []
        var table = ""

        init(path: String, tables: [String: [String: TOML.Entry]], known: Set<String>) {
            self.path = path
            self.tables = tables
            self.known = known
        }

        /// All the problems found as one error (the first line's first), nil when none.
        var error: Error? {
            let sorted = problems.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
            guard var first = sorted.first else { return nil }
            first.others = Array(sorted.dropFirst())
            return first
        }

        mutating func problem(at line: Int?, _ reason: String) {
            problems.append(Error(path: path, line: line, reason: reason))
        }

        mutating func table(_ name: String, _ body: (inout Reader) -> Void) {
            guard known.contains(name) else { return }
            table = name
            body(&self)
        }

        mutating func entry(_ key: String) -> TOML.Entry? {
            if asked[table]?.contains(key) != true { asked[table, default: []].append(key) }
            guard let entry = tables[table]?[key] else { return nil }
            used.insert(table + "." + key)
            return entry
        }

        mutating func wrongType(_ key: String, _ entry: TOML.Entry, expected: String) {
            problem(at: entry.line, "[\(table)] \(key) must be \(expected), not \(entry.value.typeName)")
        }

        mutating func string(_ key: String, into target: inout String, allowed: [String]? = nil) {
            guard let entry = entry(key) else { return }
            guard case .string(let value) = entry.value else { return wrongType(key, entry, expected: "a string") }
            if let allowed, !allowed.contains(value) {
                return problem(at: entry.line, "[\(table)] \(key) must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), not \"\(value)\"")
            }
            target = value
        }

        /// A string that `isValid` accepts; `expected` says what is, in the error.
        mutating func string(_ key: String, into target: inout String, where isValid: (String) -> Bool, expected: String) {
            guard let entry = entry(key) else { return }
            guard case .string(let value) = entry.value else { return wrongType(key, entry, expected: "a string") }
            guard isValid(value) else { return problem(at: entry.line, "[\(table)] \(key) must be \(expected), not \"\(value)\"") }
            target = value
        }

        mutating func integer(_ key: String, into target: inout Int, range: ClosedRange<Int>? = nil, allowed: [Int]? = nil) {
            guard let entry = entry(key) else { return }
            guard case .integer(let value) = entry.value else { return wrongType(key, entry, expected: "an integer") }
            if let range, !range.contains(value) {
                return problem(at: entry.line, "[\(table)] \(key) must be in \(range.lowerBound)...\(range.upperBound), not \(value)")
            }
            if let allowed, !allowed.contains(value) {
                return problem(at: entry.line, "[\(table)] \(key) must be one of \(allowed), not \(value)")
            }
            target = value
        }

        mutating func number(_ key: String, into target: inout Double, range: ClosedRange<Double>) {
            if let value = number(key, range: range) { target = value }
        }

        /// The key's number, nil when the key is absent or wrong.
        mutating func number(_ key: String, range: ClosedRange<Double>) -> Double? {
            guard let entry = entry(key) else { return nil }
            let value: Double
            switch entry.value {
            case .integer(let i): value = Double(i)
            case .float(let f): value = f
            default:
                wrongType(key, entry, expected: "a number")
                return nil
            }
            guard range.contains(value) else {
                problem(at: entry.line, "[\(table)] \(key) must be in \(range.lowerBound)...\(range.upperBound), not \(value)")
                return nil
            }
            return value
        }

        /// "auto" or a weight (`ModeSeekingPolicy`).
        mutating func modeSeeking(_ key: String, into target: inout ModeSeekingPolicy) {
            guard let entry = entry(key) else { return }
            let policy: ModeSeekingPolicy?
            let shown: String
            switch entry.value {
            case .string(let text):
                policy = text == "auto" ? .auto : nil
                shown = "\"\(text)\""
            case .integer(let weight):
                policy = ModeSeekingPolicy(weight: Double(weight))
                shown = "\(weight)"
            case .float(let weight):
                policy = ModeSeekingPolicy(weight: weight)
                shown = "\(weight)"
            default: return wrongType(key, entry, expected: "\"auto\" or a number")
            }
            guard let policy else {
                return problem(at: entry.line, "[\(table)] \(key) must be \"auto\" or a weight in 0...\(Int(ModeSeekingPolicy.largestWeight)), not \(shown)")
            }
            target = policy
        }

        mutating func boolean(_ key: String, into target: inout Bool) {
            if let value = optionalBoolean(key) { target = value }
        }

        /// The key's value, nil when the key is absent or wrong.
        mutating func optionalBoolean(_ key: String) -> Bool? {
            guard let entry = entry(key) else { return nil }
            guard case .boolean(let value) = entry.value else {
                wrongType(key, entry, expected: "true or false")
                return nil
            }
            return value
        }

        /// Refuses unknown tables and keys, each with what it may have meant.
        mutating func finish() {
            for name in tables.keys.sorted() where !known.contains(name) && name != "" {
                let line = tables[name]!.values.map(\.line).min().map { $0 - 1 }
                if Configuration.allTables.contains(name) {
                    problem(at: line, "table [\(name)] is not allowed here; allowed: " + known.sorted().map { "[\($0)]" }.joined(separator: ", "))
                } else {
                    let hint = ConfigurationHint.closest(to: name, among: known.sorted()).map { " (did you mean [\($0)]?)" } ?? ""
                    problem(at: line, "unknown table [\(name)]\(hint); allowed: " + known.sorted().map { "[\($0)]" }.joined(separator: ", "))
                }
            }
            for (name, entries) in tables where name == "" || known.contains(name) {
                for (key, entry) in entries where !used.contains(name + "." + key) {
                    let place = name.isEmpty ? "outside any table" : "in [\(name)]"
                    problem(at: entry.line, "unknown key '\(key)' \(place)"
                            + ConfigurationHint.forKey(key, in: name, asked: asked, everywhere: Configuration.keysByTable))
                }
            }
        }
    }
}
