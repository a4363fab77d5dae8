import Foundation
import PGCloneTestSupport
import Testing

@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct ListAndSelectTests {
    @Test func restoreByNameTakesTheNewestAndLsIsNewestFirst() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("ls_src")
        let other = TestEnvironment.uniqueName("ls_other")
        let target = TestEnvironment.uniqueName("ls_dst")
        try await server.createDatabase(source)
        try await server.createDatabase(other)
        try await server.psql("CREATE TABLE marker (v int)", database: source)
        var keys: [String] = []
        for version in 1...3 {
            try await server.psql("TRUNCATE marker; INSERT INTO marker VALUES (\(version))", database: source)
            keys.append(try await pgclone.dump(source))
        }
        let otherKey = try await pgclone.dump(other)

        let all = try await pgclone.run(["ls"])
        #expect(all.stdout.split(separator: "\n").map(String.init) == [otherKey] + keys.reversed())
        let one = try await pgclone.run(["ls", source])
        #expect(one.stdout.split(separator: "\n").map(String.init) == keys.reversed())
        let names = try await pgclone.run(["ls", "--only-db-names"])
        #expect(names.stdout.split(separator: "\n").map(String.init) == [source, other].sorted())

        let json = try await pgclone.run(["ls", source, "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(entries?.map { $0["key"] as? String } == keys.reversed())
        #expect(entries?.first?["database"] as? String == source)
        #expect(entries?.first?["config"] as? String == "default")
        #expect((entries?.first?["size_bytes"] as? Int ?? 0) > 0)
        // created_at is the key's timestamp in extended ISO 8601: the same digits.
        let createdAt = entries?.first?["created_at"] as? String ?? ""
        let stamp = keys.last?.split(separator: "/").last?.split(separator: ".").prefix(2).joined() ?? ""
        #expect(
            createdAt.hasSuffix("Z") && createdAt.filter(\.isNumber) == stamp.filter(\.isNumber),
            "\(createdAt) \(stamp)"
        )
        let namesJSON = try await pgclone.run(["ls", "--only-db-names", "--json"])
        #expect(namesJSON.stdout == "[\"\(min(source, other))\",\"\(max(source, other))\"]\n")

        let restored = try await pgclone.restore(source, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stdout == keys[2] + "\n")
        #expect(try await server.psql("SELECT v FROM marker", database: target) == "3")
    }

    @Test func aPlainCustomFormatDumpRestores() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("plain_src")
        let target = TestEnvironment.uniqueName("plain_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 3000) AS i",
            database: source
        )
        // What django-pgclone and plain `pg_dump -Fc` write, placed under a valid key.
        let key = "\(source)/20240102T030405.000000Z.default.dump"
        let file = pgclone.storage + "/" + key
        try FileManager.default.createDirectory(
            atPath: pgclone.storage + "/" + source,
            withIntermediateDirectories: true
        )
        let dumped = try await runCommand("pg_dump", ["-Fc", "-f", file, source], environment: server.environment())
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(try await pgclone.run(["ls"]).stdout == key + "\n")

        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
    }

    @Test func djangoPgcloneKeysAreListedInTimeOrder() async throws {
        let pgclone = try PGCloneHarness()
        try pgclone.store(Data("x".utf8), as: "db/2020_06_01_12_00_00_123456.default.dump")
        try pgclone.store(Data("x".utf8), as: "db/20210101T000000.000000Z.default.dump")
        try pgclone.store(Data("x".utf8), as: "host/default/none/2020-07-01-12-00-00-000001.dump")
        try pgclone.store(Data("x".utf8), as: "db/.hidden.dump")
        try pgclone.store(Data("x".utf8), as: "db/notes.txt")
        // What no django-pgclone wrote, though pgclone once read it.
        try pgclone.store(Data("x".utf8), as: "db/2020-06-01T12:00:00.123456.default.dump")
        let listing = try await pgclone.run(["ls"])
        #expect(
            listing.stdout.split(separator: "\n") == [
                "db/20210101T000000.000000Z.default.dump", "host/default/none/2020-07-01-12-00-00-000001.dump",
                "db/2020_06_01_12_00_00_123456.default.dump",
            ],
            "\(listing)"
        )
    }
}
