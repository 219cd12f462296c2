import Engine
import Foundation
import Testing

/// Every record and `--json` output says times and paths one way (`RecordJSON`).
struct RecordJSONTests {
    struct Record: Codable, Equatable {
        var path: String
        var since: Date
        var count: Int
    }

    @Test func timesAreISO8601AndPathsKeepTheirSlashesAndKeysAreSorted() throws {
        let record = Record(path: "/srv/spool/pets", since: Date(timeIntervalSince1970: 1_796_000_000), count: 3)
        let text = try RecordJSON.text(record)
        #expect(text.contains("\"since\" : \"2026-11-30T00:53:20Z"), "\(text)")
        #expect(text.contains("\"/srv/spool/pets\""), "\(text)")
        let count = try #require(text.range(of: "\"count\"")), path = try #require(text.range(of: "\"path\""))
        #expect(count.lowerBound < path.lowerBound)
        #expect(try RecordJSON.decode(Record.self, from: RecordJSON.encode(record)) == record)
    }
}
