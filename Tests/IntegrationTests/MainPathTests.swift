import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// The main path — dump, restore over a database in use, `--reversible`, undo — on every server of
/// the run (Debian's PostgreSQL 15 and PostgreSQL 18), as a superuser and as an application role
/// such as a managed PostgreSQL gives (LOGIN CREATEDB, password authentication, no superuser).
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct MainPathTests {
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func dumpRestoreOverALiveDatabaseAndUndo(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("main_src")
        let target = TestEnvironment.uniqueName("main_dst")
        try await user.createDatabase(source)
        try await user.psql(
            """
            CREATE SCHEMA shop;
            CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer text NOT NULL, total numeric(10, 2));
            INSERT INTO shop.orders (customer, total) SELECT 'c' || i, i * 1.5 FROM generate_series(1, 20000) AS i;
            CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 100;
            ALTER DATABASE \(quoteIdentifier(source)) SET search_path = shop, public;
            """,
            database: source
        )
        try await user.createDatabase(target)
        try await user.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('before')", database: target)
        let before = try await user.tableFingerprints(target)
        let key = try await pgclone.dump(source)

        // An idle session of the application on the target: the swap ends it.
        let session = try await PostgresConnection.connect(ConnectionSettings(conninfo: user.url(target), from: "test"))
        let restored = try await pgclone.restore(key, into: target, ["--reversible"])
        await session.close()
        #expect(restored.exitCode == 0, "\(server.label), \(role): \(restored)")
        #expect(restored.stdout == key + "\n")
        #expect(try await user.tableFingerprints(target) == user.tableFingerprints(source))
        #expect(try await user.psql("SHOW search_path", database: target) == "shop, public")
        #expect(try await user.psql("SELECT count(*) FROM big_orders", database: target) == "19934")
        #expect(
            try await server.psql(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = \(server.literal(target))"
            ) == user.user
        )
        #expect(
            try await server.databases(startingWith: target) == [target, "\(target)__current", "\(target)__previous"]
        )

        let undone = try await pgclone.restore(":previous", into: target)
        #expect(undone.exitCode == 0, "\(server.label), \(role): \(undone)")
        #expect(try await user.tableFingerprints(target) == before)
        #expect(try await server.databases(startingWith: target) == [target])
    }
}
