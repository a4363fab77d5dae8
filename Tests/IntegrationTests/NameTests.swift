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
}
