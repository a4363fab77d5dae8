import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Any database name PostgreSQL accepts works end to end.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct NameTests {
    @Test(arguments: ["Mixed Case", "we\"ird", "ünïcode", "a-b.c d"])
    func unusualNamesRoundTrip(_ base: String) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let suffix = UUID().uuidString.prefix(6).lowercased()
        let source = "\(base) src \(suffix)"
        let target = "\(base) dst \(suffix)"
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('ok')", database: source)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(source)) SET work_mem = '5MB'")
        // libpq's key=value syntax carries any name.
        let sourceConnection = """
            host=\(server.host) port=\(server.port) user=\(server.user) \
            dbname='\(source.replacingOccurrences(of: "'", with: "\\'"))'
            """
        let dumped = try await pgclone.run(
            ["dump", "--database", sourceConnection],
            environment: ["PGPASSWORD": server.password]
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix(KeySegment.encode(source) + "/"))

        let targetConnection = sourceConnection.replacingOccurrences(of: "dbname='\(source)", with: "dbname='\(target)")
        for _ in 0..<2 {  // first restore, then a swap
            let restored = try await pgclone.run(
                ["restore", key, "--database", targetConnection, "--reversible"],
                environment: ["PGPASSWORD": server.password]
            )
            #expect(restored.exitCode == 0, "\(restored)")
        }
        #expect(try await server.psql("SELECT v FROM t", database: target) == "ok")
        #expect(try await server.psql("SHOW work_mem", database: target) == "5MB")
        #expect(
            try await server.databases(startingWith: target) == [target, "\(target)__current", "\(target)__previous"]
        )
    }

    @Test func aNameTooLongForItsCompanionsFailsBeforeAnything() async throws {
        let pgclone = try PGCloneHarness()
        let target = String(repeating: "n", count: 55)
        try await pgclone.server.dropDatabase(target)
        let result = try await pgclone.restore("anything", into: target)
        #expect(result.exitCode == 2)
        #expect(
            result.errorLines == [
                """
                pgclone: error: the database name \"\(target)\" is too long to restore into: \
                \"\(target)__previous\" would exceed PostgreSQL's 63-byte limit on names; use a name of at most \
                53 bytes
                """
            ],
            "\(result)"
        )
    }

    /// A copy is no restore target: its name may take PostgreSQL's whole 63 bytes (a release before
    /// this one refused 54 to 63 bytes, with a message about restoring); 64 are refused.
    @Test func aCopyMayTakeAllOfPostgreSQLsNameLength() async throws {
        let pgclone = try PGCloneHarness()
        let source = TestEnvironment.uniqueName("copylen")
        try await pgclone.server.createDatabase(source)
        try await pgclone.server.psql("CREATE TABLE t AS SELECT 1 AS v", database: source)
        let longest = String(repeating: "c", count: 55) + String(source.suffix(8))
        try await pgclone.server.dropDatabase(longest)
        let copied = try await pgclone.run(["copy", ":\(longest)", "--database", pgclone.server.url(source)])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(try await pgclone.server.psql("SELECT v FROM t", database: longest) == "1")
        try await pgclone.server.dropDatabase(longest)
        let tooLong = longest + "x"
        let refused = try await pgclone.run(["copy", ":\(tooLong)", "--database", pgclone.server.url(source)])
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(try await pgclone.server.databases(startingWith: String(tooLong.prefix(63))).isEmpty)
    }
}
