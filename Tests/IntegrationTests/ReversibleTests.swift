import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// `--reversible`, `restore :previous` / `:current` / `:NAME`, `copy` and `ls --local`.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct ReversibleTests {
    @Test func theReversibleCycle() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("rev_src")
        let target = TestEnvironment.uniqueName("rev_dst")
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('dump')", database: source)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(source)) SET work_mem = '9MB'")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('before')", database: target)
        let key = try await pgclone.dump(source)
        let value = { try await server.psql("SELECT string_agg(v, ',' ORDER BY v) FROM marker", database: target) }

        // A hook changes D__temp after the snapshot: :current is the state right after pg_restore.
        let hook = #"psql -X -q -c "INSERT INTO marker VALUES ('hooked')""#
        let first = try await pgclone.restore(key, into: target, ["--reversible", "--pre-swap-hook", hook])
        #expect(first.exitCode == 0, "\(first)")
        #expect(try await value() == "dump,hooked")
        #expect(
            try await server.databases(startingWith: target) == [target, "\(target)__current", "\(target)__previous"]
        )
        try await server.psql("INSERT INTO marker VALUES ('modified')", database: target)

        // Undo, keeping the snapshots: D__current still holds the restore, D__previous what was undone.
        let previous = try await pgclone.restore(":previous", into: target, ["--reversible"])
        #expect(previous.exitCode == 0, "\(previous)")
        #expect(previous.stdout == ":previous\n")
        #expect(try await value() == "before")
        // The dump's setting, which the database before it had not, goes with the undo.
        #expect(try await server.psql("SHOW work_mem", database: target) == "4MB")
        #expect(
            previous.stderrLines.contains(
                """
                pgclone: warning: \"\(target)\" no longer has the setting work_mem=9MB, which \
                \"\(target)__previous\" has not (a restored database takes its source's settings): set it again \
                with ALTER DATABASE \"\(target)\" SET if it is needed
                """
            ),
            "\(previous)"
        )
        #expect(try await server.psql("SELECT count(*) FROM marker", database: "\(target)__previous") == "3")

        let current = try await pgclone.restore(":current", into: target)
        #expect(current.exitCode == 0, "\(current)")
        #expect(try await value() == "dump")
        // Settings travel with local copies too.
        #expect(try await server.psql("SHOW work_mem", database: target) == "9MB")
        // Without --reversible, the snapshots are gone (django-pgclone's semantics).
        #expect(try await server.databases(startingWith: target) == [target])
        let again = try await pgclone.restore(":previous", into: target)
        #expect(again.exitCode == 1)
        #expect(
            again.errorLines.first?.contains("there is no database \"\(target)__previous\" on this server") == true,
            "\(again)"
        )
    }

    /// A first restore (no `D` yet) with `--reversible` keeps its snapshot as `D__current`, owned
    /// as `D` is, and `restore :current` brings it back. (It left `D__snap`, which the next
    /// restore dropped.)
    @Test(arguments: TestRole.allCases)
    func aFirstReversibleRestoreKeepsItsSnapshotAsCurrent(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let pgclone = try PGCloneHarness(server: try await role.user(on: server))
        let user = pgclone.server
        let source = TestEnvironment.uniqueName("revfirst_src")
        let target = TestEnvironment.uniqueName("revfirst_dst")
        try await user.createDatabase(source)
        try await user.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('dump')", database: source)
        let key = try await pgclone.dump(source)
        let hook = #"psql -X -q -c "INSERT INTO marker VALUES ('hooked')""#

        let first = try await pgclone.restore(key, into: target, ["--reversible", "--pre-swap-hook", hook])
        #expect(first.exitCode == 0, "\(first)")
        #expect(try await server.databases(startingWith: target) == [target, "\(target)__current"])
        let owners = try await server.psql(
            """
            SELECT string_agg(DISTINCT pg_get_userbyid(datdba), ',') FROM pg_database \
            WHERE datname IN (\(server.literal(target)), \(server.literal("\(target)__current")))
            """
        )
        #expect(!owners.contains(","), "\(owners)")
        #expect(try await user.markers(target) == "dump,hooked")

        let current = try await pgclone.restore(":current", into: target, ["--reversible"])
        #expect(current.exitCode == 0, "\(current)")
        #expect(try await user.markers(target) == "dump")
        #expect(
            try await server.databases(startingWith: target) == [target, "\(target)__current", "\(target)__previous"]
        )
    }

    @Test func copyThenRestoreASnapshot() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let target = TestEnvironment.uniqueName("snap_db")
        let snapshot = TestEnvironment.uniqueName("snap")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", database: target)
        // A session on the database does not stop the copy: it is ended.
        let held = try await PostgresConnection.connect(ConnectionSettings(conninfo: server.url(target), from: "test"))

        let copied = try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(target)])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(copied.stdout == ":\(snapshot)\n")
        await held.close()
        let local = try await pgclone.run(["ls", "--local", "--database", server.url(target)])
        #expect(local.stdout.split(separator: "\n").contains(":\(snapshot)"[...]))
        #expect(!local.stdout.contains(":postgres\n"))

        try await server.psql("UPDATE t SET v = 2", database: target)
        let restored = try await pgclone.restore(":\(snapshot)", into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.psql("SELECT v FROM t", database: target) == "1")
        #expect(try await server.databases(startingWith: snapshot) == [snapshot])

        let twice = try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(target)])
        #expect(twice.exitCode == 2)
        #expect(
            twice.errorLines == [
                "pgclone: error: a database named \"\(snapshot)\" already exists; choose another name, or drop it first"
            ]
        )
        let refused = try await pgclone.run(
            ["copy", ":other", "--database", server.url(target)],
            environment: ["PGCLONE_ALLOW_COPY": "false"]
        )
        #expect(refused.exitCode == 3)
        #expect(
            refused.errorLines == [
                "pgclone: error: copies are disabled here (PGCLONE_ALLOW_COPY=false); nothing was done"
            ]
        )
    }
}
