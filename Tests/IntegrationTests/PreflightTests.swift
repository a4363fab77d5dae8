import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Everything a restore or a copy needs that can be known in advance is checked before anything is
/// done: no pg_restore, no temporary database, no session ended, no snapshot dropped.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct PreflightTests {
    /// An application role and a reader role on the shared server; the harness runs as the application.
    private func roles(
        on server: PostgresServer? = nil
    ) async throws -> (server: PostgresServer, app: PGCloneHarness, reader: PostgresServer) {
        let server = try server ?? PostgresServer.shared
        let app = try PGCloneHarness(server: try await server.createRole("app", attributes: "CREATEDB"))
        let reader = try await server.createRole("reader")
        return (server, app, reader)
    }

    /// What `connection`'s session looks like in pgclone's messages.
    private func described(_ role: PostgresServer, _ connection: PostgresConnection) async -> String {
        "role \"\(role.user)\": pid \(await connection.backendPID), application \"pgclone[\(getpid())]\""
    }

    @Test func anotherRolesSessionOnTheTargetIsRefusedBeforeAnythingIsDone() async throws {
        let (server, app, reader) = try await roles()
        let (key, target) = try await app.targetAndDump("pf_sess")
        let readerSession = try await reader.connect(target)
        let appSession = try await app.server.connect(target)

        let refused = try await app.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines == [
                """
                pgclone: error: role \"\(app.server.user)\" cannot end 1 session on \"\(target)\" \
                (\(await described(reader, readerSession))), which replacing it needs: it is not a member of \
                \"\(reader.user)\" and lacks pg_signal_backend; GRANT pg_signal_backend TO \
                \"\(app.server.user)\", or end those sessions first; \"\(target)\" is unchanged
                """
            ],
            "\(refused)"
        )
        #expect(!refused.stderr.contains("restoring "), "pg_restore must not have started: \(refused)")
        #expect(try await server.databases(startingWith: target) == [target])
        // Both sessions are alive.
        #expect(try await readerSession.query("SELECT 1") == [["1"]])
        #expect(try await appSession.query("SELECT 1") == [["1"]])

        // The grant the line names is what it takes.
        try await server.psql("GRANT pg_signal_backend TO \(quoteIdentifier(app.server.user))")
        let restored = try await app.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await app.server.markers(target) == "new")
        await readerSession.close()
        await appSession.close()
    }

    @Test func aTargetOwnedByAnotherRoleIsRefusedAndItsPropertiesSurviveTheRestore() async throws {
        let (server, app, reader) = try await roles()
        let owner = try await server.createRole("owner")
        let (key, _) = try await app.targetAndDump("pf_own")
        let target = TestEnvironment.uniqueName("pf_own_target")
        try await server.psql(
            """
            CREATE DATABASE \(quoteIdentifier(target)) TEMPLATE template0 OWNER \(quoteIdentifier(owner.user)) \
            CONNECTION LIMIT 40
            """
        )
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        // Only the reader may connect (and the owner); a comment says what it is.
        try await server.psql(
            """
            REVOKE ALL ON DATABASE \(quoteIdentifier(target)) FROM PUBLIC;
            GRANT CONNECT ON DATABASE \(quoteIdentifier(target)) TO \(quoteIdentifier(reader.user));
            COMMENT ON DATABASE \(quoteIdentifier(target)) IS 'the shop''s database';
            """
        )
        let properties = """
            SELECT pg_get_userbyid(datdba), datacl::text, datconnlimit, shobj_description(oid, 'pg_database')
            FROM pg_database WHERE datname = \(server.literal(target))
            """
        let before = try await server.psql(properties)

        let refused = try await app.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines == [
                """
                pgclone: error: role \"\(app.server.user)\" does not own database \"\(target)\" (its owner is \
                \"\(owner.user)\"), which replacing it needs; GRANT \"\(owner.user)\" TO \"\(app.server.user)\", \
                or run pgclone as \"\(owner.user)\"; \"\(target)\" is unchanged
                """
            ],
            "\(refused)"
        )
        #expect(try await server.databases(startingWith: target) == [target])

        try await server.psql("GRANT \(quoteIdentifier(owner.user)) TO \(quoteIdentifier(app.server.user))")
        let restored = try await app.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.markers(target) == "new")
        // The same owner, privileges, connection limit and comment: nothing is more open than it was.
        let after = try await server.psql(properties)
        #expect(after == before, "\(after)")
        #expect(await reader.acceptsConnections(target))
        let outsider = try await server.createRole("outsider")
        #expect(await !outsider.acceptsConnections(target))
    }

    @Test func aCopyWithoutCreatedbOrBesideAnotherRolesSessionChangesNothing() async throws {
        let (server, app, reader) = try await roles()
        let plain = try PGCloneHarness(server: try await server.createRole("nocreate"))
        let database = TestEnvironment.uniqueName("pf_copy")
        try await server.psql(
            """
            CREATE DATABASE \(quoteIdentifier(database)) TEMPLATE template0 OWNER \
            \(quoteIdentifier(plain.server.user))
            """
        )
        let own = try await plain.server.connect(database)
        let snapshot = TestEnvironment.uniqueName("pf_snap")

        let noCreate = try await plain.run(["copy", ":\(snapshot)", "--database", plain.server.url(database)])
        #expect(noCreate.exitCode == 2, "\(noCreate)")
        #expect(
            noCreate.errorLines == [
                """
                pgclone: error: role \"\(plain.server.user)\" cannot create databases, which a copy does; grant \
                it with ALTER ROLE \"\(plain.server.user)\" CREATEDB (as a superuser or a role with CREATEROLE)
                """
            ],
            "\(noCreate)"
        )
        #expect(try await own.query("SELECT 1") == [["1"]])
        #expect(try await server.databases(startingWith: snapshot).isEmpty)

        let (_, target) = try await app.targetAndDump("pf_copy2")
        let readerSession = try await reader.connect(target)
        let busy = try await app.run(["copy", ":\(snapshot)", "--database", app.server.url(target)])
        #expect(busy.exitCode == 2, "\(busy)")
        #expect(
            busy.errorLines == [
                """
                pgclone: error: role \"\(app.server.user)\" cannot end 1 session on \"\(target)\" \
                (\(await described(reader, readerSession))), which copying it (a copy needs it without sessions) \
                needs: it is not a member of \"\(reader.user)\" and lacks pg_signal_backend; GRANT \
                pg_signal_backend TO \"\(app.server.user)\", or end those sessions first
                """
            ],
            "\(busy)"
        )
        #expect(try await readerSession.query("SELECT 1") == [["1"]])
        #expect(try await server.databases(startingWith: snapshot).isEmpty)
        await readerSession.close()
        await own.close()
    }

    /// The sessions a copy ends (it needs its source without any) are counted, as a swap's are: a
    /// session running a parallel query is one session, not one with each of its workers.
    @Test func aCopyEndsTheRolesOwnSessionsAndSaysSo() async throws {
        let (server, app, _) = try await roles()
        let (_, target) = try await app.targetAndDump("pf_copy_own")
        let snapshot = TestEnvironment.uniqueName("pf_snap_own")
        try await app.server.psql(
            """
            CREATE TABLE par AS SELECT g FROM generate_series(1, 2000) AS g;
            ALTER TABLE par SET (parallel_workers = 2)
            """,
            database: target
        )
        let appSession = try await app.server.connect(target)
        for setting in ["max_parallel_workers_per_gather = 2", "parallel_setup_cost = 0", "parallel_tuple_cost = 0"] {
            _ = try await appSession.query("SET \(setting)")
        }
        let query = Task { try? await appSession.query("SELECT count(*) FROM par WHERE pg_sleep(0.05) IS NOT NULL") }
        try await waitUntil("the parallel query's workers") {
            try await server.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)' AND leader_pid <> pid"
            ) == "2"
        }
        // `-dCONN`, as psql takes it.
        let copied = try await app.run(["copy", ":\(snapshot)", "-d\(app.server.url(target))"])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(
            copied.stderrLines.contains(
                "pgclone: copied \"\(target)\" as \"\(snapshot)\" (1 session of \"\(target)\" terminated)"
            ),
            "\(copied)"
        )
        #expect(await query.value == nil)
        #expect(try await server.databases(startingWith: snapshot) == [snapshot])
        await appSession.close()
    }

    /// A table the dumping role may not read (a managed server's application role, next to a
    /// table of another role's) fails the dump in one line that says what would let it, and that
    /// is enough: pg_read_all_data.
    @Test func aTableTheRoleMayNotReadFailsTheDumpWithWhatItNeeds() async throws {
        let (server, app, _) = try await roles()
        let database = TestEnvironment.uniqueName("pf_unread")
        try await app.server.createDatabase(database)
        try await server.psql("CREATE TABLE secret AS SELECT 1 AS v", database: database)
        let refused = try await app.run(["dump", "--database", app.server.url(database)])
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines.first?.hasSuffix(
                """
                permission denied for table secret; the role that dumps must be able to read everything in the \
                database: a superuser, a member of pg_read_all_data (PostgreSQL 14 and later), or one granted \
                SELECT on its tables, sequences and large objects and USAGE on its schemas
                """
            ) == true,
            "\(refused)"
        )
        #expect(app.storedFiles().isEmpty)
        try await server.psql("GRANT pg_read_all_data TO \(quoteIdentifier(app.server.user))")
        let dumped = try await app.run(["dump", "--database", app.server.url(database)])
        #expect(dumped.exitCode == 0, "\(dumped)")
    }

    @Test func aFailedReversibleSwapKeepsEverySnapshot() async throws {
        let (server, app, reader) = try await roles()
        let (key, target) = try await app.targetAndDump("pf_rev")
        let user = app.server
        #expect(try await app.restore(key, into: target, ["--reversible"]).exitCode == 0)
        try await user.psql("UPDATE marker SET v = 'second'", database: target)
        #expect(try await app.restore(key, into: target, ["--reversible"]).exitCode == 0)
        try await user.psql("UPDATE marker SET v = 'third'", database: target)
        try await user.psql("UPDATE marker SET v = 'current'", database: "\(target)__current")
        let snapshots = [target, "\(target)__current", "\(target)__previous"]
        #expect(try await server.databases(startingWith: target) == snapshots)

        // A session of another role arrives after the checks, during the hook: the swap cannot end
        // it, fails, and keeps everything as it was.
        // The hook waits until that session is there (a loaded machine may take seconds to start it).
        let arrived = "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)' AND usename = '\(reader.user)'"
        let hook = """
            PGUSER='\(reader.user)' PGPASSWORD='\(reader.password)' psql -X -q -d '\(target)' -c 'SELECT \
            pg_sleep(30)' >/dev/null 2>&1 & 
            """
                + """
                for i in $(seq 1 600); do [ \"$(psql -X -At -c \"\(arrived)\")\" = 1 ] && exit 0; sleep 0.1; done; \
                exit 1
                """
        let failed = try await app.restore(key, into: target, ["--reversible", "--pre-swap-hook", hook])
        #expect(failed.exitCode == 2, "\(failed)")
        #expect(failed.errorLines.count == 1)
        #expect(
            failed.errorLines.first?.hasPrefix(
                """
                pgclone: error: cannot end 1 session on \"\(target)\" that began after pgclone's checks (role \
                \"\(reader.user)\": pid
                """
            ) == true,
            "\(failed)"
        )
        #expect(failed.errorLines.first?.hasSuffix("; \"\(target)\" is unchanged") == true, "\(failed)")
        #expect(try await server.databases(startingWith: target) == snapshots)
        #expect(try await user.markers(target) == "third")
        #expect(try await user.markers("\(target)__previous") == "second")
        #expect(try await user.markers("\(target)__current") == "current")
        #expect(await user.acceptsConnections(target))
    }

    @Test(arguments: ["template1", "template0", "postgres"])
    func templatesAndTheMaintenanceDatabaseAreNeverReplaced(target: String) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, _) = try await pgclone.targetAndDump("pf_tpl")
        let result = try await pgclone.restore(key, into: target)
        #expect(result.exitCode == 2, "\(result)")
        let why =
            target == "postgres"
            ? "it is a maintenance database, which pgclone and other tools connect to"
            : "it is a template database (every CREATE DATABASE copies one)"
        #expect(
            result.errorLines == [
                """
                pgclone: error: refusing to restore into \"\(target)\": \(why); choose another database; \
                \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await server.databases(startingWith: target) == [target])
        if target != "template0" {
            #expect(
                try await server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'marker'", database: target)
                    == "0"
            )
        }
    }

    @Test func connectionStringsThatNameNoDatabaseAreErrors() async throws {
        let pgclone = try PGCloneHarness()
        let (key, _) = try await pgclone.targetAndDump("pf_conn")
        let server = pgclone.server
        let cases: [(arguments: [String], environment: [String: String?], line: String)] = [
            (
                ["--database", "postgresql://:@:/"], [:],
                """
                the connection string in --database names nothing (no host, user or database); give one like \
                postgresql://user@host:5432/dbname
                """
            ),
            (
                ["--database", "host=127.0.0.1 dbname=''"], [:],
                """
                the connection string in --database has an empty database name; name the database, or leave dbname \
                out to use PGDATABASE
                """
            ),
            (
                [], ["DATABASE_URL": ""],
                """
                DATABASE_URL is empty; give a connection string or a database name, or unset it to use the PG* \
                variables
                """
            ),
            (
                [], ["DATABASE_URL": "  "],
                """
                DATABASE_URL is empty; give a connection string or a database name, or unset it to use the PG* \
                variables
                """
            ),
            (
                [],
                ["PGHOST": server.host, "PGPORT": server.port, "PGUSER": server.user, "PGPASSWORD": server.password],
                "no database to restore into is named; pass --database (or set DATABASE_URL or PGDATABASE)"
            ),
        ]
        for (arguments, environment, line) in cases {
            let result = try await pgclone.run(["restore", key] + arguments, environment: environment)
            #expect(result.exitCode == 2, "\(arguments) \(environment): \(result)")
            #expect(result.errorLines == ["pgclone: error: \(line)"], "\(arguments) \(environment): \(result)")
        }
        // The role's own database (libpq's default) was not created or replaced.
        #expect(try await server.databases(startingWith: server.user) == [])
    }

    @Test func pgclonesOwnNamesAreRefused() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("pf_names")
        let hijack = try await pgclone.restore(key, into: "\(target)__temp")
        #expect(hijack.exitCode == 2, "\(hijack)")
        #expect(
            hijack.errorLines == [
                """
                pgclone: error: refusing to restore into \"\(target)__temp\": names ending in __temp are \
                pgclone's own (__temp, __swap, __snap, __previous, __current) and would collide with a restore of \
                \"\(target)\"; choose another name
                """
            ],
            "\(hijack)"
        )
        let copied = try await pgclone.run(["copy", ":\(target)__previous", "--database", server.url(target)])
        #expect(copied.exitCode == 2, "\(copied)")
        #expect(
            copied.errorLines.first?.hasPrefix(
                """
                pgclone: error: refusing to copy to \"\(target)__previous\": names ending in __previous are \
                pgclone's own
                """
            ) == true,
            "\(copied)"
        )
        let long = String(repeating: "x", count: 64)
        let tooLong = try await pgclone.run(["copy", ":\(long)", "--database", server.url(target)])
        #expect(tooLong.exitCode == 2, "\(tooLong)")
        #expect(
            tooLong.errorLines == [
                """
                pgclone: error: the database name \"\(long)\" is 64 bytes long; PostgreSQL's limit is 63 (it would \
                cut the name short)
                """
            ],
            "\(tooLong)"
        )
        #expect(try await server.databases(startingWith: String(long.prefix(63))).isEmpty)
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test func aUserDatabaseNamedLikePgclonesOwnIsNeverDropped() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("pf_user")
        try await server.createDatabase("\(target)__temp")
        try await server.psql(
            "CREATE TABLE precious (v text); INSERT INTO precious VALUES ('mine')",
            database: "\(target)__temp"
        )
        let refused = try await pgclone.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines == [
                """
                pgclone: error: a database \"\(target)__temp\" exists that pgclone did not make, and a restore \
                into \"\(target)\" would replace or drop it; rename it (ALTER DATABASE \"\(target)__temp\" RENAME \
                TO …) or drop it yourself; \"\(target)\" is unchanged
                """
            ],
            "\(refused)"
        )
        #expect(try await server.psql("SELECT v FROM precious", database: "\(target)__temp") == "mine")
        #expect(try await server.markers(target) == "old")
    }

    /// A pgclone killed between CREATE DATABASE and marking it leaves a closed database with no
    /// comment: pgclone's way of creating, so the next restore drops it.
    @Test func anUnmarkedDatabaseClosedTheWayPgcloneCreatesItsOwnIsALeftover() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("pf_unmarked")
        try await server.psql(
            """
            CREATE DATABASE \(quoteIdentifier(target + "__temp")) TEMPLATE template0 ALLOW_CONNECTIONS false \
            CONNECTION LIMIT 0
            """
        )
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.markers(target) == "new")
    }

    /// The databases pgclone makes are no more open than the one they come from or replace:
    /// `D__temp` while it is restored, `D__current`, and a `copy`.
    @Test func pgclonesDatabasesAreNoMoreOpenThanTheTarget() async throws {
        let (server, app, reader) = try await roles()
        let outsider = try await server.createRole("outsider")
        let (key, target) = try await app.targetAndDump("pf_open")
        let user = app.server
        try await user.psql(
            """
            REVOKE ALL ON DATABASE \(quoteIdentifier(target)) FROM PUBLIC; GRANT CONNECT ON DATABASE \
            \(quoteIdentifier(target)) TO \(quoteIdentifier(reader.user))
            """
        )
        try await user.psql("GRANT SELECT ON marker TO PUBLIC", database: target)
        // The hook checks who may connect to D__temp while it exists.
        let hook = """
            PGUSER='\(outsider.user)' PGPASSWORD='\(outsider.password)' psql -X -At -c 'SELECT 1' && echo \
            outsider-connected; \
            PGUSER='\(reader.user)' PGPASSWORD='\(reader.password)' psql -X -At -c 'SELECT 2' && echo \
            reader-connected; true
            """
        let restored = try await app.restore(key, into: target, ["--reversible", "--pre-swap-hook", hook])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(!restored.stderrLines.contains("pgclone: pre-swap hook 1: outsider-connected"), "\(restored)")
        #expect(restored.stderrLines.contains("pgclone: pre-swap hook 1: reader-connected"), "\(restored)")
        for database in [target, "\(target)__current", "\(target)__previous"] {
            #expect(await !outsider.acceptsConnections(database), "\(database) lets a role in that \(target) did not")
            #expect(await reader.acceptsConnections(database), "\(database)")
        }
        let snapshot = TestEnvironment.uniqueName("pf_open_copy")
        let copied = try await app.run(["copy", ":\(snapshot)", "--database", user.url(target)])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(await !outsider.acceptsConnections(snapshot))
        #expect(await reader.acceptsConnections(snapshot))
    }

    /// A database's own settings for particular roles survive a restore that does not set them:
    /// a role kept read-only on the target stays so — or, for a role that may not set them, the
    /// restore fails and the target is as it was, saying who could: given that, the role restores.
    @Test(arguments: PostgresServer.all)
    func theTargetsOwnRoleSettingsSurvive(on server: PostgresServer) async throws {
        let (server, app, reader) = try await roles(on: server)
        let version = Int(try await server.psql("SHOW server_version_num")) ?? 0
        let (key, target) = try await app.targetAndDump("pf_roleset")
        try await server.psql(
            """
            ALTER ROLE \(quoteIdentifier(reader.user)) IN DATABASE \(quoteIdentifier(target)) SET \
            default_transaction_read_only = on
            """
        )
        let refused = try await app.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines.first?.hasPrefix(
                """
                pgclone: error: role \"\(reader.user)\"'s setting default_transaction_read_only = on on \
                \"\(target)\" cannot be carried over to the restored database (
                """
            ) == true,
            "\(refused)"
        )
        // PostgreSQL 16 asks for ADMIN OPTION on the role as well as CREATEROLE.
        let who =
            version >= 160_000
            ? "a superuser or a role with CREATEROLE and ADMIN OPTION on \"\(reader.user)\""
            : "a superuser or a role with CREATEROLE"
        #expect(
            refused.errorLines.first?.hasSuffix(
                """
                and the restore would lose it; restore as \(who), or reset it on \"\(target)\" first if it is not \
                needed; \"\(target)\" is unchanged
                """
            ) == true,
            "\(refused)"
        )
        #expect(!refused.stderr.contains("pgclone: restored a "), "refused only after the restore: \(refused)")
        #expect(try await server.databases(startingWith: target) == [target])
        // The same dump, restored by the superuser.
        let restored = try await app.run(["restore", key, "--database", server.url(target)])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.markers(target) == "new")
        #expect(try await reader.psql("SHOW default_transaction_read_only", database: target) == "on")

        // A dump of the target itself carries the setting too: still the target's, still required.
        let ownDump = try await app.run(["dump", "--database", server.url(target)])
        #expect(ownDump.exitCode == 0, "\(ownDump)")
        let again = try await app.restore(ownDump.stdout.trimmingCharacters(in: .whitespacesAndNewlines), into: target)
        #expect(again.exitCode == 2, "\(again)")
        #expect(try await reader.psql("SHOW default_transaction_read_only", database: target) == "on")

        // From a local database too.
        let other = TestEnvironment.uniqueName("pf_roleset_other")
        try await server.createDatabase(other)
        let local = try await app.run(["restore", ":\(other)", "--database", server.url(target)])
        #expect(local.exitCode == 0, "\(local)")
        #expect(try await reader.psql("SHOW default_transaction_read_only", database: target) == "on")

        // What the advice names is enough: the role restores, and the setting stays.
        let (appRole, readerRole) = (quoteIdentifier(app.server.user), quoteIdentifier(reader.user))
        try await server.psql("ALTER ROLE \(appRole) CREATEROLE")
        if version >= 160_000 {
            try await server.psql("GRANT \(readerRole) TO \(appRole) WITH ADMIN OPTION, INHERIT FALSE, SET FALSE")
        }
        let advised = try await app.restore(key, into: target)
        #expect(advised.exitCode == 0, "\(advised)")
        #expect(try await server.markers(target) == "new")
        #expect(try await reader.psql("SHOW default_transaction_read_only", database: target) == "on")
    }

    /// A setting of the whole target that only a superuser sets (a DBA's `log_statement`), which
    /// the dump has too: a role that may not set it would take it from the target, so the restore
    /// fails, before it restores the archive. Granted SET on the parameter, the role restores and
    /// the target keeps it. A source's such setting that the target lacks is only a warning.
    @Test func aSuperusersSettingOfTheTargetIsNotDropped() async throws {
        let (server, app, _) = try await roles()
        let (_, target) = try await app.targetAndDump("pf_suset")
        let role = quoteIdentifier(app.server.user)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(target)) SET log_statement = 'all'")
        let key = try await app.dump(target)
        // Two the dump has not: not kept, and said so only once the restore has succeeded.
        try await server.psql(
            """
            ALTER DATABASE \(quoteIdentifier(target)) SET work_mem = '3MB';
            ALTER DATABASE \(quoteIdentifier(target)) SET myapp.api_token = 'tok-123'
            """
        )
        func settings(_ database: String) async throws -> String {
            try await server.psql(
                """
                SELECT s.setconfig FROM pg_db_role_setting AS s JOIN pg_database AS d ON d.oid = s.setdatabase
                WHERE d.datname = '\(database)' AND s.setrole = 0
                """
            )
        }
        let refused = try await app.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(
            refused.errorLines == [
                """
                pgclone: error: the setting log_statement on \"\(target)\" cannot be carried over to the \
                restored database (permission denied to set parameter \"log_statement\"), and the restore would \
                lose it; restore as a superuser, or a role a superuser granted SET ON PARAMETER log_statement, or \
                reset it on \"\(target)\" first if it is not needed; \"\(target)\" is unchanged
                """
            ],
            "\(refused)"
        )
        #expect(!refused.stderr.contains("pgclone: restored a "), "refused only after the restore: \(refused)")
        #expect(!refused.stderr.contains("no longer has"), "\(refused)")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await settings(target) == "{log_statement=all,work_mem=3MB,myapp.api_token=tok-123}")
        // A dump without an index, with --jobs: refused before the archive is spooled to TMPDIR.
        let spooled = try await app.restore(try app.storeWithoutIndex(key), into: target, ["--jobs", "2"])
        #expect(spooled.exitCode == 2, "\(spooled)")
        #expect(spooled.errorLines == refused.errorLines, "\(spooled)")
        #expect(!spooled.stderr.contains("spooling the archive"), "refused only after the spool: \(spooled)")
        #expect(try await server.databases(startingWith: target) == [target])

        // The custom setting too: a superuser's, which the role could not reset either.
        try await server.psql("GRANT SET ON PARAMETER log_statement, myapp.api_token TO \(role)")
        let granted = try await app.restore(key, into: target, ["--json"])
        try await server.psql("REVOKE SET ON PARAMETER log_statement, myapp.api_token FROM \(role)")
        #expect(granted.exitCode == 0, "\(granted)")
        #expect(try await server.markers(target) == "old")
        #expect(try await settings(target) == "{log_statement=all}")
        #expect(
            granted.stderrLines.contains(
                """
                pgclone: warning: \"\(target)\" no longer has the settings work_mem=3MB; myapp.api_token, \
                which the dump's database has not (a restored database takes its source's settings): set them again \
                with ALTER DATABASE \"\(target)\" SET if they are needed
                """
            ),
            "\(granted)"
        )
        #expect(!granted.stderr.contains("tok-123"), "\(granted)")
        let json = try JSONSerialization.jsonObject(with: Data(granted.stdout.utf8)) as? [String: Any]
        #expect(json?["settings_not_kept"] as? [String] == ["work_mem", "myapp.api_token"], "\(granted)")

        // From a database on the server (restore :NAME): the copy cannot carry it over either.
        let local = TestEnvironment.uniqueName("pf_suset_local")
        try await app.server.createDatabase(local)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(local)) SET log_statement = 'mod'")
        let copied = try await app.run(["restore", ":\(local)", "--database", app.server.url(target)])
        #expect(copied.exitCode == 2, "\(copied)")
        #expect(
            copied.errorLines.first?.hasPrefix(
                "pgclone: error: the setting log_statement on \"\(target)\" cannot be carried over"
            ) == true,
            "\(copied)"
        )
        #expect(!copied.stderr.contains("warning: skipped setting log_statement"), "\(copied)")
        #expect(try await settings(target) == "{log_statement=all}")
        #expect(try await server.databases(startingWith: target) == [target])

        let other = TestEnvironment.uniqueName("pf_suset_new")
        let warned = try await app.restore(key, into: other)
        #expect(warned.exitCode == 0, "\(warned)")
        #expect(
            warned.stderrLines.contains(
                """
                pgclone: warning: skipped setting log_statement: permission denied to set parameter \
                \"log_statement\" (it needs a superuser, or a role a superuser granted SET ON PARAMETER \
                log_statement)
                """
            ),
            "\(warned)"
        )
    }

    /// A setting of the whole target that only a superuser sets, which the source lacks: the
    /// restore would drop it, which the role could not do itself (RESET needs what SET needs),
    /// so it is refused before the archive is restored, from a dump and from a database here.
    /// Granted SET on the parameter, the role restores, and the setting goes, with a warning.
    @Test func aSuperusersSettingTheSourceLacksIsNotDroppedByTheApplicationRole() async throws {
        let (server, app, _) = try await roles()
        let (key, target) = try await app.targetAndDump("pf_sudrop")
        let role = quoteIdentifier(app.server.user)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(target)) SET log_statement = 'all'")
        let settings = """
            SELECT s.setconfig FROM pg_db_role_setting AS s JOIN pg_database AS d ON d.oid = s.setdatabase
            WHERE d.datname = '\(target)' AND s.setrole = 0
            """
        let line = """
            pgclone: error: the setting log_statement on \"\(target)\" is not the source's, so the restore would \
            drop it, which needs a superuser, or a role a superuser granted SET ON PARAMETER log_statement \
            (permission denied to set parameter \"log_statement\"); restore as one, or have one reset it first \
            (ALTER DATABASE \"\(target)\" RESET \"log_statement\"); \"\(target)\" is unchanged
            """
        let refused = try await app.restore(key, into: target)
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(refused.errorLines == [line], "\(refused)")
        #expect(!refused.stderr.contains("pgclone: restored a "), "refused only after the restore: \(refused)")
        let local = TestEnvironment.uniqueName("pf_sudrop_local")
        try await app.server.createDatabase(local)
        let copied = try await app.run(["restore", ":\(local)", "--database", app.server.url(target)])
        #expect(copied.exitCode == 2, "\(copied)")
        #expect(copied.errorLines == [line], "\(copied)")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.psql(settings) == "{log_statement=all}")
        #expect(try await server.markers(target) == "old")

        try await server.psql("GRANT SET ON PARAMETER log_statement TO \(role)")
        let granted = try await app.restore(key, into: target)
        try await server.psql("REVOKE SET ON PARAMETER log_statement FROM \(role)")
        #expect(granted.exitCode == 0, "\(granted)")
        #expect(try await server.psql(settings) == "", "\(granted)")
        #expect(granted.stderr.contains("no longer has the setting log_statement=all, which"), "\(granted)")
        try await server.dropDatabase(local)
    }

    /// A superuser's session that begins on the target after the checks (here from a pre-swap
    /// hook) cannot be ended by the role: the swap fails in one line that says so, not with the
    /// server's bare error and pgclone's statement, and the target is as it was.
    @Test func aSuperusersSessionThatBeginsAfterTheChecksFailsTheSwapInOneLine() async throws {
        let (server, app, _) = try await roles()
        let (key, target) = try await app.targetAndDump("pf_late_su")
        // It outlives the hook, and ends with pgclone. The hook waits until it is there (a loaded
        // machine may take seconds to start it).
        let arrived = "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)' AND usename = '\(server.user)'"
        let hook = """
            psql -X -q '\(server.url(target))' -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 & \
            for i in $(seq 1 600); do [ \"$(psql -X -At -c \"\(arrived)\")\" = 1 ] && exit 0; sleep 0.1; done; exit 1
            """
        let refused = try await app.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(refused.exitCode == 2, "\(refused)")
        #expect(refused.errorLines.count == 1, "\(refused)")
        let line = refused.errorLines.first ?? ""
        #expect(
            line.hasPrefix(
                """
                pgclone: error: cannot end 1 session on \"\(target)\" that began after pgclone's checks (role \
                \"\(server.user)\": pid
                """
            ),
            "\(refused)"
        )
        #expect(
            line.hasSuffix(
                """
                only a superuser ends a superuser's, and only a member of the role or of pg_signal_backend another \
                role's; end it, and run pgclone again; \"\(target)\" is unchanged
                """
            ),
            "\(refused)"
        )
        #expect(!refused.stderr.contains("pg_terminate_backend"), "\(refused)")
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(await app.server.acceptsConnections(target))
    }

    /// A copy killed before pgclone marked it leaves a closed, uncommented database: the same copy
    /// again replaces it; a database of that name made otherwise is never touched.
    @Test func aHalfMadeCopyIsRedone() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (_, target) = try await pgclone.targetAndDump("pf_halfcopy")
        let snapshot = TestEnvironment.uniqueName("pf_half")
        try await server.psql(
            "CREATE DATABASE \(quoteIdentifier(snapshot)) TEMPLATE template0 ALLOW_CONNECTIONS false CONNECTION LIMIT 0"
        )
        let copied = try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(target)])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(
            copied.stderr.contains("dropping \"\(snapshot)\", which a copy that was killed left half made"),
            "\(copied)"
        )
        #expect(try await server.markers(snapshot) == "old")
        let again = try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(target)])
        #expect(again.exitCode == 2, "\(again)")
        #expect(try await server.markers(snapshot) == "old")
    }

    /// Restoring "the newest dump of X" restores a dump of X, not of a database whose name shares
    /// its key, nor one copied under X's name.
    @Test func aRestoreByNameRefusesADumpOfAnotherDatabase() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let other = TestEnvironment.uniqueName("pf_other")
        try await server.createDatabase(other)
        let otherKey = try await pgclone.dump(other)
        let (_, target) = try await pgclone.targetAndDump("pf_byname")
        // The other database's dump, copied under the target's name.
        let copiedKey = "\(target)/20991231T000000.000000Z.default.dump"
        try pgclone.store(try pgclone.storedData(otherKey), as: copiedKey)
        let result = try await pgclone.restore(target, into: target)
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: no dumps of database \"\(target)\" in .pgclone/; \(copiedKey) is named for it but \
                is a dump of \"\(other)\"; restore it by its key if that is what you want
                """
            ],
            "\(result)"
        )
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test func aLocalSourceThatDoesNotExistIsFoundMissingBeforeAnythingIsDone() async throws {
        let pgclone = try PGCloneHarness()
        let (_, target) = try await pgclone.targetAndDump("pf_nosrc")
        let result = try await pgclone.restore(":current", into: target)
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: there is no database \"\(target)__current\" on this server; `pgclone ls --local` \
                lists them; \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(!result.stderr.contains("copying"), "\(result)")
    }
}
