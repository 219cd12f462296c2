import CUDA
@testable import Daemon
import Foundation
import GAN
import Imaging
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ConfigurationTests {
    @Test func theRepositoryConfigurationLoadsWithItsDefaults() throws {
        // Tests/DaemonTests/ -> the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let c = try Configuration.load(path: root + "/config/synthd.toml")
        var expected = Configuration()
        expected.spool = root + "/spool"
        expected.output = root + "/out"
        expected.state = root + "/state"
        #expect(c == expected)
    }

    @Test func valuesOfEveryTypeAreRead() throws {
        let c = try Configuration.parse("""
            # comment
            [paths]
            spool = '/srv/spool'   # literal string
            [watch]
            settle_seconds = 2.5
            [training]
            minutes = 1_000
            max_epochs = 0
            resolution = 64
            [generation]
            policy = "per-class"
            per_class = 50
            """, path: "t.toml")
        #expect(c.spool == "/srv/spool" && c.settleSeconds == 2.5 && c.trainingMinutes == 1000 && c.maxEpochs == 0)
        #expect(c.resolution == 64 && c.policy == .perClass && c.perClass == 50)
    }

    @Test(arguments: [
        ("[paths]\nspool = \"a\"\nspol = \"b\"", "t.toml:3: unknown key 'spol' in [paths]"),
        ("[trainng]\nminutes = 3", "t.toml:1: unknown table [trainng]"),
        ("[training]\nminutes = \"ten\"", "t.toml:2: [training] minutes must be a number, not a string"),
        ("[training]\nmax_epochs = -1", "t.toml:2: [training] max_epochs must be in 0.0...1000000.0, not -1.0"),
        ("[training]\nresolution = 48", "t.toml:2: [training] resolution must be one of [32, 64], not 48"),
        ("[generation]\npolicy = \"most\"", "t.toml:2: [generation] policy must be one of \"balance\", \"per-class\", not \"most\""),
        ("[service]\nnice = -5", "t.toml:2: [service] nice must be in 0...19, not -5"),
        ("[watch]\nsettle_seconds = ten", "t.toml:2: 'ten' is not a value (strings need quotes)"),
        ("[training]\nminutes = inf", "t.toml:2: 'inf' is not allowed here: give a finite number"),
        ("[training]\nminutes = -nan", "t.toml:2: '-nan' is not allowed here: give a finite number"),
        ("[paths]\nspool = \"open", "t.toml:2: unterminated string"),
        ("[paths]\nspool.x = 1", "t.toml:2: dotted keys are not supported"),
        ("stray = 1", "t.toml:1: unknown key 'stray' outside any table"),
        ("[cluster]\ndatabase = \"postgresql://synthd:hunter2@db/synthd\"",
         "t.toml:2: [cluster] database must be an address without a password (put the password in the file named by password_file)"),
        ("[cluster]\nlease_seconds = 1", "t.toml:2: [cluster] lease_seconds must be in 3.0...3600.0, not 1.0"),
        ("[cluster]\nnode = \"a/b\"", "t.toml:2: [cluster] node must be a plain name"),
    ])
    func mistakesNameTheFileLineKeyAndReason(text: String, message: String) {
        do {
            _ = try Configuration.parse(text, path: "t.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix(message), "got: \(error.description)")
        }
    }

    /// A file is read to its end: every mistake is named at once, in the order of its lines,
    /// each unknown name with what it may have meant (one restart per mistake is slow when the
    /// daemon runs under systemd).
    @Test func everyMistakeIsNamedAtOnceWithWhatItMayHaveMeant() {
        let text = """
        concurrency = 2
        [service]
        concurency = 2
        Settle-Seconds = 5
        nice = 30
        [trainng]
        minutes = 3
        [training]
        minutes = "ten"
        per_class = 10
        Batch = 32
        frobnicate = 1
        """
        do {
            _ = try Configuration.parse(text, path: "t.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.description.split(separator: "\n") == [
                "t.toml:1: unknown key 'concurrency' outside any table (it belongs in [service])",
                "t.toml:3: unknown key 'concurency' in [service] (did you mean 'concurrency'?)",
                "t.toml:4: unknown key 'Settle-Seconds' in [service] (did you mean 'settle_seconds' in [watch]?)",
                "t.toml:5: [service] nice must be in 0...19, not 30",
                "t.toml:6: unknown table [trainng] (did you mean [training]?); allowed: [cluster], [generation], [paths], [service], [training], [watch]",
                "t.toml:9: [training] minutes must be a number, not a string",
                "t.toml:10: unknown key 'per_class' in [training] (it belongs in [generation])",
                "t.toml:11: unknown key 'Batch' in [training] (did you mean 'batch'?)",
                "t.toml:12: unknown key 'frobnicate' in [training]",
            ])
            #expect(error.line == 1 && error.others.count == 8)
        }
        // A dataset's own file reads only its two tables: a key of another is the daemon's.
        do {
            _ = try Configuration.parse("[training]\nconcurrency = 2\nminuts = 1\nper_class = 5", path: "d.toml", tables: ["training", "generation"])
            Issue.record("accepted")
        } catch {
            #expect(error.description.split(separator: "\n") == [
                "d.toml:2: unknown key 'concurrency' in [training] (a [service] key, which only the daemon's configuration sets)",
                "d.toml:3: unknown key 'minuts' in [training] (did you mean 'minutes'?)",
                "d.toml:4: unknown key 'per_class' in [training] (it belongs in [generation])",
            ])
        }
        #expect(Configuration.keysByTable["service"]?.contains("concurrency") == true && Configuration.keysByTable["paths"] == ["spool", "output", "state"])
    }

    @Test func hintsAreNearSpellingsOnly() {
        #expect(ConfigurationHint.editDistance(Array("kitten"), Array("sitting")) == 3)
        #expect(ConfigurationHint.editDistance(Array(""), Array("abc")) == 3 && ConfigurationHint.editDistance(Array("abc"), Array("abc")) == 0)
        #expect(ConfigurationHint.closest(to: "nic", among: ["nice", "seed"]) == "nice")
        #expect(ConfigurationHint.closest(to: "nc", among: ["nice"]) == nil, "two edits of a short word are another word")
        #expect(ConfigurationHint.closest(to: "BALANCE-TO", among: ["balance_to", "per_class"]) == "balance_to")
        #expect(ConfigurationHint.closest(to: "max_synthetc_per_reel", among: ["max_synthetic_per_real"]) == "max_synthetic_per_real")
        #expect(ConfigurationHint.closest(to: "colour", among: ["resolution", "batch"]) == nil)
    }

    @Test func aClusterTableMakesANodeThatPollsTheSharedSpool() throws {
        let c = try Configuration.parse("""
            [cluster]
            database = "postgresql://synthd@db.example/synthd"
            password_file = "/etc/synthd/db-password"
            node = "gpu-1"
            lease_seconds = 20
            """, path: "t.toml")
        #expect(c.isClustered && c.node == "gpu-1" && c.leaseSeconds == 20 && c.passwordFile == "/etc/synthd/db-password")
        #expect(c.effectivePollSeconds == 10, "inotify does not see other machines' writes")
        #expect(Configuration().effectivePollSeconds == nil && !Configuration().isClustered)
    }

    @Test func missingFileIsAnError() {
        #expect(throws: Configuration.Error.self) { try Configuration.load(path: "/nonexistent/synthd.toml") }
        #expect(Configuration.Error.exitStatus == 78)
    }

    @Test func aDatasetFileOverridesTrainingAndGenerationOnly() throws {
        let folder = NSTemporaryDirectory() + "synthd-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var base = Configuration()
        base.perClass = 10
        base.trainingMinutes = 3
        #expect(try Configuration.forDataset(at: folder, base: base) == base, "no file: the main configuration")

        try "[training]\nminutes = 1.5\n[generation]\npolicy = \"per-class\"\n".write(toFile: folder + "/synthd.toml", atomically: true, encoding: .utf8)
        let own = try Configuration.forDataset(at: folder, base: base)
        #expect(own.trainingMinutes == 1.5 && own.policy == .perClass && own.perClass == 10)

        try "[training]\nbatch = 16\n\n[paths]\nspool = \"/\"\n".write(toFile: folder + "/synthd.toml", atomically: true, encoding: .utf8)
        do {
            _ = try Configuration.forDataset(at: folder, base: base)
            Issue.record("a dataset file moved the spool")
        } catch {
            #expect(error.description == "\(folder)/synthd.toml:4: table [paths] is not allowed here; allowed: [generation], [training]")
        }
    }

    /// A FIFO named synthd.toml in a dataset: refused at once with its path, never waited on
    /// (the scheduler reads dataset files on its own loop).
    @Test func aDatasetFileThatIsAFIFOIsAnErrorNotAHang() throws {
        let folder = NSTemporaryDirectory() + "synthd-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(mkfifo(folder + "/synthd.toml", 0o644) == 0)
        do {
            _ = try Configuration.forDataset(at: folder, base: Configuration())
            Issue.record("a FIFO was read as a configuration")
        } catch {
            #expect(error.description == "\(folder)/synthd.toml: cannot read: a FIFO (named pipe), not a regular file; not read")
        }
        #expect(throws: Configuration.Error.self) { try Configuration.load(path: folder + "/synthd.toml") }
    }

    @Test func theDeviceIsASetting() throws {
        #expect(Configuration().device == "auto")
        let c = try Configuration.parse("[service]\ndevice = \"cuda:1\"\ncuda_libraries = \"/opt/cuda/lib\"\n", path: "t.toml")
        #expect(c.device == "cuda:1" && c.cudaLibraries == "/opt/cuda/lib")
        do {
            _ = try Configuration.parse("[service]\ndevice = \"gpu\"\n", path: "t.toml")
            Issue.record("device = gpu accepted")
        } catch {
            #expect(error.description == "t.toml:2: [service] device must be auto, cpu, cuda or cuda:N, not \"gpu\"")
        }
    }

    /// New models hold images out for checkpoint selection with `[training] hold_out = true`,
    /// which a dataset's own synthd.toml may also say.
    @Test func holdingImagesOutIsASetting() throws {
        #expect(!Configuration().holdOut)
        #expect(try Configuration.parse("[training]\nhold_out = true", path: "t.toml").holdOut)
        #expect { try Configuration.parse("[training]\nhold_out = 10", path: "t.toml") } throws: {
            String(describing: $0).contains("[training] hold_out must be true or false")
        }
    }

    /// The mode-seeking term's weight for new models, `[training] mode_seeking`, which a
    /// dataset's own synthd.toml may also set; a weight below 0 or not a number is refused.
    @Test func modeSeekingIsASetting() throws {
        #expect(Configuration().modeSeeking == .auto)
        #expect(try Configuration.parse("[training]\nmode_seeking = 0.5", path: "t.toml").modeSeeking == .weight(0.5))
        #expect(try Configuration.parse("[training]\nmode_seeking = 0", path: "t.toml").modeSeeking == .weight(0))
        #expect(try Configuration.parse("[training]\nmode_seeking = 3\n", path: "t.toml", base: Configuration())
            .modeSeeking.weight(forImages: 1_000_000) == 3)
        var given = Configuration()
        given.modeSeeking = .weight(2)
        #expect(try Configuration.parse("[training]\nmode_seeking = \"auto\"", path: "t.toml", base: given).modeSeeking == .auto)
        for (wrong, said) in [("-1", "not -1"), ("\"on\"", "not \"on\""), ("101", "not 101"), ("true", "not true or false"), ("\"1\"", "not \"1\"")] {
            #expect { try Configuration.parse("[training]\nmode_seeking = \(wrong)", path: "t.toml") } throws: {
                let text = String(describing: $0)
                return text.hasPrefix("t.toml:2: [training] mode_seeking must be \"auto\" or a") && text.contains(said)
            }
        }
        let dataset = try Configuration.parse("[training]\nmode_seeking = 2", path: "d/synthd.toml", tables: Configuration.datasetTables)
        #expect(dataset.modeSeeking == .weight(2))
    }

    /// bfloat16 products on a CPU with AMX unless `[service] bfloat16 = false`.
    @Test func bfloat16IsASetting() throws {
        #expect(Configuration().bfloat16)
        #expect(try !Configuration.parse("[service]\nbfloat16 = false", path: "t.toml").bfloat16)
        #expect { try Configuration.parse("[service]\nbfloat16 = 0", path: "t.toml") } throws: {
            String(describing: $0).contains("[service] bfloat16 must be true or false")
        }
    }

    /// TF32 products on a GPU unless `[service] gpu_products` asks for FP32 (the daemon's
    /// `--fp32`) or bfloat16 (`--bf16`); `tf32 = false`, the older spelling, still means FP32.
    @Test func gpuProductsAreASetting() throws {
        #expect(Configuration().gpuProducts == .tensorFloat32)
        for products in GPUProducts.allCases {
            #expect(try Configuration.parse("[service]\ngpu_products = \"\(products.rawValue)\"", path: "t.toml").gpuProducts == products)
        }
        #expect { try Configuration.parse("[service]\ngpu_products = \"fp16\"", path: "t.toml") } throws: {
            String(describing: $0).contains("[service] gpu_products must be one of \"fp32\", \"tf32\", \"bf16\", not \"fp16\"")
        }
        #expect(try Configuration.parse("[service]\ntf32 = false", path: "t.toml").gpuProducts == .float32)
        #expect(try Configuration.parse("[service]\ntf32 = true", path: "t.toml").gpuProducts == .tensorFloat32)
        #expect { try Configuration.parse("[service]\ntf32 = \"fp32\"", path: "t.toml") } throws: {
            String(describing: $0).contains("[service] tf32 must be true or false")
        }
        #expect { try Configuration.parse("[service]\ngpu_products = \"bf16\"\ntf32 = true", path: "t.toml") } throws: {
            String(describing: $0).contains("t.toml:3: [service] tf32 is the older spelling of gpu_products: set only gpu_products")
        }
    }

    @Test func foldersThatContainOneAnotherAreRefused() throws {
        var c = Configuration()
        (c.spool, c.output, c.state) = ("/srv/spool", "/srv/out", "/srv/state")
        try c.checkFolders(source: "t.toml")
        c.output = "/srv/spool/out"
        do {
            try c.checkFolders(source: "t.toml")
            Issue.record("an output folder inside the spool was accepted")
        } catch {
            #expect(error.description == "t.toml: [paths] output (/srv/spool/out) and spool (/srv/spool) must not contain one another: synthd would train on its own files")
        }
        (c.output, c.state) = ("/srv/out", "/srv")
        #expect(throws: Configuration.Error.self) { try c.checkFolders(source: "t.toml") }
        (c.output, c.state) = ("/srv/out", "/srv/out/state")
        #expect(throws: Configuration.Error.self, "state inside the output tree") { try c.checkFolders(source: "t.toml") }
    }

    /// Links are resolved: an output folder that is a link into the spool, or a spool reached
    /// through a link to the output's parent, is refused like the plain path.
    @Test func foldersThatContainOneAnotherThroughLinksAreRefused() throws {
        let root = NSTemporaryDirectory() + "synthd-paths-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/spool/results", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/out", withDestinationPath: root + "/spool/results")
        var c = Configuration()
        (c.spool, c.output, c.state) = (root + "/spool", root + "/out", root + "/state")
        do {
            try c.checkFolders(source: "t.toml")
            Issue.record("an output folder linked into the spool was accepted")
        } catch {
            #expect(error.description.contains("[paths] output (\(root)/out, that is \(Configuration.resolved(root + "/spool/results")))"),
                    "\(error)")
        }
        c.output = root + "/out/not-yet-made/images"
        #expect(throws: Configuration.Error.self, "below a link, not made yet") { try c.checkFolders(source: "t.toml") }
        c.output = root + "/elsewhere"
        try c.checkFolders(source: "t.toml")
    }

    @Test func serviceKeysAreRead() throws {
        let c = try Configuration.parse("""
            [training]
            finetune_minutes = 2
            checkpoint_seconds = 30
            augmentation = "off"
            conditioning = "norm"
            discriminator = "spectral"
            [generation]
            keep_generations = 3
            temperature = 1.25
            [service]
            slice_minutes = 4
            threads = 1
            """, path: "t.toml")
        #expect(c.fineTuneMinutes == 2 && c.checkpointSeconds == 30 && c.keepGenerations == 3 && c.augmentation == .off)
        #expect(c.temperature == 1.25 && c.conditioning == .norm && c.discriminator == .spectral)
        #expect(try Configuration.parse("[training]\naugmentation = \"adaptive\"", path: "t.toml").augmentation == .adaptive)
        #expect { try Configuration.parse("[training]\naugmentation = \"ada\"", path: "t.toml") } throws: {
            String(describing: $0).contains("adaptive")
        }
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[training]\ndiscriminator = \"layer\"", path: "t.toml") }
        #expect(throws: Configuration.Error.self) { try Configuration.parse("[generation]\ntemperature = 0", path: "t.toml") }
        #expect(c.sliceMinutes == 4 && c.threads == 1)
    }

    @Test func theWrittenSizesCapIsRead() throws {
        #expect(Configuration().maxShortSide == 256)
        #expect(try Configuration.parse("[generation]\nmax_short_side = 0", path: "t.toml").maxShortSide == 0)
        #expect(try Configuration.parse("[generation]\nmax_short_side = 512", path: "t.toml").maxShortSide == 512)
        #expect { try Configuration.parse("[generation]\nmax_short_side = -1", path: "t.toml") } throws: {
            String(describing: $0).contains("max_short_side")
        }
    }

    /// The class check is on by default with the temperature left to it (see
    /// `Sampler.defaultTemperature`); `class_check` is a boolean and says so when it is not.
    @Test func classCheckKey() throws {
        #expect(Configuration().classCheck && Configuration().temperature == nil)
        #expect(try !Configuration.parse("[generation]\nclass_check = false", path: "t.toml").classCheck)
        #expect(Configuration().dropNearCopies)
        #expect(try !Configuration.parse("[generation]\ndrop_near_copies = false", path: "t.toml").dropNearCopies)
        #expect { try Configuration.parse("[generation]\nclass_check = \"yes\"", path: "t.toml") } throws: {
            String(describing: $0).contains("class_check must be true or false")
        }
    }
}

