import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// The schema `public`, which every new database has and an archive cannot say was dropped.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct PublicSchemaTests {
    /// A source whose owner dropped `public` (as PostgreSQL's advice for untrusted users has it)
    /// restores without it, in one stream and in pieces: it came back, open to every role's
    /// `USAGE` (and `CREATE`, on PostgreSQL 14 and older). A source that has it keeps it.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func aSourceWithoutSchemaPublicRestoresWithoutIt(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("nopub_src")
        try await user.createDatabase(source)
        try await user.psql(
            """
            DROP SCHEMA public;
            CREATE SCHEMA app;
            CREATE TABLE app.t AS SELECT i FROM generate_series(1, 1000) AS i;
            """,
            database: source
        )
        let dumped = try await pgclone.run(["dump", "--database", user.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let target = TestEnvironment.uniqueName("nopub_dst")
        let schemas = "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname !~ '^pg_|^info'"
        // A first restore, in one stream; then one over D, in pieces.
        for extra in [[], ["--jobs", "2"]] {
            let restored = try await pgclone.restore(key, into: target, extra)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(!restored.stderr.contains("warning"), "\(restored)")
            #expect(try await user.psql(schemas, database: target) == "app", "\(extra)")
            #expect(try await user.psql("SELECT count(*), sum(i) FROM app.t", database: target) == "1000|500500")
        }

        // With public, as every database has it.
        let withPublic = TestEnvironment.uniqueName("pub_src")
        try await user.createDatabase(withPublic)
        try await user.psql("CREATE TABLE t AS SELECT 1 AS i", database: withPublic)
        let again = try await pgclone.run(["dump", "--database", user.url(withPublic)])
        #expect(again.exitCode == 0, "\(again)")
        let restored = try await pgclone.restore(again.stdout.trimmingCharacters(in: .newlines), into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await user.psql(schemas, database: target) == "public")
        #expect(try await user.psql("SELECT i FROM public.t", database: target) == "1")
    }
}
