import Foundation
import PGCloneActors
import Testing

@Suite struct DumpKeyTests {
    @Test func keysAreFixedWidthUTCAndSortByTime() throws {
        let date = Date(timeIntervalSince1970: 1_764_143_520.123456)
        let key = DumpKey(database: "app", config: "default", date: date)
        #expect("\(key)" == "app/20251126T075200.123456Z.default.dump")
        #expect(key.isoTimestamp == "2025-11-26T07:52:00.123456Z")
        #expect(DumpKey(parsing: "\(key)") == key)
        let early = DumpKey(database: "app", config: "default", date: Date(timeIntervalSince1970: 5))
        #expect("\(early)" == "app/19700101T000005.000000Z.default.dump")
        #expect(early < key)
    }

    @Test func namesAreSanitised() {
        let key = DumpKey(database: "my.db/é x", config: "night ly")
        #expect(key.database == "my_db__x" || key.database == "my_db___x")
        #expect(!key.database.contains(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-")) }))
        #expect(key.config == "night_ly")
        #expect(DumpKey.sanitize("") == "_")
    }

    @Test(arguments: [
        "app/20251126T075200.123456Z.default.dump",
        "app/2020-06-01T12:00:00.123456.default.dump",
        "app/2020-06-01T12:00:00.default.dump",
        "my-db_2/20251126T075200.123456Z._custom.dump",
    ])
    func validKeysParse(_ key: String) {
        #expect(DumpKey(parsing: key).map { "\($0)" } == key)
    }

    @Test(arguments: [
        "app/20251126T075200.123456Z.default", "app/notatime.default.dump", "app/x/20251126T075200.123456Z.default.dump",
        "/20251126T075200.123456Z.default.dump", "app/20251126T075200.123456Z..dump", "a.b/20251126T075200.123456Z.c.dump",
        "app/.20251126T075200.123456Z.default.dump",
    ])
    func otherNamesDoNotParse(_ key: String) {
        #expect(DumpKey(parsing: key) == nil)
    }

    @Test func djangoPgcloneTimestampsSortAmongOurs() throws {
        let django = try #require(DumpKey(parsing: "app/2020-06-01T12:00:00.5.default.dump"))
        let ours = try #require(DumpKey(parsing: "app/20200601T120000.400000Z.default.dump"))
        #expect(ours < django)
    }
}
