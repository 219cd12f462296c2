import Foundation
import Testing

/// The GPU checks run once per session that has a GPU, from scripts/device-check, in one call of
/// at most 10 minutes: an option the CLI no longer takes would cost that part of the call, found
/// only there. So every synthd and synthd-bench command in the device scripts is checked here
/// against the binaries' own `--help`, and every option given to a Python script against its
/// `add_argument` lines (those scripts need PyTorch, which CI lacks).
@Suite struct DeviceScriptTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let scripts = ["scripts/device-check", "scripts/score-device-run"]

    /// A command found in a script: the program's variable or path, its subcommand (none for
    /// Python), and the options written on its line.
    struct Command: CustomStringConvertible {
        let program: String, subcommand: String, options: [String], script: String
        var description: String { "\(script): \(program) \(subcommand) \(options.joined(separator: " "))" }
    }

    /// The script's lines with continuations joined and comments dropped.
    static func lines(of script: String) throws -> [String] {
        let text = try String(contentsOfFile: repository + "/" + script, encoding: .utf8)
        return text.replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n").map { line in
            let trimmed = line.drop { $0 == " " }
            return trimmed.hasPrefix("#") ? "" : String(line)
        }
    }

    /// Every `$synthd SUB`, `$bench SUB`, `synthd-bench" SUB` and `Benchmarks/NAME.py"` in the
    /// scripts, with the `--options` after it up to the end of its command (a pipe, a
    /// redirection, `;`, `&&`, a closing parenthesis).
    static func commands() throws -> [Command] {
        var found: [Command] = []
        for script in scripts {
            for line in try lines(of: script) {
                var rest = Substring(line)
                // The scripts' own shell functions stand for one command each: `step all|steps`
                // (device-check) for synthd-bench train-step, `score` (score-device-run) for synthd eval.
                let starts = ["$synthd ", "$bench ", "synthd-bench\" ", ".py\" ", "step all ", "step steps ", "score \""]
                while let (start, marker) = starts.compactMap({ m in rest.range(of: m).map { ($0, m) } }).min(by: { $0.0.lowerBound < $1.0.lowerBound }) {
                    let before = rest[..<start.lowerBound]
                    var program = "synthd-bench", subcommand = ""
                    var tokens = rest[start.upperBound...].split(separator: " ").map(String.init)
                    switch marker {
                    case "$synthd ": program = "synthd"
                    case ".py\" ":
                        let name = before.split(whereSeparator: { $0 == "/" || $0 == "\"" || $0 == " " }).last.map(String.init) ?? ""
                        program = "Benchmarks/" + name + ".py"
                    case "step all ", "step steps ": subcommand = "train-step"
                    case "score \"": (program, subcommand) = ("synthd", "eval")
                    default: break
                    }
                    if subcommand.isEmpty, !program.hasSuffix(".py"), let first = tokens.first, !first.hasPrefix("-") {
                        subcommand = first
                        tokens.removeFirst()
                    }
                    var options: [String] = []
                    for token in tokens {
                        if token.hasPrefix("|") || token.hasPrefix(">") || token.hasPrefix("2>") || token == "&&" || token.hasPrefix(";")
                            || token.hasPrefix(")") || token == "&" { break }
                        if token.hasPrefix("--") { options.append(String(token.prefix { $0 != "=" && $0 != ")" && $0 != ";" })) }
                    }
                    found.append(Command(program: program, subcommand: subcommand, options: options, script: script))
                    rest = rest[start.upperBound...]
                }
            }
        }
        return found
    }

    /// The options a program's subcommand takes, from its `--help` (synthd's binaries) or its
    /// `add_argument("--name"` lines (a Python script).
    static func accepted(_ program: String, _ subcommand: String) throws -> String {
        if program.hasSuffix(".py") { return try String(contentsOfFile: repository + "/" + program, encoding: .utf8) }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(program).path
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = (subcommand.isEmpty ? [] : [subcommand]) + ["--help"]
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    static func takes(_ help: String, _ option: String, python: Bool) -> Bool {
        let pattern = python ? "[\"']\(option)[\"']" : "\(option)(?![a-z0-9-])"
        return help.range(of: pattern, options: .regularExpression) != nil
    }

    @Test func everyOptionTheDeviceScriptsGiveIsTaken() throws {
        let commands = try Self.commands()
        // The scripts' commands, so that a change to the parsing here that finds none fails.
        #expect(commands.filter { $0.program == "synthd" }.count >= 15, "\(commands)")
        #expect(commands.filter { $0.program == "synthd-bench" }.count >= 8, "\(commands)")
        #expect(commands.contains { $0.subcommand == "eval" && $0.options.contains("--headline-only") }, "\(commands)")
        #expect(Set(commands.filter { $0.program.hasSuffix(".py") }.map(\.program)).isSuperset(of: [
            "Benchmarks/pytorch_cuda_train_step.py", "Benchmarks/pytorch_train_reference.py", "Benchmarks/ncu_summary.py"]), "\(commands)")
        var helps: [String: String] = [:]
        for command in commands {
            let key = command.program + " " + command.subcommand
            if helps[key] == nil { helps[key] = try Self.accepted(command.program, command.subcommand) }
            let help = helps[key]!
            #expect(command.program.hasSuffix(".py") || help.contains("USAGE:"), "\(command): no such subcommand?\n\(help)")
            for option in command.options {
                #expect(Self.takes(help, option, python: command.program.hasSuffix(".py")), "\(command): \(option) is not an option of \(key)")
            }
        }
        // Options the script puts in a variable first ($flag): checked by name.
        for (subcommand, option) in [("train", "--fp32"), ("generate", "--fp32"), ("generate", "--last-checkpoint")] {
            #expect(Self.takes(try Self.accepted("synthd", subcommand), option, python: false), "synthd \(subcommand) \(option)")
        }
    }
}
