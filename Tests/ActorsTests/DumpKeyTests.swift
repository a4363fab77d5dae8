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

    static let longName = String(repeating: "é", count: 31) + "x"

    /// Every pair a sanitising encoding merged: each name its own segment, and back.
    @Test(arguments: [
        ("rel.col", "rel_col"), ("A/B", "A_B"), ("Ünïcode", "_n_code"), ("x'y", "x y"), ("App", "app"),
        ("a%2Eb", "a.b"), (longName, String(repeating: "_", count: 31) + "x"),
    ])
    func distinctNamesHaveDistinctSegmentsAndComeBack(_ first: String, _ second: String) throws {
        let keys = [first, second].map { DumpKey(database: $0, config: $0, date: Date(timeIntervalSince1970: 0)) }
        #expect(keys[0].path.split(separator: "/")[0] != keys[1].path.split(separator: "/")[0])
        for (name, key) in zip([first, second], keys) {
            let parsed = try #require(DumpKey(parsing: key.path))
            #expect(parsed.database == name)
            #expect(parsed.config == name)
            #expect(parsed.layout == .pgclone)
            let segment = key.path.split(separator: "/")[0]
            #expect(segment != "." && segment != ".." && !segment.hasPrefix("."))
            #expect(segment.utf8.count <= 189)
        }
        #expect(KeySegment.encode("rel.col") == "rel%2Ecol")
        #expect(KeySegment.encode(Self.longName).utf8.count == 187)
    }

    @Test(arguments: ["rel%2ecol", "a%41", "%", "%2", "a%ZZ", "%C3", ""])
    func onlyTheOneSpellingOfANameDecodes(_ segment: String) {
        #expect(KeySegment.decode(segment) == nil)
    }

    /// A literal segment with `_` may hold an earlier release's sanitised name: the dump must say.
    @Test func literalSegmentsWithUnderscoresDoNotNameTheirDatabaseSurely() throws {
        #expect(try #require(DumpKey(parsing: "rel_col/20251126T075200.123456Z.default.dump")).namesDatabase == false)
        #expect(try #require(DumpKey(parsing: "app/20251126T075200.123456Z.default.dump")).namesDatabase)
        #expect(try #require(DumpKey(parsing: "rel%2Ecol/20251126T075200.123456Z.default.dump")).namesDatabase)
        #expect(try #require(DumpKey(parsing: "my%20app_x/20251126T075200.123456Z.default.dump")).namesDatabase)
    }

    @Test func djangoPgcloneLayoutsParse() throws {
        let old = try #require(DumpKey(parsing: "app db/2020_06_01_12_00_00_123456.my.config.dump"))
        #expect(old.layout == .djangoPGClone1)
        #expect(old.database == "app db" && old.config == "my.config")
        #expect(old.isoTimestamp == "2020-06-01T12:00:00.123456Z")
        #expect(old.namesDatabase)
        let new = try #require(DumpKey(parsing: "web-1/default/none/2021-07-02-03-04-05-000006.dump"))
        #expect(new.layout == .djangoPGClone2)
        #expect(new.database == "default" && new.config == "none" && new.instance == "web-1")
        #expect(new.isoTimestamp == "2021-07-02T03:04:05.000006Z")
        #expect(!new.namesDatabase)
        #expect(old < new)
        let ours = try #require(DumpKey(parsing: "app/20210702T030405.000007Z.default.dump"))
        #expect(new < ours)
    }

    @Test(arguments: [
        "app/20251126T075200.123456Z.default", "app/notatime.default.dump",
        "app/x/20251126T075200.123456Z.default.dump",
        "/20251126T075200.123456Z.default.dump", "app/20251126T075200.123456Z..dump",
        "a.b/20251126T075200.123456Z.c.dump",
        "app/.20251126T075200.123456Z.default.dump", "../2020_06_01_12_00_00_123456.default.dump",
        "a/../b/2021-07-02-03-04-05-000006.dump", "a/b c/d/2021-07-02-03-04-05-000006.dump",
        "app/2020-06-01T12:00:00.123456.default.dump",
        "app/2020_06_01_12_00_00_123456..dump", "app/20251126T075200.123456Z.default.dump/x",
        "shop/2021_13_45_99_99_99_000000.default.dump", "shop/20261399T999999.000000Z.default.dump",
        "x/shop/none/9999-99-99-99-99-99-999999.dump", "x/shop/none/2021-02-03-24-00-00-000000.dump",
    ])
    func otherNamesDoNotParse(_ key: String) {
        #expect(DumpKey(parsing: key) == nil)
    }
}
