import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A restore keeps the source's data properties — encoding, locale provider, ICU locale — so text
/// sorts as it did and indexes on text hold the same order; a dump that does not record them (a
/// plain pg_dump archive) takes `D`'s, provider included.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct LocaleTests {
    static func locale(_ server: PostgresServer, _ database: String) async throws -> String {
        let version = Int(try await server.psql("SHOW server_version_num")) ?? 0
        let column = version >= 170_000 ? "datlocale" : "daticulocale"
        return try await server.psql(
            """
            SELECT datlocprovider::text || ' ' || coalesce(\(column), '-') FROM pg_database WHERE datname = \
            \(server.literal(database))
            """
        )
    }

    static func order(_ server: PostgresServer, _ database: String) async throws -> String {
        try await server.psql(
            "SET enable_seqscan = off; SELECT string_agg(v, ',' ORDER BY v) FROM words",
            database: database
        )
    }

    /// PostgreSQL 15 (Debian's, built with ICU): an ICU database. PostgreSQL 18 from the wheel has no
    /// ICU: a database of the builtin provider (17 and newer) shows the provider kept all the same.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func anICUDatabaseRestoresAsICUWithItsOrder(server: PostgresServer, role: TestRole) async throws {
        let icu = try await server.psql("SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'") != "0"
        let source = TestEnvironment.uniqueName("icu_src")
        let provider =
            icu ? "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" : "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
        try await server.psql(
            "CREATE DATABASE \(quoteIdentifier(source)) TEMPLATE template0 ENCODING 'UTF8' \(provider) LOCALE 'C.UTF-8'"
        )
        try await server.psql(
            "CREATE TABLE words (v text PRIMARY KEY); INSERT INTO words VALUES ('cherry'), ('Banana'), ('apple')",
            database: source
        )
        let expectedOrder = icu ? "apple,Banana,cherry" : "Banana,apple,cherry"
        let (expectedLocale, described) = icu ? ("i en-US", "icu en-US") : ("b C.UTF-8", "builtin C.UTF-8")
        #expect(try await Self.order(server, source) == expectedOrder)
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        // Dumped by the superuser into the role's storage.
        let dumped = try await pgclone.run(["dump", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Over a libc "C" database, which sorts upper case first; then where there is none.
        let target = TestEnvironment.uniqueName("icu_dst")
        try await user.psql(
            """
            CREATE DATABASE \(quoteIdentifier(target)) TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc LOCALE \
            'C'
            """
        )
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(
            restored.stderr.contains(
                """
                pgclone: warning: \"\(target)\" was UTF8, libc C; it takes the dump's encoding and locale, UTF8, \
                \(described) (LC_COLLATE C.UTF-8)
                """
            ),
            "\(restored)"
        )
        let fresh = TestEnvironment.uniqueName("icu_new")
        let created = try await pgclone.restore(key, into: fresh)
        #expect(created.exitCode == 0, "\(created)")
        for database in [target, fresh] {
            #expect(try await Self.locale(server, database) == expectedLocale, "\(database)")
            #expect(try await Self.order(server, database) == expectedOrder, "\(database)")
            #expect(
                try await server.psql("SELECT count(*) FROM words WHERE v >= 'b'", database: database)
                    == (icu ? "2" : "1")
            )
        }
        for name in [source, target, fresh] { try await server.dropDatabase(name) }
    }

    /// A plain pg_dump archive says nothing of its locale: D keeps its own, provider included.
    @Test func anArchiveWithoutMetadataTakesTheTargetsLocale() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("plain_src")
        let target = TestEnvironment.uniqueName("plain_icu")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE words (v text PRIMARY KEY); INSERT INTO words VALUES ('cherry'), ('Banana'), ('apple')",
            database: source
        )
        try await server.psql(
            """
            CREATE DATABASE \(quoteIdentifier(target)) TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu \
            ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'
            """
        )
        let key = "\(source)/20240102T030405.000000Z.default.dump"
        try FileManager.default.createDirectory(
            atPath: pgclone.storage + "/" + source,
            withIntermediateDirectories: true
        )
        let dumped = try await runCommand(
            "pg_dump",
            ["-Fc", "-f", pgclone.storage + "/" + key, source],
            environment: server.environment()
        )
        #expect(dumped.exitCode == 0, "\(dumped)")
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await Self.locale(server, target) == "i en-US")
        #expect(try await Self.order(server, target) == "apple,Banana,cherry")
        for name in [source, target] { try await server.dropDatabase(name) }
    }
}
