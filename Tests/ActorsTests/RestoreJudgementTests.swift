import PGCloneActors
import PGCloneStreams
import Subprocess
import Testing

/// How pg_restore's exit status and what it printed, each error judged as it came, become the
/// restore's outcome: a report (harmless errors in it as warnings), or a ``RestoreFailure`` that
/// says why, and whether `--ignore-restore-errors` accepts it.
@Suite struct RestoreJudgementTests {
    /// A statement that failed, which pg_restore carries on after.
    static let tableExists = """
        pg_restore: connecting to database for restore
        pg_restore: creating TABLE "public.t"
        pg_restore: while PROCESSING TOC:
        pg_restore: from TOC entry 215; 1259 16386 TABLE t app
        pg_restore: error: could not execute query: ERROR:  relation "t" already exists
        Command was: CREATE TABLE public.t (
            v integer
        );


        """
    static let tableExistsMessage = #"could not execute query: ERROR: relation "t" already exists"#
    static let transactionTimeout = """
        pg_restore: error: could not execute query: ERROR:  unrecognized configuration parameter "transaction_timeout"
        Command was: SET transaction_timeout = 0;

        """
    static let extensionComment = """
        pg_restore: from TOC entry 4025; 0 0 COMMENT EXTENSION plpgsql
        pg_restore: error: could not execute query: ERROR:  must be owner of extension plpgsql
        Command was: COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';

        """

    static func ignored(_ count: Int) -> String { "pg_restore: warning: errors ignored on restore: \(count)\n" }

    /// pg_restore's stderr as the runner reads it: each error judged as it completes.
    static func log(_ text: String, privileges: PrivilegeRestore? = nil) async -> ChildStderr {
        var log = ChildStderr(program: "pg_restore")
        log.append(Array(text.utf8))
        log.finish()
        for entry in log.takeFinished() {
            log.record(entry, as: await RestoreRunner.judge(entry, privileges: privileges))
        }
        return log
    }

    static func judge(
        _ status: TerminationStatus,
        _ log: ChildStderr,
        stoppedReading: Bool = false,
        ignoreErrors: Bool = false
    ) throws -> RestoreRunner.Report {
        try RestoreRunner.judgeExit(
            status,
            log,
            bytesWritten: 4096,
            stoppedReading: stoppedReading,
            ignoreErrors: ignoreErrors,
            pgRestore: "/usr/lib/postgresql/15/bin/pg_restore"
        )
    }

    @Test func aCleanExitIsASuccess() async throws {
        let log = await Self.log(
            "pg_restore: connecting to database for restore\npg_restore: creating TABLE \"public.t\"\n"
        )
        let report = try Self.judge(.exited(0), log)
        #expect(report.errorCount == 0)
        #expect(report.errors.isEmpty)
        #expect(report.harmless.isEmpty)
        #expect(report.bytesWritten == 4096)
        #expect(report.pgRestore == "/usr/lib/postgresql/15/bin/pg_restore")
    }

