import Foundation
import PGCloneActors
import PGCloneTestSupport
import Subprocess
import Testing

/// The session pgclone runs the dump's privileges again on, one by one, for roles this server
/// lacks (``PrivilegeRestore``).
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct PrivilegeReplayTests {
    /// Someone ends the replay session: the entry it was running is rolled back whole and run
    /// again on a new one, counted once. Its loss was reported as pg_restore's own error for that
    /// entry ("role … does not exist"), which `--ignore-restore-errors` seemed to make safe to
    /// accept, and every later entry failed the same way.
    @Test(arguments: PostgresServer.all)
    func anEndedReplaySessionIsReplaced(server: PostgresServer) async throws {
        let database = TestEnvironment.uniqueName("replay")
        try await server.createDatabase(database)
        let reader = try await server.createRole("reader")
        try await server.psql("CREATE TABLE t (i int)", database: database)
        let privileges = PrivilegeRestore(
            connection: try ConnectionSettings(conninfo: server.url(database), from: "test"),
            role: nil,
            restoringRole: server.user
        )
        // Opens the replay session; then it is ended.
        _ = try await privileges.unassignable([])
        let others = "SELECT count(*) FROM pg_stat_activity WHERE datname = \(server.literal(database))"
        _ = try await server.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(server.literal(database))"
        )
        try await waitUntil("the replay session is gone") {
            try await server.psql(others) == "0"
        }
        let entry = ChildStderr.Entry(
            message: "could not execute query: ERROR: role \"gone\" does not exist",
            tocEntry: "from TOC entry 3350; 0 0 ACL TABLE t \(server.user)",
            command: """
                REVOKE ALL ON TABLE public.t FROM PUBLIC;
                GRANT SELECT ON TABLE public.t TO gone;
                GRANT SELECT ON TABLE public.t TO \(quoteIdentifier(reader.user));

                """
        )
        let disposition = await privileges.judge(entry)
        #expect(disposition == .handled)
        #expect(await privileges.retryDeferred() == [])
        let report = await privileges.finish()
        #expect(report.privileges.map { "\($0.role) \($0.count)" } == ["gone 1"])
        #expect(
            try await server.psql(
                "SELECT has_table_privilege(\(server.literal(reader.user)), 'public.t', 'SELECT')",
                database: database
            ) == "t"
        )
    }

    /// The replay session lost twice on one entry (here, each new session ends itself): the entry
    /// is pgclone's error, saying its object would keep PUBLIC's default privileges, and fails the
    /// restore even with --ignore-restore-errors, which accepted it (a helper's restore swapped in
    /// a function executable by PUBLIC that the source had revoked).
    @Test(arguments: PostgresServer.all)
    func aReplaySessionLostTwiceFailsTheRestoreWhateverIsAccepted(server: PostgresServer) async throws {
        let database = TestEnvironment.uniqueName("replay_lost")
        try await server.createDatabase(database)
        try await server.psql("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", database: database)
        let privileges = PrivilegeRestore(
            connection: try ConnectionSettings(conninfo: server.url(database), from: "test"),
            role: nil,
            restoringRole: server.user,
            confirmSession: { try await $0.execute("SELECT pg_terminate_backend(pg_backend_pid())") }
        )
        let text = """
            pg_restore: from TOC entry 3351; 0 0 ACL FUNCTION f() \(server.user)
            pg_restore: error: could not execute query: ERROR:  role "gone" does not exist
            Command was: REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;
            GRANT ALL ON FUNCTION public.f() TO gone;

            pg_restore: warning: errors ignored on restore: 1

            """
        var log = ChildStderr(program: "pg_restore")
        log.append(Array(text.utf8))
        log.finish()
        for entry in log.takeFinished() {
            log.record(entry, as: await RestoreRunner.judge(entry, privileges: privileges))
        }
        for entry in await privileges.retryDeferred() { log.record(entry, as: .error) }
        let failure = try #require(throws: RestoreFailure.self) {
            try RestoreRunner.judgeExit(
                .exited(1),
                log,
                bytesWritten: 4096,
                stoppedReading: false,
                ignoreErrors: true,
                pgRestore: "pg_restore"
            )
        }
        #expect(!failure.acceptable)
        #expect(
            failure.message.hasPrefix(
                "the session running the dump's privileges again, for roles this server lacks, was lost twice ("
            ),
            "\(failure.message)"
        )
        #expect(failure.message.hasSuffix("): its object would keep PUBLIC's default privileges"))
    }

    /// A REVOKE run again by a role that does not own its object has no effect, and the server
    /// only warns: the report names the object (the warning went to a notice processor that
    /// dropped it).
    @Test(arguments: PostgresServer.all)
    func aRevokeWithoutEffectIsReported(server: PostgresServer) async throws {
        let database = TestEnvironment.uniqueName("replay_unrev")
        try await server.createDatabase(database)
        try await server.psql("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", database: database)
        let app = try await server.createRole("app", attributes: "CREATEDB")
        let privileges = PrivilegeRestore(
            connection: try ConnectionSettings(conninfo: app.url(database), from: "test"),
            role: nil,
            restoringRole: app.user
        )
        let entry = ChildStderr.Entry(
            message: "could not execute query: ERROR: role \"gone\" does not exist",
            tocEntry: "from TOC entry 3351; 0 0 ACL FUNCTION f() \(server.user)",
            command: """
                REVOKE ALL ON FUNCTION public.f() FROM PUBLIC;
                GRANT ALL ON FUNCTION public.f() TO gone;

                """
        )
        #expect(await privileges.judge(entry) == .handled)
        #expect(await privileges.retryDeferred() == [])
        let report = await privileges.finish()
        #expect(report.unrevoked == ["FUNCTION public.f()"])
        #expect(report.privileges.map { "\($0.role) \($0.count)" } == ["gone 1"])
    }
}
