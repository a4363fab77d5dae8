import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Databases holding logical replication subscriptions, which `DROP DATABASE` refuses to drop:
/// pgclone drops them first, without contacting a publisher, before it drops any database it made
/// or replaced — or, for a role that may not, refuses before anything is done.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct SubscriptionTests {
    /// A publisher nobody listens on. The password is there for PostgreSQL 16 and later, which lets
    /// a role that is no superuser create a subscription only with one in its connection string.
    static let nowhere = "host=127.0.0.1 port=1 dbname=nowhere password=unused"

    /// What the source's subscriptions are restored as, `name|enabled|slot_name` by name: disabled,
    /// as pg_dump writes them (`connect = false`), with the slot name the source has — `s` keeps the
    /// one `connect = false` gave it, the other was made without one.
    static let restored = "odd \"name|f|NULL,s|f|s"

    /// A source database holding two disabled subscriptions without a connection — `s` as
    /// `CREATE SUBSCRIPTION … WITH (connect = false)` leaves it (with a slot name), and one whose
    /// name needs quoting, without a slot — made by `server`'s superuser (PostgreSQL 15 lets only a
    /// superuser create one), and its key, dumped by `pgclone` (pg_dump dumps subscriptions only
    /// for a superuser).
    static func sourceWithSubscriptions(
        _ pgclone: PGCloneHarness,
        _ prefix: String
    ) async throws -> (source: String, key: String) {
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("\(prefix)_src")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE marker (v text); INSERT INTO marker VALUES ('new');
            CREATE SUBSCRIPTION s CONNECTION \(server.literal(nowhere)) PUBLICATION p WITH (connect = false);
            CREATE SUBSCRIPTION "odd ""name" CONNECTION \(server.literal(nowhere)) PUBLICATION p WITH (connect = \
            false, slot_name = NONE);
            """,
            database: source
        )
        return (source, try await pgclone.dump(source))
    }

    /// The subscriptions of `database`, `name|enabled|slot_name` by name, comma-separated.
    static func subscriptions(_ server: PostgresServer, _ database: String) async throws -> String {
        try await server.psql(
            """
            SELECT coalesce(string_agg(format('%s|%s|%s', s.subname, s.subenabled, coalesce(s.subslotname::text, \
            'NULL')), ',' ORDER BY s.subname), '')
            FROM pg_subscription AS s JOIN pg_database AS d ON d.oid = s.subdbid WHERE d.datname = \
            \(server.literal(database))
            """
        )
    }

    /// The databases whose name starts with `prefix` that hold subscriptions, sorted.
    static func databasesWithSubscriptions(
        _ server: PostgresServer,
        startingWith prefix: String
    ) async throws -> [String] {
        try await server.psql(
            """
            SELECT DISTINCT d.datname FROM pg_subscription AS s JOIN pg_database AS d ON d.oid = s.subdbid
            WHERE starts_with(d.datname, \(server.literal(prefix))) ORDER BY 1
            """
        ).split(separator: "\n").map(String.init)
    }

    /// Subscriptions whose database is gone (there must be none).
    static func orphans(_ server: PostgresServer) async throws -> String {
        try await server.psql("SELECT count(*) FROM pg_subscription WHERE subdbid NOT IN (SELECT oid FROM pg_database)")
    }

    /// `database`'s OID: whether it is still the same database.
    static func oid(_ server: PostgresServer, _ database: String) async throws -> String {
        try await server.psql("SELECT oid FROM pg_database WHERE datname = \(server.literal(database))")
    }

    @Test(arguments: PostgresServer.all)
    func aDatabaseWithSubscriptionsIsRestoredOverAgainAndAgain(server: PostgresServer) async throws {
        let pgclone = try PGCloneHarness(server: server)
        let (_, key) = try await Self.sourceWithSubscriptions(pgclone, "subs")
        let target = TestEnvironment.uniqueName("subs_dst")
        try await server.createDatabase(target)
        // The target replicates (or tries to): an enabled subscription, whose worker PostgreSQL
        // keeps starting and which the first restore replaces. An event trigger guards it, which
        // pgclone's own clean-up does not fire (it failed to drop the old D).
        try await server.psql(
            """
            CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old');
            CREATE SUBSCRIPTION live CONNECTION \(server.literal(Self.nowhere)) PUBLICATION p WITH (connect = false);
            ALTER SUBSCRIPTION live ENABLE;
            CREATE FUNCTION guard() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is not allowed here', tg_tag; END $$;
            CREATE EVENT TRIGGER guard ON ddl_command_start WHEN TAG IN ('ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION')
                EXECUTE FUNCTION guard();
            ALTER EVENT TRIGGER guard ENABLE ALWAYS;
            """,
            database: target
        )
        // And, where there are login event triggers (PostgreSQL 17), one refusing every login,
        // which fired before pgclone's session could turn them off.
        if try await server.psql("SHOW server_version_num").compare("170000", options: .numeric) != .orderedAscending {
            try await server.psql(
                """
                CREATE FUNCTION no_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'no logins here'; END $$;
                CREATE EVENT TRIGGER no_login ON login EXECUTE FUNCTION no_login();
                """,
                database: target
            )
        }

        /// Restores with `options`; then `D` holds the restored data and subscriptions, disabled,
        /// and nothing is left but `D` and the `expected` snapshots.
        func restore(_ options: [String], leaving expected: [String], withSubscriptions holding: [String]) async throws
        {
            let result = try await pgclone.restore(key, into: target, options)
            #expect(result.exitCode == 0, "\(server.label) \(options): \(result)")
            #expect(
                !result.stderr.contains("warning: the restore succeeded, but"),
                "\(server.label) \(options): \(result)"
            )
            #expect(try await server.markers(target) == "new")
            #expect(try await Self.subscriptions(server, target) == Self.restored, "\(server.label) \(options)")
            #expect(
                try await server.databases(startingWith: target) == [target] + expected.map { "\(target)__\($0)" },
                "\(server.label) \(options): \(result)"
            )
            #expect(
                try await Self.databasesWithSubscriptions(server, startingWith: target) == [target]
                    + holding.map { "\(target)__\($0)" },
                "\(server.label) \(options)"
            )
            #expect(try await Self.orphans(server) == "0")
        }

        let first = try await pgclone.restore(key, into: target)
        #expect(first.exitCode == 0, "\(server.label): \(first)")
        #expect(
            first.stderr.contains(
                """
                warning: disabled and dropped logical replication subscription \"live\" of \"\(target)__swap\" \
                before dropping the database, without contacting its publisher (its slot_name was \"live\")
                """
            ),
            "\(server.label): \(first)"
        )
        #expect(try await Self.subscriptions(server, target) == Self.restored)
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await Self.orphans(server) == "0")

        // The old D is dropped each time: closed for the swap, it accepts a session of pgclone's
        // just long enough for its subscriptions to go.
        try await restore([], leaving: [], withSubscriptions: [])
        try await restore([], leaving: [], withSubscriptions: [])
        // --reversible keeps the old D as D__previous, subscriptions and all (D__current, a copy,
        // has none: they are not part of a database's files); the next one drops that.
        try await restore(["--reversible"], leaving: ["current", "previous"], withSubscriptions: ["previous"])
        try await restore(["--reversible"], leaving: ["current", "previous"], withSubscriptions: ["previous"])
        // A restore without --reversible drops the snapshots.
        try await restore([], leaving: [], withSubscriptions: [])
    }

    @Test(arguments: PostgresServer.all)
    func aFailedRestoreOfADumpWithSubscriptionsLeavesNothingBehind(server: PostgresServer) async throws {
        let pgclone = try PGCloneHarness(server: server)
        let (_, key) = try await Self.sourceWithSubscriptions(pgclone, "subs_fail")
        let target = TestEnvironment.uniqueName("subs_fail_dst")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        let before = try await Self.oid(server, target)

        let failed = try await pgclone.restore(key, into: target, ["--pre-swap-hook", "exit 3"])
        #expect(failed.exitCode == 1, "\(server.label): \(failed)")
        #expect(failed.errorLines.count == 1, "\(server.label): \(failed)")
        #expect(!failed.stderr.contains("could not drop"), "\(server.label): \(failed)")
        #expect(try await server.databases(startingWith: target) == [target], "\(server.label): \(failed)")
        #expect(try await Self.oid(server, target) == before)
        #expect(try await server.markers(target) == "old")
        #expect(try await Self.databasesWithSubscriptions(server, startingWith: target) == [])
        #expect(try await Self.orphans(server) == "0")

        // And with --reversible, which snapshots D__temp before the hooks.
        let failedReversibly = try await pgclone.restore(
            key,
            into: target,
            ["--reversible", "--pre-swap-hook", "exit 3"]
        )
        #expect(failedReversibly.exitCode == 1, "\(server.label): \(failedReversibly)")
        #expect(try await server.databases(startingWith: target) == [target], "\(server.label): \(failedReversibly)")
        #expect(try await Self.databasesWithSubscriptions(server, startingWith: target) == [])

        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(server.label): \(restored)")
        #expect(try await server.markers(target) == "new")
        #expect(try await Self.subscriptions(server, target) == Self.restored)
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await Self.orphans(server) == "0")
    }

    /// What a pgclone that could not drop them left — the old D as `D__swap`, closed and marked as
    /// displaced, and a `D__temp` of a failed restore, each with a subscription — the next restore
    /// drops.
    @Test func leftoversWithSubscriptionsAreDroppedByTheNextRestore() async throws {
        let server = try PostgresServer.shared
        let pgclone = try PGCloneHarness(server: server)
        let (_, key) = try await Self.sourceWithSubscriptions(pgclone, "subs_left")
        let target = TestEnvironment.uniqueName("subs_left_dst")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        let leftovers = [
            ("swap", "pgclone: displaced by a restore into \"\(target)\"; pgclone drops it"),
            (
                "temp",
                """
                pgclone: temporary database of a restore into \"\(target)\" started 2026-01-01 00:00:00 UTC by \
                pgclone pid 1
                """
            ),
        ]
        for (suffix, comment) in leftovers {
            let name = "\(target)__\(suffix)"
            try await server.createDatabase(name)
            try await server.psql(
                "CREATE SUBSCRIPTION s CONNECTION \(server.literal(Self.nowhere)) PUBLICATION p WITH (connect = false)",
                database: name
            )
            try await server.psql("COMMENT ON DATABASE \(quoteIdentifier(name)) IS \(server.literal(comment))")
        }
        try await server.psql("ALTER DATABASE \(quoteIdentifier("\(target)__swap")) ALLOW_CONNECTIONS false")

        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.markers(target) == "new")
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await Self.databasesWithSubscriptions(server, startingWith: target) == [target])
        #expect(try await Self.orphans(server) == "0")
    }

    /// An application role (LOGIN CREATEDB) never leaves a `D__swap` it cannot drop: it succeeds,
    /// or fails before anything is destroyed — refused in one line when `D` holds a subscription it
    /// may not drop.
    @Test(arguments: PostgresServer.all)
    func anApplicationRoleSucceedsOrIsRefusedBeforeAnythingIsDestroyed(server: PostgresServer) async throws {
        let admin = try PGCloneHarness(server: server)
        let (_, key) = try await Self.sourceWithSubscriptions(admin, "subs_app")
        // And a dump the application can restore: no subscriptions.
        let plain = TestEnvironment.uniqueName("subs_app_plain")
        try await server.createDatabase(plain)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('plain')", database: plain)
        let plainKey = try await admin.dump(plain)
        let app = try PGCloneHarness(server: try await server.createRole("app", attributes: "CREATEDB"))
        let user = app.server
        let storage = ["--storage-location", admin.storage]
        let target = TestEnvironment.uniqueName("subs_app_dst")
        try await server.psql("CREATE DATABASE \(quoteIdentifier(target)) OWNER \(quoteIdentifier(user.user))")
        try await user.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        let version = Int(try await server.psql("SHOW server_version_num")) ?? 0

        /// Nothing but `D`, as it was (`oid`), accepting connections; no subscription lost track of.
        func unchanged(_ result: CommandResult, oid: String) async throws {
            #expect(try await server.databases(startingWith: target) == [target], "\(server.label): \(result)")
            #expect(try await Self.oid(server, target) == oid, "\(server.label): \(result)")
            #expect(await user.acceptsConnections(target))
            #expect(try await Self.orphans(server) == "0")
        }

        // The application restores the dump: PostgreSQL lets it create no subscription (15: only a
        // superuser may; 18: only a member of pg_create_subscription), so pg_restore fails, in one
        // line, before the swap.
        var oid = try await Self.oid(server, target)
        let own = try await app.restore(key, into: target, storage)
        if own.exitCode == 0 {
            #expect(try await server.databases(startingWith: target) == [target], "\(server.label): \(own)")
        } else {
            #expect(own.errorLines.count == 1, "\(server.label): \(own)")
            try await unchanged(own, oid: oid)
            #expect(try await user.markers(target) == "old")
        }

        // A superuser restores it: D holds subscriptions of the superuser's.
        let bySuperuser = try await admin.restore(key, into: target)
        #expect(bySuperuser.exitCode == 0, "\(server.label): \(bySuperuser)")
        #expect(try await Self.subscriptions(server, target) == Self.restored)

        // The application may not drop them, so it may not replace D, even by a dump it can
        // restore (the swap would leave a D__swap nobody but a superuser could drop): refused in
        // one line, before anything is done, with or without --reversible.
        oid = try await Self.oid(server, target)
        for options in [[], ["--reversible"]] {
            let refused = try await app.restore(plainKey, into: target, storage + options)
            #expect(refused.exitCode == 2, "\(server.label) \(options): \(refused)")
            #expect(
                refused.errorLines == [
                    """
                    pgclone: error: role \"\(user.user)\" may not drop logical replication subscription \"odd \
                    \"name\" (and 1 more) of database \"\(target)\" (its owner is \"\(server.user)\"), which must \
                    go before the database can be dropped (replacing it); restore as a superuser, or have one run \
                    in \"\(target)\": DROP SUBSCRIPTION \"odd \"\"name\"; \"\(target)\" is unchanged
                    """
                ],
                "\(server.label) \(options): \(refused)"
            )
            #expect(!refused.stderr.contains("restoring "), "pg_restore must not have started: \(refused)")
            try await unchanged(refused, oid: oid)
            #expect(try await Self.subscriptions(server, target) == Self.restored)
        }

        guard version >= 160_000 else { return }
        // PostgreSQL 16 and later let a role that is no superuser own subscriptions: given the
        // right to create them and D's, the application restores the dump, twice, and its own
        // subscriptions go with the D it replaces.
        try await server.psql("GRANT pg_create_subscription TO \(quoteIdentifier(user.user))")
        try await server.psql(
            """
            ALTER SUBSCRIPTION s OWNER TO \(quoteIdentifier(user.user));
            ALTER SUBSCRIPTION "odd ""name" OWNER TO \(quoteIdentifier(user.user));
            """,
            database: target
        )
        for options in [[], [], ["--reversible"], []] {
            let restored = try await app.restore(key, into: target, storage + options)
            #expect(restored.exitCode == 0, "\(server.label) \(options): \(restored)")
            #expect(
                !restored.stderr.contains("warning: the restore succeeded, but"),
                "\(server.label) \(options): \(restored)"
            )
            #expect(try await Self.subscriptions(server, target) == Self.restored)
            #expect(
                try await server.psql(
                    """
                    SELECT DISTINCT pg_get_userbyid(s.subowner) FROM pg_subscription AS s JOIN pg_database AS d ON \
                    d.oid \
                    = s.subdbid WHERE d.datname = \(server.literal(target))
                    """
                ) == user.user
            )
            let snapshots = options.isEmpty ? [] : ["\(target)__current", "\(target)__previous"]
            #expect(
                try await server.databases(startingWith: target) == [target] + snapshots,
                "\(server.label) \(options): \(restored)"
            )
            #expect(try await Self.orphans(server) == "0")
        }

        // A superuser guards D's subscriptions with an event trigger, which the application's
        // session may not turn off: its restore succeeds, but the old D stays as D__swap, and
        // says so; the next fails before it changes anything, saying what would drop it, and a
        // superuser's restore does.
        try await server.psql(
            """
            CREATE FUNCTION guard() RETURNS event_trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '% is not allowed here', tg_tag; END $$;
            CREATE EVENT TRIGGER guard ON ddl_command_start WHEN TAG IN ('ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION')
                EXECUTE FUNCTION guard();
            """,
            database: target
        )
        let refusal = """
            could not drop logical replication subscription "odd "name" of database "\(target)__swap", which must go \
            before the database can be dropped: DROP SUBSCRIPTION is not allowed here; a restore by a superuser \
            drops it, with the database's event triggers off
            """
        // With --reversible, twice: the first keeps the guarded D as D__previous; the second
        // displaces it, and the old D__current, which is dropped all the same.
        let kept = try await app.restore(key, into: target, storage + ["--reversible"])
        #expect(kept.exitCode == 0, "\(server.label): \(kept)")
        #expect(!kept.stderr.contains("warning: the restore succeeded"), "\(server.label): \(kept)")
        let guarded = try await app.restore(key, into: target, storage + ["--reversible"])
        #expect(guarded.exitCode == 0, "\(server.label): \(guarded)")
        #expect(
            guarded.stderrLines.filter { $0.contains("warning: the restore succeeded") } == [
                """
                pgclone: warning: the restore succeeded, but dropping what it replaced failed: \(refusal)
                """
            ],
            "\(server.label): \(guarded)"
        )
        #expect(
            try await server.databases(startingWith: target)
                == [target] + ["current", "previous", "swap"].map { "\(target)__\($0)" },
            "\(server.label): \(guarded)"
        )
        oid = try await Self.oid(server, target)
        let stuck = try await app.restore(key, into: target, storage)
        #expect(stuck.exitCode == 2, "\(server.label): \(stuck)")
        #expect(stuck.errorLines == ["pgclone: error: \(refusal); \"\(target)\" is unchanged"], "\(stuck)")
        #expect(try await Self.oid(server, target) == oid)
        let bySuperuserAgain = try await admin.restore(key, into: target)
        #expect(bySuperuserAgain.exitCode == 0, "\(server.label): \(bySuperuserAgain)")
        #expect(try await server.databases(startingWith: target) == [target], "\(bySuperuserAgain)")
        #expect(try await Self.orphans(server) == "0")
    }
}
