import PGCloneActors
import PGCloneStreams
import Subprocess
import Testing

@Suite struct ChildStderrTests {
    /// More objects than the list keeps: pgclone's own REVOKEs on the same objects count once,
    /// however many pg_restore's warned about (an object past the 20th was counted twice).
    @Test func revokesWithoutEffectCountEachObjectOnce() throws {
        var log = ChildStderr(program: "pg_restore")
        let names = (1...25).map { "f\($0)" }
        for name in names {
            log.append(Array("pg_restore: creating ACL \"public.FUNCTION \(name)()\"\n".utf8))
            log.append(Array("pg_restore: WARNING:  no privileges could be revoked for \"\(name)\"\n".utf8))
        }
        log.finish()
        var report = try RestoreRunner.judgeExit(
            .exited(0),
            log,
            bytesWritten: 0,
            stoppedReading: false,
            ignoreErrors: false,
            pgRestore: "pg_restore"
        )
        var privileges = PrivilegeReport(restoringRole: "app")
        for name in ["f1", "f22", "f25", "g1"] { privileges.addUnrevoked("FUNCTION public.\(name)()") }
        privileges.addUnrevoked("FUNCTION public.g1()")
        report.privileges = privileges
        let (objects, count) = report.revokesWithoutEffect
        #expect(count == 26)
        #expect(objects.count == 20)
        #expect(objects.first == "FUNCTION public.f1()")
    }

