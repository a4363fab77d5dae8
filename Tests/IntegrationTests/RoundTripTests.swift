import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// dump → ls → restore against the real server and the real pg_dump/pg_restore.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct RoundTripTests {
    /// A database with several schemas, a view, a materialized view, a function, a trigger, a
    /// sequence, an enum, a partitioned table, an extension and a database-level search_path.
    static func createRichDatabase(_ name: String, on server: PostgresServer) async throws {
        try await server.createDatabase(name)
        try await server.psql(
            """
            CREATE EXTENSION pg_trgm;
            CREATE SCHEMA app;
            CREATE SCHEMA audit;
            CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
            CREATE SEQUENCE app.ticket_seq START 1000;
            SELECT setval('app.ticket_seq', 4242);
            CREATE TABLE app.customers (
                id serial PRIMARY KEY, name text NOT NULL, mood app.mood, tags text[],
                joined timestamptz NOT NULL DEFAULT '2020-01-01 00:00:00+00'
            );
            CREATE TABLE audit.log (id bigserial PRIMARY KEY, customer_id int, action text);
            CREATE FUNCTION app.log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO audit.log (customer_id, action) VALUES (NEW.id, 'insert');
                RETURN NEW;
            END $$;
            CREATE TRIGGER customers_log AFTER INSERT ON app.customers
                FOR EACH ROW EXECUTE FUNCTION app.log_insert();
            CREATE TABLE app.events (id int NOT NULL, happened date NOT NULL, payload jsonb)
                PARTITION BY RANGE (happened);
            CREATE TABLE app.events_2023 PARTITION OF app.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
            CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
            INSERT INTO app.customers (name, mood, tags)
                SELECT 'customer ' || i, (ARRAY['sad', 'ok', 'happy'])[i % 3 + 1]::app.mood, ARRAY['t' || i % 5]
                FROM generate_series(1, 5000) AS i;
            INSERT INTO app.events
                SELECT i, date '2023-01-01' + i % 700, jsonb_build_object('n', i, 'label', md5(i::text))
                FROM generate_series(1, 20000) AS i;
            CREATE VIEW app.happy_customers AS SELECT id, name FROM app.customers WHERE mood = 'happy';
            CREATE MATERIALIZED VIEW app.mood_counts AS SELECT mood, count(*) AS n FROM app.customers GROUP BY mood;
            CREATE INDEX customers_name_trgm ON app.customers USING gin (name gin_trgm_ops);
            ALTER DATABASE \(quoteIdentifier(name)) SET search_path = app, public;
            """,
            database: name
        )
    }

    @Test func roundTripPreservesEveryTableAndTheSearchPath() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("rt_src")
        let target = TestEnvironment.uniqueName("rt_dst")
        try await Self.createRichDatabase(source, on: server)

        let key = try await pgclone.dump(source)
        #expect(key.hasPrefix("\(source)/") && key.hasSuffix(".default.dump"))
        let listing = try await pgclone.run(["ls"])
        #expect(listing.exitCode == 0)
        #expect(listing.stdout == key + "\n")

        // First restore: the target does not exist yet.
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stdout == key + "\n")
        #expect(restored.errorLines.isEmpty)

        let expected = try await server.tableFingerprints(source)
        // customers, log, events and its 2 partitions, the materialized view.
        #expect(expected.count == 6)
        #expect(try await server.tableFingerprints(target) == expected)
        #expect(try await server.psql("SHOW search_path", database: target) == "app, public")
        #expect(try await server.psql("SELECT last_value FROM app.ticket_seq", database: target) == "4242")
        #expect(try await server.psql("SELECT count(*) FROM happy_customers", database: target) == "1667")
        #expect(try await server.psql("SELECT enum_range(NULL::mood)", database: target) == "{sad,ok,happy}")
        #expect(try await server.psql("SELECT similarity('customer 1', 'customer 2') > 0", database: target) == "t")
        // The trigger and its function came along, and the sequences go on where they were.
        let inserted = try await server.psql(
            "INSERT INTO customers (name) VALUES ('new') RETURNING id; SELECT count(*) FROM audit.log;",
            database: target
        )
        #expect(inserted == "5001\n5001")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test func restoringOverAnExistingDatabaseSwapsItOut() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("sw_src")
        let target = TestEnvironment.uniqueName("sw_dst")
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('new');", database: source)
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old'); CREATE TABLE only_in_old (x int);",
            database: target
        )
        try await server.psql("ALTER DATABASE \(quoteIdentifier(target)) SET work_mem = '7MB'")

        let key = try await pgclone.dump(source)
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("swapped the restored database into \"\(target)\""))
        #expect(try await server.psql("SELECT v FROM marker", database: target) == "new")
        #expect(try await server.psql("SELECT to_regclass('only_in_old') IS NULL", database: target) == "t")
        // The source's settings (none) replace the old database's, and a warning says so.
        #expect(try await server.psql("SHOW work_mem", database: target) == "4MB")
        #expect(
            restored.stderrLines.contains(
                """
                pgclone: warning: \"\(target)\" no longer has the setting work_mem=7MB, which the dump's database \
                has not (a restored database takes its source's settings): set it again with ALTER DATABASE \
                \"\(target)\" SET if it is needed
                """
            ),
            "\(restored)"
        )
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.psql("SELECT datallowconn FROM pg_database WHERE datname = '\(target)'") == "t")
    }

    @Test func aHigherCompressionLevelFromTheConfigFileRoundTrips() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("zl_src")
        let target = TestEnvironment.uniqueName("zl_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS m FROM generate_series(1, 50000) AS i",
            database: source
        )
        try "compression_level: 9\n".write(
            toFile: "\(pgclone.directory)/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let dumped = try await pgclone.run(["dump", "--database", server.url(source), "--log-level", "debug"])
        #expect(dumped.exitCode == 0, "\(dumped)")
        // Level 9's tables fit the default 64 MiB budget with one worker, not two.
        #expect(dumped.stderr.contains("pgclone: debug: zstd level 9, workers: 1, planned 14.5 MiB\n"), "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .newlines)
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.tableFingerprints(target) == server.tableFingerprints(source))
    }

    @Test func listSettingsWithQuotedElementsSurvive() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("sp_src")
        let target = TestEnvironment.uniqueName("sp_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE SCHEMA "My Schema"; CREATE TABLE "My Schema".t (x int); INSERT INTO "My Schema".t VALUES (42);
            ALTER DATABASE \(quoteIdentifier(source)) SET search_path = "My Schema", public;
            ALTER DATABASE \(quoteIdentifier(source)) SET statement_timeout = '42s';
            ALTER ROLE CURRENT_USER IN DATABASE \(quoteIdentifier(source)) SET lock_timeout = '5s';
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.psql("SHOW search_path", database: target) == "\"My Schema\", public")
        #expect(try await server.psql("SELECT x FROM t", database: target) == "42")
        #expect(try await server.psql("SHOW statement_timeout", database: target) == "42s")
        #expect(try await server.psql("SHOW lock_timeout", database: target) == "5s")
    }
}
