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

    @Test func terminalLinesStartWithTimeAndLevel() {
        let line = LineLogHandler(journal: false).format(level: .info, message: "hello", metadata: [:])
        #expect(line.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ info    hello$"#, options: .regularExpression) != nil, "\(line)")
    }

    @Test func theJournalIsRecognisedByDeviceAndInode() {
        var status = stat()
        #expect(fstat(STDERR_FILENO, &status) == 0)
        #expect(LineLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino)"]))
        #expect(!LineLogHandler.stderrIsJournal(environment: ["JOURNAL_STREAM": "\(status.st_dev):\(status.st_ino + 1)"]))
        #expect(!LineLogHandler.stderrIsJournal(environment: [:]))
    }
}