@Suite struct InstalledConfigurationTests {
    @Test func theServiceConfigurationUsesTheStateDirectory() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let c = try Configuration.load(path: root + "/config/synthd.system.toml")
        #expect(c.spool == "/var/lib/synthd/spool" && c.output == "/var/lib/synthd/out" && c.state == "/var/lib/synthd/state")
        var rest = c
        (rest.spool, rest.output, rest.state) = (Configuration().spool, Configuration().output, Configuration().state)
        #expect(rest == Configuration(), "the same defaults as config/synthd.toml")
    }
}

@Suite struct GenerationIDTests {
    @Test func namesCheckpointAndTheSettingsThatMatter() {
        let base = Configuration()
        let id = base.generationID(checkpoint: "step-10")
        #expect(id.hasPrefix("step-10-") && id.count == "step-10-".count + 8, "\(id)")
        #expect(base.generationID(checkpoint: "step-10") == id, "stable")
        #expect(base.generationID(checkpoint: "step-20") != id)
        var other = base
        other.perClass += 1
        #expect(other.generationID(checkpoint: "step-10") == id, "per_class does not matter under balance")
        other.policy = .perClass
        #expect(other.generationID(checkpoint: "step-10") != id)
        for change in [{ (c: inout Configuration) in c.temperature = 1.3 }, { $0.seed = 4 }, { $0.balanceTo = 500 },
                       { $0.classCheck = false }, { $0.shift = 0.07 }, { $0.dropNearCopies = false }] {
            var changed = base
            change(&changed)
            #expect(changed.generationID(checkpoint: "step-10") != id)
        }
        // Near-copies are dropped by the class check only: without it the key changes nothing.
        var unchecked = base
        unchecked.classCheck = false
        let uncheckedID = unchecked.generationID(checkpoint: "step-10")
        unchecked.dropNearCopies = false
        #expect(unchecked.generationID(checkpoint: "step-10") == uncheckedID)
    }

    /// `max_short_side` names a new generation where it changes the size the images are
    /// written at (a photo's), and not where it does not (28 x 28 images under any cap); a
    /// default-sized generation keeps the name it had before the size counted.
    @Test func theWrittenSizeCountsWhereItChanges() {
        func record(_ width: Int, _ height: Int) -> ModelRecord {
            ModelRecord(configuration: ModelConfiguration(), classes: ["a"], mode: .rgb, imageWidth: width, imageHeight: height,
                        steps: 10, imagesAtLastRun: 1, options: TrainingOptions())
        }
        let base = Configuration(), photo = record(4032, 3024), small = record(28, 28)
        #expect(base.generationID(checkpoint: "s", record: photo) == base.generationID(checkpoint: "s"))
        var larger = base
        larger.maxShortSide = 512
        #expect(larger.generationID(checkpoint: "s", record: photo) != base.generationID(checkpoint: "s", record: photo))
        #expect(larger.generationID(checkpoint: "s", record: small) == base.generationID(checkpoint: "s", record: small))
        larger.maxShortSide = 0
        #expect(larger.generationID(checkpoint: "s", record: photo) != base.generationID(checkpoint: "s", record: photo), "0: the dataset's size")
    }
}
