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
        let key = try await pgclone.dump(source)
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

    /// A source whose extension `plpgsql` a superuser dropped restores without it: it came back
    /// with `USAGE` on the language for every role. An application role, which may not drop it
    /// (it is the bootstrap superuser's), keeps it and says so in one warning line.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func aSourceWithoutPlpgsqlRestoresWithoutIt(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("nopl_src")
        try await user.createDatabase(source)
        try await server.psql("DROP EXTENSION plpgsql", database: source)
        try await user.psql("CREATE TABLE t AS SELECT i FROM generate_series(1, 100) AS i", database: source)
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("nopl_dst")
        let languages = "SELECT string_agg(lanname, ',' ORDER BY lanname) FROM pg_language WHERE lanispl"
        for extra in [[], ["--jobs", "2"]] {
            let restored = try await pgclone.restore(key, into: target, extra)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(try await user.psql("SELECT count(*), sum(i) FROM t", database: target) == "100|5050")
            let warnings = restored.stderr.split(separator: "\n").filter { $0.contains("warning") }
            switch role {
            case .superuser:
                #expect(warnings.isEmpty, "\(restored)")
                #expect(try await user.psql(languages, database: target) == "", "\(extra)")
            case .application:
                #expect(
                    warnings == [
                        """
                        pgclone: warning: the source database has no extension plpgsql, but every new database has \
                        it and this restore could not drop it (must be owner of extension plpgsql): "\(target)" keeps \
                        it; a superuser can drop it there: DROP EXTENSION plpgsql
                        """
                    ],
                    "\(restored)"
                )
                #expect(try await user.psql(languages, database: target) == "plpgsql", "\(extra)")
            }
        }
    }

    /// The source revoked PUBLIC's `USAGE` on the language plpgsql. A superuser's restore revokes
    /// it too; an application role's cannot (only the language's owner, the bootstrap superuser,
    /// may), and pg_restore said nothing (the server's WARNING is in its verbose output only): one
    /// warning line says so, with the REVOKE to run.
    @Test(arguments: PostgresServer.all, TestRole.allCases)
    func publicsPrivilegesARestoreCannotRevokeAreSaid(server: PostgresServer, role: TestRole) async throws {
        let user = try await role.user(on: server)
        let pgclone = try PGCloneHarness(server: user)
        let reader = try await server.createRole("reader")
        let source = TestEnvironment.uniqueName("plrev_src")
        try await user.createDatabase(source)
        try await server.psql(
            """
            REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
            GRANT USAGE ON LANGUAGE plpgsql TO \(quoteIdentifier(reader.user));
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("plrev_dst")
        let publicUsage = """
            SELECT count(*) FROM pg_language AS l, aclexplode(coalesce(l.lanacl, acldefault('l', l.lanowner))) AS a
            WHERE l.lanname = 'plpgsql' AND a.grantee = 0
            """
        for extra in [[], ["--jobs", "2"]] {
            let restored = try await pgclone.restore(key, into: target, extra)
            #expect(restored.exitCode == 0, "\(restored)")
            let warnings = restored.stderrLines.filter { $0.contains("PUBLIC") }
            switch role {
            case .superuser:
                #expect(warnings.isEmpty, "\(restored)")
                #expect(try await server.psql(publicUsage, database: target) == "0", "\(extra)")
            case .application:
                #expect(
                    warnings == [
                        """
                        pgclone: warning: PUBLIC keeps USAGE on LANGUAGE plpgsql in "\(target)", which the source \
                        revoked: only its owner ("\(server.user)") or a superuser may revoke it here; have one run in \
                        "\(target)": REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC
                        """
                    ],
                    "\(restored)"
                )
                #expect(try await server.psql(publicUsage, database: target) == "1", "\(extra)")
            }
        }
    }

    /// The source's event triggers see nothing pgclone does itself: the schema public is dropped
    /// before the restore makes them, and the privileges run again for a role this server lacks
    /// without them (an audit trigger logged pgclone's DROP SCHEMA into the restored data; a guard
    /// refusing DDL failed the restore, which pg_restore alone did not).
    @Test(arguments: PostgresServer.all)
    func theSourcesEventTriggersSeeNothingPgcloneDoes(server: PostgresServer) async throws {
        let pgclone = try PGCloneHarness(server: server)
        let ghost = try await server.createRole("ghost")
        // Granted with it: pgclone runs the grants again one by one, and this one succeeds.
        let reader = try await server.createRole("reader")
        let source = TestEnvironment.uniqueName("evt_src")
        try await server.createDatabase(source)
        try await server.psql(
            """
            DROP SCHEMA public;
            CREATE SCHEMA audit;
            CREATE TABLE audit.ddl_log (tag text, object text);
            CREATE TABLE audit.t AS SELECT 1 AS i;
            GRANT SELECT ON audit.t TO \(quoteIdentifier(ghost.user)), \(quoteIdentifier(reader.user));
            CREATE FUNCTION audit.log_drops() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO audit.ddl_log SELECT tg_tag, object_identity FROM pg_event_trigger_dropped_objects();
            END $$;
            CREATE EVENT TRIGGER log_drops ON sql_drop EXECUTE FUNCTION audit.log_drops();
            CREATE FUNCTION audit.no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'DDL % is forbidden here', tg_tag; END $$;
            CREATE EVENT TRIGGER no_ddl ON ddl_command_start WHEN TAG IN ('GRANT', 'REVOKE', 'ALTER TABLE')
                EXECUTE FUNCTION audit.no_ddl();
            CREATE FUNCTION audit.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO audit.ddl_log VALUES (tg_tag, tg_event); END $$;
            CREATE EVENT TRIGGER log_always ON ddl_command_end EXECUTE FUNCTION audit.log_ddl();
            ALTER EVENT TRIGGER log_always ENABLE ALWAYS;
            CREATE EVENT TRIGGER log_replica ON ddl_command_end EXECUTE FUNCTION audit.log_ddl();
            ALTER EVENT TRIGGER log_replica ENABLE REPLICA;
            CREATE EVENT TRIGGER log_never ON ddl_command_start EXECUTE FUNCTION audit.log_ddl();
            ALTER EVENT TRIGGER log_never DISABLE;
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        // The role the dump grants to is not on this server any more.
        try await server.dropDatabase(source)
        try await server.psql("DROP ROLE \(quoteIdentifier(ghost.user))")
        let target = TestEnvironment.uniqueName("evt_dst")
        for extra in [[], ["--jobs", "2"]] {
            let restored = try await pgclone.restore(key, into: target, extra)
            #expect(restored.exitCode == 0, "\(extra): \(restored)")
            #expect(restored.stderrLines.contains { $0.contains("privilege of \"\(ghost.user)\"") }, "\(restored)")
            #expect(try await server.psql("SELECT count(*) FROM audit.ddl_log", database: target) == "0")
            #expect(try await server.psql("SELECT i FROM audit.t", database: target) == "1")
            let readable = "SELECT has_table_privilege(\(server.literal(reader.user)), 'audit.t', 'SELECT')"
            #expect(try await server.psql(readable, database: target) == "t")
            let triggers =
                "SELECT string_agg(evtname || ':' || evtenabled::text, ',' ORDER BY evtname) FROM pg_event_trigger"
            #expect(
                try await server.psql(triggers, database: target)
                    == "log_always:A,log_drops:O,log_never:D,log_replica:R,no_ddl:O"
            )
            let schemas = "SELECT string_agg(nspname, ',') FROM pg_namespace WHERE nspname !~ '^pg_|^info'"
            #expect(try await server.psql(schemas, database: target) == "audit")
        }
    }
}
