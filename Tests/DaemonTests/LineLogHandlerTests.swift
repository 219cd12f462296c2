import Daemon
import Foundation
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct LineLogHandlerTests {
    @Test func journalLinesCarryThePriorityAndNoTime() {
        let handler = LineLogHandler(journal: true)
        #expect(handler.format(level: .warning, message: "disk full", metadata: ["dataset": "pets"]) == "<4>disk full dataset=pets")
        #expect(handler.format(level: .error, message: "a\nb", metadata: [:]) == "<3>a | b", "one line per event")
        #expect(handler.format(level: .info, message: "x", metadata: [:]) == "<6>x")
    }

    /// A folder name is someone else's text: it cannot start a new journal line (with a
    /// priority of its choosing) nor pass for another key.
    @Test func messagesAndMetadataCannotForgeLines() {
        let handler = LineLogHandler(journal: true)
        #expect(handler.format(level: .info, message: "a\r<0>b\u{1B}[2J", metadata: [:]) == "<6>a\\u{d}<0>b\\u{1b}[2J")
        #expect(handler.format(level: .info, message: "queued", metadata: ["dataset": "x\n<0>panic"]) == #"<6>queued dataset="x | <0>panic""#)
        #expect(handler.format(level: .info, message: "queued", metadata: ["dataset": "my pets error=\"disk\""])
            == #"<6>queued dataset="my pets error=\"disk\"""#)
        #expect(handler.format(level: .info, message: "queued", metadata: ["dataset": "pets"]) == "<6>queued dataset=pets")
        #expect(handler.format(level: .info, message: "queued", metadata: ["dataset": ""]) == #"<6>queued dataset="""#)
    }

    @Test func terminalLinesStartWithTimeAndLevel() {
        let line = LineLogHandler(journal: false).format(level: .info, message: "hello", metadata: [:])
        #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info     hello$"#, options: .regularExpression) != nil, "\(line)")
        let critical = LineLogHandler(journal: false).format(level: .critical, message: "bad.toml:2: unknown key", metadata: [:])
        #expect(critical.hasSuffix("Z critical bad.toml:2: unknown key"), "\(critical)")
    }

    @Test func theJournalIsRecognisedByDeviceAndInode() {
        var status = stat()
        #expect(fstat(STDERR_FILENO, &status) == 0)
        #expect(LineLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]))
        #expect(!LineLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino + 1)"]))
        #expect(!LineLogHandler.stderrIsJournal(environment: [:]))
    }
}