    @Test func statementErrorsFailTheRestoreUnlessAccepted() async throws {
        let log = await Self.log(Self.tableExists + Self.ignored(1))
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log) }
        #expect(failure.message == "pg_restore reported 1 error (first: \(Self.tableExistsMessage))")
        #expect(failure.acceptable)
        #expect(failure.report.errorCount == 1)
        #expect(
            failure.details == [
                .init("toc entry", "from TOC entry 215; 1259 16386 TABLE t app"),
                .init("statement", "CREATE TABLE public.t ("),
            ]
        )
        let accepted = try Self.judge(.exited(1), log, ignoreErrors: true)
        #expect(accepted.errorCount == 1)
        #expect(accepted.errors.map(\.message) == [Self.tableExistsMessage])
    }

    /// Two known harmless errors pass as warnings, counted by why; the same message on another
    /// statement is an error.
    @Test func harmlessErrorsAreWarningsNotFailures() async throws {
        let harmless = await Self.log(Self.transactionTimeout + Self.extensionComment + Self.ignored(2))
        let report = try Self.judge(.exited(1), harmless)
        #expect(report.errorCount == 0)
        #expect(report.errors.isEmpty)
        #expect(
            report.harmless == [
                "this server has no transaction_timeout, which pg_restore 17 and newer set": 1,
                "only the extension's owner may set its comment": 1,
            ]
        )

        let dropping = """
            pg_restore: error: could not execute query: ERROR:  must be owner of extension plpgsql
            Command was: DROP EXTENSION plpgsql;

            """
        let mixed = await Self.log(Self.transactionTimeout + dropping + Self.ignored(2))
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), mixed) }
        let first = "could not execute query: ERROR: must be owner of extension plpgsql"
        #expect(failure.message == "pg_restore reported 1 error (first: \(first))")
        #expect(failure.report.harmless.values.reduce(0, +) == 1)
    }

    /// An owner this server lacks is left to the restoring role and reported as such, not as an error.
    @Test func ownersThePrivilegeReplayDealsWithAreNotErrors() async throws {
        let privileges = PrivilegeRestore(connection: ConnectionSettings(), role: nil, restoringRole: "app")
        let text = """
            pg_restore: from TOC entry 215; 1259 16386 TABLE t gone
            pg_restore: error: could not execute query: ERROR:  role "gone" does not exist
            Command was: ALTER TABLE public.t OWNER TO gone;

            """
        let log = await Self.log(text + Self.ignored(1), privileges: privileges)
        let report = try Self.judge(.exited(1), log)
        #expect(report.errorCount == 0)
        #expect(report.errors.isEmpty)
        let privilegeReport = await privileges.finish()
        #expect(privilegeReport.owners.map { "\($0.role) \($0.refusal) \($0.count)" } == ["gone missingRole 1"])
        // Without the replay, the same line is an error.
        let unjudged = await Self.log(text + Self.ignored(1))
        #expect(throws: RestoreFailure.self) { try Self.judge(.exited(1), unjudged) }
    }

    /// pg_restore gave up (no "errors ignored" tally): no flag accepts that.
    @Test func aFatalErrorFailsEvenWhenErrorsAreAccepted() async throws {
        let log = await Self.log("pg_restore: error: input file does not appear to be a valid archive\n")
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log, ignoreErrors: true) }
        #expect(failure.message == "pg_restore exited with status 1: input file does not appear to be a valid archive")
        #expect(!failure.acceptable)

        let silent = await Self.log("")
        let unexplained = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), silent) }
        #expect(unexplained.message == "pg_restore exited with status 1: it printed no message")
        #expect(!unexplained.acceptable)
    }

    @Test func aKilledPgRestoreFails() async throws {
        let log = await Self.log("pg_restore: processing data for table \"public.t\"\n")
        let failure = try #require(throws: RestoreFailure.self) {
            try Self.judge(.signaled(9), log, ignoreErrors: true)
        }
        #expect(failure.message == #"pg_restore was killed by signal 9: processing data for table "public.t""#)
        #expect(!failure.acceptable)
    }

    /// pg_restore closed its stdin before the archive's end: a success status does not make the
    /// restore whole, nor do statement errors make it acceptable.
    @Test func stoppingReadingTheArchiveIsAFailure() async throws {
        let clean = await Self.log("pg_restore: creating TABLE \"public.t\"\n")
        let stopped = try #require(throws: RestoreFailure.self) {
            try Self.judge(.exited(0), clean, stoppedReading: true)
        }
        #expect(stopped.message == "pg_restore stopped reading the archive before its end")
        #expect(!stopped.acceptable)

        let log = await Self.log(Self.tableExists + Self.ignored(1))
        let failure = try #require(throws: RestoreFailure.self) {
            try Self.judge(.exited(1), log, stoppedReading: true, ignoreErrors: true)
        }
        #expect(failure.message == "pg_restore exited with status 1: \(Self.tableExistsMessage)")
        #expect(!failure.acceptable)
    }

    @Test func anExtensionOnlyASuperuserMayCreateIsNamed() async throws {
        let log = await Self.log(
            """
            pg_restore: error: could not execute query: ERROR:  permission denied to create extension "pageinspect"
            HINT:  Must be superuser to create this extension.
            Command was: CREATE EXTENSION IF NOT EXISTS pageinspect WITH SCHEMA public;

            \(Self.ignored(1))
            """
        )
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log) }
        let named = #"only a superuser may create extension "pageinspect", which the dump holds; "#
        #expect(failure.message.hasPrefix(named))
        #expect(failure.message.hasSuffix("pgclone dump --exclude-extension pageinspect)"))
        #expect(failure.acceptable)
    }

    /// With `--jobs` pg_restore's own tally counts each error twice: the error lines are counted.
    @Test func errorsAreCountedByTheirLines() async throws {
        let log = await Self.log(Self.tableExists + Self.ignored(2))
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log) }
        #expect(failure.report.errorCount == 1)
        #expect(failure.message.hasPrefix("pg_restore reported 1 error (first: "))
    }

    /// pg_restore -j's workers wrote into each other: every error pgclone recognised was harmless,
    /// but an error marker came after another message's text, and the error it began may not have
    /// been, so the restore fails unless errors are accepted.
    @Test func interleavedOutputWithOnlyHarmlessErrorsStillFails() async throws {
        let text =
            "pg_restore:pg_restore: while PROCESSING TOC: error: could not execute query: ERROR:  x\n"
            + Self.transactionTimeout + Self.ignored(2)
        let log = await Self.log(text)
        #expect(log.interleaved)
        #expect(log.unreadErrorMarkers == 1)
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log) }
        #expect(failure.message.hasPrefix("pg_restore's parallel workers wrote their messages into each other"))
        #expect(failure.acceptable)
        #expect(failure.report.errorCount == 1)
        let accepted = try Self.judge(.exited(1), log, ignoreErrors: true)
        #expect(accepted.errorCount == 1)
        #expect(accepted.harmless.values.reduce(0, +) == 1)
    }

    /// pg_restore 18's -j into PostgreSQL 15, as it was seen: every session's `SET transaction_timeout`
    /// fails, harmlessly, and the workers' lines ran into each other, one error's too. Each error
    /// marker is read, so no error went unread: the restore passes (it failed 4 times in 10 before).
    @Test func interleavedProgressLinesWithOnlyHarmlessErrorsPass() async throws {
        let text =
            Self.transactionTimeout + "pg_restore: skipping item 2643 TABLE DATA t1\n" + Self.transactionTimeout
            + "pg_restore:pg_restore: creating INDEX \"public.t4_v_idx\"\n"
            + " executing SELECT pg_catalog.set_config('search_path', '', false);\n" + Self.transactionTimeout
            // Two start a line at once: the error's marker and message (each written at once)
            // follow both program names, and the other's text goes on the next line.
            + "pg_restore:pg_restore: error: "
            + Self.transactionTimeout.dropFirst("pg_restore: error: ".count)
            + " creating INDEX \"public.t5_v_idx\"\n" + Self.ignored(2)
        let log = await Self.log(text)
        #expect(log.interleaved)
        #expect(log.unreadErrorMarkers == 0)
        let report = try Self.judge(.exited(1), log)
        #expect(report.errorCount == 0)
        #expect(report.harmless.values.reduce(0, +) == 4)
    }

    /// A pg_restore -j worker that cannot connect (the server is full) is not a lost session.
    @Test func aWorkerThatCannotConnectIsSaidSo() async throws {
        let text = """
            pg_restore: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many \
            clients already
            pg_restore: error: a worker process died unexpectedly

            """
        let log = await Self.log(text)
        let failure = try #require(throws: RestoreFailure.self) { try Self.judge(.exited(1), log) }
        #expect(
            failure.message == """
                pg_restore could not connect to PostgreSQL (connection to server at "127.0.0.1", port 5432 failed: \
                FATAL: sorry, too many clients already); lower --jobs or raise max_connections
                """
        )
        #expect(!failure.acceptable)
    }
}