    /// The server's warning for a REVOKE that had no effect, which pg_restore prints only with
    /// --verbose, is kept with the object its "creating ACL" line names: a silently more open
    /// restore (an extension's function, the bootstrap superuser's) otherwise went unsaid.
    @Test func revokesWithoutEffectAreKeptWithTheirObject() {
        var log = ChildStderr(program: "pg_restore")
        log.append(
            Array(
                """
                pg_restore: creating ACL "public.FUNCTION soundex(text)"
                pg_restore: WARNING:  no privileges could be revoked for "soundex"
                pg_restore: WARNING:  no privileges could be revoked for "soundex"
                pg_restore: creating ACL "TABLE t"
                pg_restore: creating ACL "LANGUAGE plpgsql"
                pg_restore: WARNING:  no privileges could be revoked for "plpgsql"
                pg_restore: creating ACL "my.schema.FUNCTION difference(text, text)"
                pg_restore: WARNING:  not all privileges could be revoked for "difference"
                pg_restore: WARNING:  no privileges were granted for "levenshtein"
                pg_restore: creating ACL "b
                nl.FUNCTION metaphone(text, integer)"
                pg_restore: WARNING:  no privileges could be revoked for "metaphone"

                """.utf8
            )
        )
        log.finish()
        #expect(
            log.unrevoked == [
                "FUNCTION public.soundex(text)", "LANGUAGE plpgsql", "FUNCTION my.schema.difference(text, text)",
                "FUNCTION b\nnl.metaphone(text, integer)",
            ]
        )
        #expect(log.unrevokedCount == 4)
        #expect(log.reportedErrorCount == 0)
    }

    @Test func errorsAreCountedAndKeptWithTheirStatements() {
        var log = ChildStderr(program: "pg_restore")
        let text = """
            pg_restore: while PROCESSING TOC:
            pg_restore: from TOC entry 215; 1259 16386 TABLE t app
            pg_restore: error: could not execute query: ERROR:  relation "t" already exists
            Command was: CREATE TABLE public.t (
                v integer
            );


            pg_restore: error: could not execute query: ERROR:  role "r" does not exist
            Command was: CREATE POLICY p ON public.t TO r USING (true);
            pg_restore: warning: errors ignored on restore: 2
            """
        // Split across arbitrary chunk boundaries, as a pipe delivers it.
        let bytes = Array(text.utf8)
        for start in stride(from: 0, to: bytes.count, by: 7) {
            log.append(bytes[start..<min(start + 7, bytes.count)])
        }
        log.finish()
        log.recordAll()
        #expect(log.errorCount == 2)
        #expect(log.ignoredErrorCount == 2)
        #expect(
            log.entries.map(\.message) == [
                #"could not execute query: ERROR: relation "t" already exists"#,
                #"could not execute query: ERROR: role "r" does not exist"#,
            ]
        )
        #expect(
            log.entries.map(\.statement) == [
                "CREATE TABLE public.t (", "CREATE POLICY p ON public.t TO r USING (true);",
            ]
        )
        #expect(log.summary == #"could not execute query: ERROR: relation "t" already exists"#)
    }

    @Test func theLinesUnderAnErrorStayWithIt() {
        var log = ChildStderr(program: "pg_restore")
        log.append(
            Array(
                """
                pg_restore: from TOC entry 3340; 2606 16390 FK CONSTRAINT o o_uid_fkey app
                pg_restore: error: could not execute query: ERROR:  insert or update on table "o" violates foreign key \
                constraint "o_uid_fkey"
                DETAIL:  Key (uid)=(1) is not present in table "u".
                Command was: ALTER TABLE ONLY public.o
                    ADD CONSTRAINT o_uid_fkey FOREIGN KEY (uid) REFERENCES public.u(uid);
                pg_restore: error: could not execute query: ERROR:  permission denied to create extension "pageinspect"
                HINT:  Must be superuser to create this extension.
                Command was: CREATE EXTENSION IF NOT EXISTS pageinspect WITH SCHEMA public;

                """.utf8
            )
        )
        log.finish()
        log.recordAll()
        #expect(
            log.entries == [
                ChildStderr.Entry(
                    message:
                        #"could not execute query: ERROR: insert or update on table "o" violates foreign key "#
                        + #"constraint "o_uid_fkey""#,
                    tocEntry: "from TOC entry 3340; 2606 16390 FK CONSTRAINT o o_uid_fkey app",
                    detail: #"Key (uid)=(1) is not present in table "u"."#,
                    statement: "ALTER TABLE ONLY public.o"
                ),
                ChildStderr.Entry(
                    message: #"could not execute query: ERROR: permission denied to create extension "pageinspect""#,
                    hint: "Must be superuser to create this extension.",
                    statement: "CREATE EXTENSION IF NOT EXISTS pageinspect WITH SCHEMA public;"
                ),
            ]
        )
    }

    /// pg_dump prints the server's reason under its own error, as `pg_dump: detail:` lines: a
    /// dump whose session was terminated said only "… failed: PQgetResult() failed.".
    @Test func theProgramsOwnDetailLinesStayWithItsError() {
        var log = ChildStderr(program: "pg_dump")
        log.append(
            Array(
                """
                pg_dump: error: Dumping the contents of table "pgbench_accounts" failed: PQgetResult() failed.
                pg_dump: detail: Error message from server: FATAL:  terminating connection due to administrator command
                pg_dump: detail: Command was: COPY public.pgbench_accounts (aid, bid, abalance, filler) TO stdout;
                pg_dump: error: query failed: ERROR:  permission denied for table t
                pg_dump: detail: Query was: LOCK TABLE public.t IN ACCESS SHARE MODE
                pg_dump: hint: Grant SELECT.

                """.utf8
            )
        )
        log.finish()
        log.recordAll()
        #expect(
            log.entries == [
                ChildStderr.Entry(
                    message: #"Dumping the contents of table "pgbench_accounts" failed: PQgetResult() failed. "#
                        + "FATAL: terminating connection due to administrator command",
                    statement: "COPY public.pgbench_accounts (aid, bid, abalance, filler) TO stdout;"
                ),
                ChildStderr.Entry(
                    message: "query failed: ERROR: permission denied for table t",
                    detail: "Query was: LOCK TABLE public.t IN ACCESS SHARE MODE",
                    hint: "Grant SELECT."
                ),
            ]
        )
        #expect(log.sessionLost == log.entries.first?.message)
        // pg_dump 12 to 14 print the server's message and the statement as errors of their own.
        var old = ChildStderr(program: "pg_dump")
        old.append(
            Array(
                """
                pg_dump: error: Dumping the contents of table "t" failed: PQgetResult() failed.
                pg_dump: error: Error message from server: SSL SYSCALL error: EOF detected
                pg_dump: error: The command was: COPY public.t (i) TO stdout;

                """.utf8
            )
        )
        old.finish()
        old.recordAll()
        #expect(
            old.entries == [
                ChildStderr.Entry(
                    message: #"Dumping the contents of table "t" failed: PQgetResult() failed. "#
                        + "SSL SYSCALL error: EOF detected",
                    statement: "COPY public.t (i) TO stdout;"
                )
            ]
        )
        #expect(old.sessionLost == old.entries.first?.message)
    }

    @Test func outputStaysBounded() {
        var log = ChildStderr(program: "pg_restore")
        for index in 0..<10_000 {
            log.append(Array("pg_restore: error: failure \(index) \(String(repeating: "x", count: 1000))\n".utf8))
            log.recordAll()
        }
        log.finish()
        log.recordAll()
        #expect(log.errorCount == 10_000)
        #expect(log.entries.count == 20)
        #expect(log.tail.count == 20)
        #expect(log.tail.allSatisfy { $0.utf8.count <= 400 })
    }

    /// pg_restore -j's workers write a message's prefix and its text apart: an error line that
    /// lost its prefix among another worker's lines is noticed, so that a restore whose every
    /// recognised error was harmless does not pass on it.
    @Test func interleavedWorkersAreNoticed() {
        var log = ChildStderr(program: "pg_restore")
        log.append(Array("pg_restore: error: could not execute query: ERROR:  x\nCommand was: SELECT 1;\n".utf8))
        log.recordAll()
        #expect(!log.interleaved)
        log.append(
            Array("pg_restore:pg_restore: while PROCESSING TOC:\n error: could not execute query: ERROR:  y\n".utf8)
        )
        log.finish()
        log.recordAll()
        #expect(log.interleaved)
        // The line that lost its start is read as an error all the same.
        #expect(log.errorCount == 2)
        #expect(log.entries.last?.message == "could not execute query: ERROR: y")
        #expect(log.unreadErrorMarkers == 0)
    }
}

extension ChildStderr {
    /// Judges every complete error as an error, as a run without a judge does.
    fileprivate mutating func recordAll() {
        for entry in takeFinished() { record(entry, as: .error) }
    }
}
