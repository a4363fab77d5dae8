import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A server that writes its messages in German (a role's `lc_messages`, as a server initialised in
/// a German locale has it): pgclone reads some of pg_restore's (a role this server lacks, an error
/// it knows to be harmless, a REVOKE without effect) in English only. Debian's PostgreSQL 15 has
/// the translations; PostgreSQL 18 from PyPI has none.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct MessageLanguageTests {
    /// A role whose sessions speak German, made by the superuser of `server`, with `attributes`.
    private func germanRole(_ server: PostgresServer, attributes: String) async throws -> PostgresServer {
        let user = try await server.createRole("deutsch", attributes: attributes)
        try await server.psql("ALTER ROLE \(quoteIdentifier(user.user)) SET lc_messages = 'de_DE.UTF-8'")
        // The test means something only where the server does write German.
        let division = try? await user.psql("SELECT 1/0")
        #expect(division == nil)
        return user
    }

    /// A source of `pgclone`'s role whose table was granted to a role the server no longer has,
    /// dumped.
    private func dumpWithAGoneRole(_ pgclone: PGCloneHarness, _ server: PostgresServer) async throws -> String {
        let user = pgclone.server
        let ghost = try await server.createRole("ghost")
        let source = TestEnvironment.uniqueName("lang_src")
        try await user.createDatabase(source)
        try await user.psql(
            """
            CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2);
            GRANT SELECT ON t TO \(quoteIdentifier(ghost.user));
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        try await server.dropDatabase(source)
        try await server.psql("DROP ROLE \(quoteIdentifier(ghost.user))")
        return key
    }

    /// A superuser's restore sets its sessions' lc_messages to C: pg_restore's error for the
    /// role this server lacks was German ("Rolle »…« existiert nicht"), not recognised, and
    /// failed the restore.
    @Test func aSuperusersRestoreReadsTheServerInEnglish() async throws {
        let server = try PGCloneHarness().server
        let user = try await germanRole(server, attributes: "SUPERUSER")
        let pgclone = try PGCloneHarness(server: user)
        let key = try await dumpWithAGoneRole(pgclone, server)
        let target = TestEnvironment.uniqueName("lang_dst")
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("(no such role here) was skipped"), "\(restored)")
        #expect(!restored.stderr.contains("lc_messages"), "\(restored)")
        #expect(try await server.psql("SELECT count(*) FROM t", database: target) == "2")
    }

    /// An application role may not set lc_messages: its restore says, in one line, what goes
    /// unrecognised and who can change it.
    /// The language is the one the restore's sessions get (the role's), not pgclone's own
    /// session's in the maintenance database (a helper found a setting there taken for it).
    @Test func anApplicationRoleIsToldWhatItsServersLanguageCosts() async throws {
        let server = try PGCloneHarness().server
        let user = try await germanRole(server, attributes: "CREATEDB")
        try await server.psql("ALTER ROLE \(quoteIdentifier(user.user)) IN DATABASE postgres SET lc_messages = 'C'")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("lang_app_src")
        try await user.createDatabase(source)
        try await user.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", database: source)
        let key = try await pgclone.dump(source)
        let target = TestEnvironment.uniqueName("lang_app_dst")
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(
            restored.stderrLines.filter { $0.hasPrefix("pgclone: warning:") } == [
                """
                pgclone: warning: PostgreSQL writes its messages to "\(user.user)" in de_DE.UTF-8 (lc_messages), \
                and pgclone reads pg_restore's in English only: errors it knows to be harmless fail the restore, \
                roles this server lacks are taken for errors, and a REVOKE of the dump without effect goes \
                unsaid; a superuser can run ALTER ROLE "\(user.user)" SET lc_messages = 'C' (or GRANT SET ON \
                PARAMETER lc_messages TO it)
                """
            ],
            "\(restored)"
        )
        #expect(try await server.psql("SELECT count(*) FROM t", database: target) == "1")
    }

    /// A German setting for the maintenance database alone is not the restore's: no warning.
    @Test func theMaintenanceDatabasesLanguageIsNotTheRestores() async throws {
        let server = try PGCloneHarness().server
        let user = try await server.createRole("english", attributes: "CREATEDB")
        try await server.psql(
            "ALTER ROLE \(quoteIdentifier(user.user)) IN DATABASE postgres SET lc_messages = 'de_DE.UTF-8'"
        )
        let pgclone = try PGCloneHarness(server: user)
        let key = try await dumpWithAGoneRole(pgclone, server)
        let restored = try await pgclone.restore(key, into: TestEnvironment.uniqueName("lang_eng_dst"))
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("(no such role here) was skipped"), "\(restored)")
        #expect(!restored.stderr.contains("lc_messages"), "\(restored)")
    }

    /// A superuser's dump reads the server in English too: the line for a session the server
    /// ended was half German ("FATAL: Verbindung wird abgebrochen …").
    @Test func aSuperusersDumpSaysWhyInEnglish() async throws {
        let server = try PGCloneHarness().server
        let user = try await germanRole(server, attributes: "SUPERUSER")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("lang_ended")
        try await user.createDatabase(source)
        let (result, terminated) = try await pgclone.dumpEndingItsSession(source, as: user)
        #expect(terminated, "pg_dump finished before its session could be terminated")
        #expect(result.exitCode == 1, "\(result)")
        let line = try #require(result.errorLines.first, "\(result)")
        #expect(
            line.hasSuffix("() failed. FATAL: terminating connection due to administrator command")
                || line.hasSuffix("() failed. server closed the connection unexpectedly"),
            "\(result)"
        )
    }

    /// A dump by a role that may not read a table fails as a refusal (exit 2) naming the table,
    /// found on the server: pg_dump's German "keine Berechtigung" went unrecognised (exit 1, no
    /// advice).
    @Test func aDumpARoleMayNotReadIsARefusalInAnyLanguage() async throws {
        let server = try PGCloneHarness().server
        let user = try await germanRole(server, attributes: "CREATEDB")
        let pgclone = try PGCloneHarness(server: user)
        let source = TestEnvironment.uniqueName("lang_unreadable")
        try await user.createDatabase(source)
        try await server.psql("CREATE TABLE secret (v int)", database: source)
        let dumped = try await pgclone.run(["dump", "--database", user.url(source)])
        #expect(dumped.exitCode == 2, "\(dumped)")
        let line = try #require(dumped.errorLines.first, "\(dumped)")
        #expect(dumped.errorLines.count == 1, "\(dumped)")
        #expect(line.hasPrefix("pgclone: error: pg_dump exited with status 1: "), "\(dumped)")
        #expect(
            line.hasSuffix(
                """
                ; role "\(user.user)" may not read table public.secret: the role that dumps must be able to read \
                everything in the database: a superuser, a member of pg_read_all_data (PostgreSQL 14 and later), or \
                one granted SELECT on its tables, sequences and large objects and USAGE on its schemas
                """
            ),
            "\(dumped)"
        )
        #expect(pgclone.storedFiles().isEmpty)
    }

    /// An application role granted SET on lc_messages (PostgreSQL 15 and later) sets it as a
    /// superuser's restore does: the role this server lacks is recognised.
    @Test func anApplicationRoleGrantedTheSettingReadsTheServerInEnglish() async throws {
        let server = try PGCloneHarness().server
        let user = try await germanRole(server, attributes: "CREATEDB")
        try await server.psql("GRANT SET ON PARAMETER lc_messages TO \(quoteIdentifier(user.user))")
        let pgclone = try PGCloneHarness(server: user)
        let key = try await dumpWithAGoneRole(pgclone, server)
        let target = TestEnvironment.uniqueName("lang_set_dst")
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(restored.stderr.contains("(no such role here) was skipped"), "\(restored)")
        #expect(!restored.stderr.contains("lc_messages"), "\(restored)")
    }
}
