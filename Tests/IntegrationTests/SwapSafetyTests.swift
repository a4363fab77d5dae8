import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// pgclone dying, being interrupted, or the server restarting in the middle of the swap never
/// leaves `D` refusing connections, and what pgclone reports agrees with what `D` holds.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct SwapSafetyTests {
    /// A pre-swap hook that leaves, in the background, a session holding a lock on `D__temp` for
    /// `seconds`, and ends once the lock is held: the swap's rename waits for it, with `D` refusing
    /// connections. If the hook's psql is killed (with pgclone), its server process notices within
    /// 100 ms and rolls back, rather than commit its comment on `D__temp` once the sleep is over.
    /// The session says it holds the lock by touching a file, and `seconds` count from then; the
    /// hook fails if the session ends first (a loaded machine once let a 5 s lock come and go
    /// between two polls of `pg_locks`, and the hook waited for it for 25 minutes). The lock is
    /// held long enough for a test starved for seconds to see pgclone wait (a loaded full run
    /// once saw nothing in 20 s, and the swap went through before the test killed pgclone).
    static func lockingHook(_ target: String, seconds: Int = 50, suffix: String = "__temp") -> String {
        #"held=$(mktemp -u); psql -X -q -v ON_ERROR_STOP=1 -d postgres "#
            + #"-c "SET client_connection_check_interval = 100" -c BEGIN "#
            + #"-c "COMMENT ON DATABASE \#(target)\#(suffix) IS 'x'" -c "\! touch $held" "#
            + #"-c "SELECT pg_sleep(\#(seconds))" -c COMMIT >/dev/null 2>&1 & holder=$!; n=0; "#
            + #"until [ -e "$held" ]; do kill -0 $holder 2>/dev/null && [ $n -lt 1200 ] || "#
            + #"{ echo "the lock on \#(target)\#(suffix) was never taken" >&2; exit 1; }; "#
            + #"n=$((n + 1)); sleep 0.05; done; rm -f "$held""#
    }

    /// A `pgclone.yaml` that lets the swap wait for locks longer than the 10 s default, for the
    /// tests that hold one on purpose.
    static func allowLongLockWaits(_ pgclone: PGCloneHarness) throws {
        try "lock_timeout: 120s\n".write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
    }

    /// Waits until pgclone `pid` waits on a lock inside the swap.
    static func waitUntilInTheSwap(_ server: PostgresServer, _ pid: Int32) async throws {
        try await waitUntil("pgclone waiting inside the swap") { try await server.pgcloneWaitsOnALock(pid) }
    }

    @Test(arguments: TestRole.allCases)
    func aPgcloneKilledWhileTheSwapWaitsLeavesTheTargetOpen(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let pgclone = try PGCloneHarness(server: try await role.user(on: server))
        let user = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("guard")
        try Self.allowLongLockWaits(pgclone)
        let sessions = try await user.sessions(on: target, count: 30)

        async let restoring = pgclone.restore(key, into: target, ["--pre-swap-hook", Self.lockingHook(target)])
        let pid = try await pgclone.waitForPGClone()
        try await Self.waitUntilInTheSwap(server, pid)
        // (A new session on D would now wait for the swap's transaction: the rename holds D's lock.)
        kill(pid, SIGKILL)
        let killed = ContinuousClock.now
        let result = try await restoring
        #expect(result.exitCode == 128 + SIGKILL, "\(result)")
        // A fraction of a second; 10 s is a bound with room for a machine loaded by the other tests.
        let reopened = try await user.waitUntilAccepting(target, within: .seconds(10))
        #expect(
            reopened != nil && ContinuousClock.now - killed < .seconds(10),
            "\(target) still refused connections 10 s after pgclone was killed"
        )
        let value = try await user.markers(target)
        #expect(value == "old", "\(result)")
        for session in sessions { await session.close() }
        // The hook's background psql went with pgclone.
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)

        // The next restore drops what the killed one left and goes through.
        let again = try await pgclone.restore(key, into: target)
        #expect(again.exitCode == 0, "\(again)")
        #expect(try await user.markers(target) == "new")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test(arguments: TestRole.allCases)
    func randomSIGKILLsDuringTheSwapNeverLeaveTheTargetClosed(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let pgclone = try PGCloneHarness(server: try await role.user(on: server))
        let user = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("kill")
        var seen: [String: Int] = [:]
        var reopenings: [Duration] = []
        for iteration in 0..<20 {
            // Every other run keeps the snapshots: the swap's transaction renames five databases.
            let (_, killed) = try await Self.signalInTheSwapWindow(
                pgclone,
                key: key,
                target: target,
                iteration: iteration,
                signal: SIGKILL,
                sessions: 30,
                within: 120,
                arguments: iteration % 2 == 0 ? ["--reversible"] : []
            )
            // The guard reopens it in a fraction of a second (the run prints the figures); 30 s is
            // a bound with room for a machine loaded by the other tests (5 s was passed twice under
            // a full suite, 10 s once with other restores running beside it), not a measurement.
            let reopened = try await user.waitUntilAccepting(target, within: .seconds(30))
            #expect(
                reopened != nil && ContinuousClock.now - killed < .seconds(30),
                "kill \(iteration): \(target) still refused connections 30 s after pgclone was killed"
            )
            reopenings.append(ContinuousClock.now - killed)
            let value = try await user.markers(target)
            #expect(value == "old" || value == "new", "kill \(iteration): \(target) holds \(value)")
            seen[value, default: 0] += 1
        }
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
        let sorted = reopenings.sorted()
        print(
            """
            SIGKILLs in the swap window (\(role)): \(seen); D accepted a new session \(sorted[sorted.count / 2]) \
            (median), \(sorted.last!) (max) after the kill
            """
        )
        let again = try await pgclone.restore(key, into: target)
        #expect(again.exitCode == 0, "\(again)")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    @Test(arguments: TestRole.allCases)
    func sigtermAtRandomInstantsOfTheSwapIsReportedAsWhatHappened(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let pgclone = try PGCloneHarness(server: try await role.user(on: server))
        let user = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("term")
        var seen: [Int32: Int] = [:]
        for iteration in 0..<12 {
            let textfiles = try pgclone.makeDirectory("textfiles-\(iteration)")
            let (result, _) = try await Self.signalInTheSwapWindow(
                pgclone,
                key: key,
                target: target,
                iteration: iteration,
                signal: SIGTERM,
                sessions: 10,
                within: 80,
                arguments: ["--json", "--metrics-textfile", textfiles]
            )
            seen[result.exitCode, default: 0] += 1
            #expect(await user.acceptsConnections(target), "SIGTERM \(iteration): \(result)")
            let value = try await user.markers(target)
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
            let outcome = try Self.outcome(in: textfiles)
            let lastLine = result.stderrLines.last ?? ""
            switch result.exitCode {
            case 0:
                #expect(value == "new", "SIGTERM \(iteration): \(result)")
                #expect(json["source"] as? String == key, "SIGTERM \(iteration): \(result)")
                #expect(outcome == "success")
                #expect(!lastLine.hasPrefix("pgclone: error:"), "SIGTERM \(iteration): \(result)")
            case 128 + SIGTERM:
                #expect(value == "old", "SIGTERM \(iteration): \(result)")
                let error = json["error"] as? [String: Any]
                #expect(error?["code"] as? String == "cancelled", "SIGTERM \(iteration): \(result)")
                #expect(error?["database_state"] as? String == "unchanged")
                #expect(outcome == "aborted")
                #expect(
                    lastLine.hasPrefix("pgclone: error: ") && lastLine.hasSuffix("\"\(target)\" is unchanged"),
                    "SIGTERM \(iteration): \(result)"
                )
            default:
                Issue.record("SIGTERM \(iteration): unexpected \(result)")
            }
        }
        print("SIGTERMs in the swap window (\(role)): exit codes \(seen)")
        // Interrupts that came before the COMMIT undid the swap (most of them: it is short).
        #expect(seen[128 + SIGTERM, default: 0] > 0)
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }

    /// `copy` interrupted at random instants: it either made the snapshot and says so (exit 0, its
    /// name on stdout), or made none and says that.
    @Test func sigtermDuringACopyIsReportedAsWhatHappened() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("copyterm")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 200000) AS i",
            database: source
        )
        var seen: [Int32: Int] = [:]
        for iteration in 0..<8 {
            let snapshot = "\(source)_s\(iteration)"
            let copying = Task { try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(source)]) }
            // Until it runs, or has already ended: a quick copy can come and go between two looks.
            let finished = StopFlag()
            Task {
                _ = await copying.result
                finished.set()
            }
            while pgclone.pgclonePIDs().isEmpty && !finished.isSet { try await Task.sleep(for: .milliseconds(5)) }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...1000)))
            pgclone.signal(SIGTERM)
            let result = try await copying.value
            seen[result.exitCode, default: 0] += 1
            let made = try await server.databases(startingWith: snapshot) == [snapshot]
            switch result.exitCode {
            case 0:
                #expect(made && result.stdout == ":\(snapshot)\n", "copy \(iteration): \(result)")
            case 128 + SIGTERM:
                #expect(!made && result.stdout.isEmpty, "copy \(iteration): \(result)")
            default:
                Issue.record("copy \(iteration): unexpected \(result)")
            }
        }
        print("SIGTERMs during copy: exit codes \(seen)")
        #expect(await server.acceptsConnections(source))
    }

    /// A session holding a lock the swap needs fails the swap after `lock_timeout` (10 s unless
    /// pgclone.yaml says otherwise), and `D` opens again: it is never closed for as long as
    /// another session likes.
    @Test func aLockHeldOnTheTemporaryDatabaseFailsTheSwapAfterTheLockTimeout() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("locktimeout")
        try "lock_timeout: 2s\n".write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
        let result = try await pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", Self.lockingHook(target, seconds: 30)]
        )
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: swapping \"\(target)__temp\" into \"\(target)\": canceling statement due to lock \
                timeout; \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(await pgclone.server.acceptsConnections(target))
        #expect(try await pgclone.server.markers(target) == "old")
        #expect(
            try await pgclone.server.psql(
                "SELECT shobj_description(oid, 'pg_database') IS NULL FROM pg_database WHERE datname = '\(target)'"
            ) == "t"
        )
    }

    /// A lock held on `D` itself keeps it from closing: the swap gives up after `lock_timeout`
    /// once, with `D` open and as it was (it waited twice: the close, then a reopening of a `D`
    /// that had never closed).
    @Test func aLockHeldOnTheTargetFailsTheSwapAfterOneLockTimeout() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("locktarget")
        try "lock_timeout: 5s\n".write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
        let sampler = try await pgclone.server.sampleLockWaits(on: target)
        let failed = try await pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", Self.lockingHook(target, seconds: 60, suffix: "")]
        )
        let waited = try await sampler.stop()
        #expect(failed.exitCode == 1, "\(failed)")
        #expect(
            failed.errorLines.first
                == """
                pgclone: error: swapping \"\(target)__temp\" into \"\(target)\": canceling statement due to lock \
                timeout; \"\(target)\" is unchanged
                """,
            "\(failed)"
        )
        #expect(waited.count == 1, "\(waited)")
        #expect(await pgclone.server.acceptsConnections(target))
        #expect(try await pgclone.server.markers(target) == "old")
        try await pgclone.server.endLockHolders(on: target)
    }

    /// A REVOKE a DBA commits on `D` while the swap waits to close it is kept: `D`'s privileges
    /// are read in the swap's transaction, not when it began (the REVOKE was undone, and the
    /// restored `D` let the role in again).
    @Test func aRevokeCommittedDuringTheSwapIsKept() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("swaprevoke")
        let reader = try await server.createRole("reader")
        let (name, readerName) = (quoteIdentifier(target), quoteIdentifier(reader.user))
        try await server.psql(
            "REVOKE ALL ON DATABASE \(name) FROM PUBLIC; GRANT CONNECT ON DATABASE \(name) TO \(readerName)"
        )
        try Self.allowLongLockWaits(pgclone)
        // The hook leaves a lock on D, which the swap waits for to close D. Once it waits, the
        // REVOKE is committed and the lock released.
        async let restored = pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", Self.lockingHook(target, seconds: 60, suffix: "")]
        )
        let pid = try await pgclone.waitForPGClone()
        try await waitUntil("pgclone waiting to close \(target)", within: .seconds(180)) {
            try await !server.pgcloneLockWaits(pid).isEmpty
        }
        try await server.psql("REVOKE CONNECT ON DATABASE \(name) FROM \(readerName)")
        try await server.endLockHolders(on: target)
        let result = try await restored
        #expect(result.exitCode == 0, "\(result)")
        #expect(try await server.markers(target) == "new")
        let connects =
            "SELECT has_database_privilege(\(server.literal(reader.user)), \(server.literal(target)), 'CONNECT')"
        #expect(try await server.psql(connects) == "f", "\(result)")
    }

    /// A database a DBA closed with no connection limit and no comment looks like one pgclone
    /// was killed making; but only databases with pgclone's own names are taken for that: such a
    /// database is listed by `ls --local` and restored from.
    @Test func aClosedDatabaseOfADBAsIsASource() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let archive = TestEnvironment.uniqueName("archive")
        try await server.createDatabase(archive)
        try await server.psql("CREATE TABLE t AS SELECT 1 AS v", database: archive)
        try await server.psql("ALTER DATABASE \(quoteIdentifier(archive)) ALLOW_CONNECTIONS false CONNECTION LIMIT 0")
        let listed = try await pgclone.run(["ls", "--local", "--database", server.url(archive)])
        #expect(listed.stdout.contains(":\(archive)\n"), "\(listed)")
        let target = TestEnvironment.uniqueName("archive_dst")
        let restored = try await pgclone.restore(":\(archive)", into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.psql("SELECT v FROM t", database: target) == "1")
        for database in [archive, target] { try await server.dropDatabase(database) }
    }

    /// A database a DBA closed stays closed: neither a leftover of a killed restore nor the
    /// restore itself opens it (only what pgclone's own swap closed is reopened).
    @Test func aDatabaseADBAClosedStaysClosed() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("dbaclosed")
        // A restore killed in its hook leaves its D__temp.
        let started = pgclone.directory + "/hook-started"
        async let killed = pgclone.restore(key, into: target, ["--pre-swap-hook", "touch \(started); sleep 60"])
        try await pgclone.waitForFile(started)
        pgclone.signal(SIGKILL)
        _ = try await killed
        #expect(try await server.databases(startingWith: target) == [target, "\(target)__temp"])
        try await server.psql("ALTER DATABASE \(quoteIdentifier(target)) ALLOW_CONNECTIONS false")
        let listed = try await pgclone.run(["ls", "--local", "--database", server.url(target)])
        #expect(listed.exitCode == 0, "\(listed)")
        // The killed restore's D__temp may be half restored: not listed, and no source.
        #expect(listed.stdout.contains(":\(target)\n") && !listed.stdout.contains(":\(target)__temp"), "\(listed)")
        let elsewhere = TestEnvironment.uniqueName("dbaclosed_other")
        let fromLeftover = try await pgclone.run(["restore", ":\(target)__temp", "--database", server.url(elsewhere)])
        #expect(fromLeftover.exitCode == 2, "\(fromLeftover)")
        #expect(
            fromLeftover.errorLines == [
                """
                pgclone: error: \"\(target)__temp\" is the temporary database of a restore (one running, or one \
                killed before its swap): it may be half made, and is no source to copy; restore from a dump, or \
                from a database pgclone finished; \"\(elsewhere)\" is unchanged
                """
            ],
            "\(fromLeftover)"
        )
        #expect(try await server.databases(startingWith: elsewhere).isEmpty)
        #expect(!listed.stderr.contains("accepts them again"), "\(listed)")
        #expect(await !server.acceptsConnections(target))
        let restored = try await pgclone.restore(key, into: target, ["--wait=30s", "--reversible"])
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(await !server.acceptsConnections(target), "the restored database must stay closed as the old one was")
        // Nor do the snapshots of the restore or a copy open its data.
        #expect(await !server.acceptsConnections("\(target)__current"))
        #expect(await !server.acceptsConnections("\(target)__previous"))
        let snapshot = TestEnvironment.uniqueName("dbaclosed_copy")
        let copied = try await pgclone.run(["copy", ":\(snapshot)", "--database", server.url(target)])
        #expect(copied.exitCode == 0, "\(copied)")
        #expect(await !server.acceptsConnections(snapshot))
        try await server.psql("ALTER DATABASE \(quoteIdentifier(target)) ALLOW_CONNECTIONS true")
        #expect(try await server.markers(target) == "new")
        #expect(
            try await server.databases(startingWith: target) == [target, "\(target)__current", "\(target)__previous"]
        )
    }

    /// Restores `key` into `target` (its marker reset to 'old', with `sessions` idle sessions on it,
    /// closed afterwards) and sends `signal` to pgclone 0 to `within` ms after its pre-swap hook
    /// ended: somewhere in the swap, or just before or after it. Returns what pgclone did and when
    /// the signal was sent.
    static func signalInTheSwapWindow(
        _ pgclone: PGCloneHarness,
        key: String,
        target: String,
        iteration: Int,
        signal: Int32,
        sessions count: Int,
        within milliseconds: Int,
        arguments: [String] = []
    ) async throws -> (result: CommandResult, signalled: ContinuousClock.Instant) {
        let user = pgclone.server
        try await user.psql("UPDATE marker SET v = 'old'", database: target)
        let sessions = try await user.sessions(on: target, count: count)
        let hookEnded = pgclone.directory + "/hook-\(iteration)"
        // --wait: the server process of the pgclone killed before may still hold the lock for
        // the moment it takes to notice.
        let restoring = Task {
            try await pgclone.restore(
                key,
                into: target,
                ["--pre-swap-hook", "touch \(hookEnded)", "--wait=60s"] + arguments
            )
        }
        let finished = StopFlag()
        Task {
            _ = await restoring.result
            finished.set()
        }
        while !FileManager.default.fileExists(atPath: hookEnded) {
            if finished.isSet {
                throw TestSetupError("restore \(iteration) ended before its hook: \(try await restoring.value)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...milliseconds)))
        pgclone.signal(signal)
        let signalled = ContinuousClock.now
        let result = try await restoring.value
        for session in sessions { await session.close() }
        return (result, signalled)
    }

    /// The job's outcome in the node_exporter textfile pgclone wrote in `directory`.
    static func outcome(in directory: String) throws -> String? {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        guard let file = files.first(where: { $0.hasPrefix("pgclone_restore_") && !$0.hasSuffix("_success.prom") })
        else { return nil }
        let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
        guard
            let line = text.split(separator: "\n").first(where: {
                $0.hasPrefix("pgclone_job_outcome{") && ($0.hasSuffix("} 1") || $0.hasSuffix("} 1.0"))
            }),
            let start = line.firstRange(of: "outcome=\"")
        else { return nil }
        return String(line[start.upperBound...].prefix { $0 != "\"" })
    }
}

/// The server restarting (a crash, as its sessions see it) in the middle of the swap: the guard's
/// session goes too, so pgclone itself, or the next pgclone command, lets `D` accept connections.
@Suite(
    .enabled(
        if: TestEnvironment.crashPostgresURL != nil,
        "run with scripts/test.sh (needs PGCLONE_TEST_CRASH_POSTGRES_URL)"
    )
)
struct SwapCrashTests {
    private func restartServer() async throws {
        let result = try await runCommand(TestEnvironment.crashRestartScript ?? "false", [])
        try #require(result.exitCode == 0, "restart: \(result)")
    }

    /// One test, one role after the other: each restart takes the whole cluster.
    @Test func anImmediateRestartInTheSwapWindow() async throws {
        let server = try #require(PostgresServer.crash)
        for role in TestRole.allCases {
            let pgclone = try PGCloneHarness(server: try await role.user(on: server))
            let user = pgclone.server
            let (key, target) = try await pgclone.targetAndDump("crash")
            try SwapSafetyTests.allowLongLockWaits(pgclone)
            try await user.psql("COMMENT ON DATABASE \(quoteIdentifier(target)) IS 'the app''s'")

            // pgclone survives the restart: its swap fails, and it lets D accept connections again.
            async let restoring = pgclone.restore(
                key,
                into: target,
                ["--pre-swap-hook", SwapSafetyTests.lockingHook(target)]
            )
            try await SwapSafetyTests.waitUntilInTheSwap(server, try await pgclone.waitForPGClone())
            try await restartServer()
            let failed = try await restoring
            #expect(failed.exitCode == 1, "\(role): \(failed)")
            #expect(failed.errorLines.count == 1, "\(role): \(failed)")
            #expect(
                failed.errorLines.first?.hasPrefix(
                    """
                    pgclone: error: swapping \"\(target)__temp\" into \"\(target)\": the connection to PostgreSQL was \
                    lost (
                    """
                ) == true,
                "\(role): \(failed)"
            )
            #expect(failed.errorLines.first?.hasSuffix("; \"\(target)\" is unchanged") == true, "\(role): \(failed)")
            #expect(
                failed.stderr.contains(
                    """
                    pgclone: warning: \"\(target)\" was left refusing connections by the swap that failed; it accepts \
                    them again
                    """
                ),
                "\(role): \(failed)"
            )
            #expect(await user.acceptsConnections(target))
            #expect(try await user.markers(target) == "old")
            #expect(try await server.databases(startingWith: target) == [target])
            // Its comment, which the closed D carried inside pgclone's mark, is back.
            #expect(
                try await user.psql(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '\(target)'"
                ) == "the app's"
            )

            // pgclone frozen, the server restarted, then pgclone killed: nothing is left to reopen D
            // but the next pgclone command, which says so.
            async let frozen = pgclone.restore(
                key,
                into: target,
                ["--pre-swap-hook", SwapSafetyTests.lockingHook(target)]
            )
            let pid = try await pgclone.waitForPGClone()
            try await SwapSafetyTests.waitUntilInTheSwap(server, pid)
            kill(pid, SIGSTOP)
            try await restartServer()
            kill(pid, SIGKILL)
            _ = try await frozen
            #expect(await !user.acceptsConnections(target), "\(role): the restart should have left \(target) closed")
            let next = try await pgclone.restore(key, into: target, ["--pre-swap-hook", "exit 3"])
            #expect(next.exitCode == 1, "\(role): \(next)")
            #expect(
                next.stderr.contains(
                    """
                    pgclone: warning: \"\(target)\" refused connections, left so by a pgclone swap that was cut short \
                    (a server restart or crash); it accepts them again
                    """
                ),
                "\(role): \(next)"
            )
            #expect(
                next.errorLines == [
                    "pgclone: error: pre-swap hook 1 (exit 3) exited with status 3; \"\(target)\" is unchanged"
                ],
                "\(role): \(next)"
            )
            #expect(await user.acceptsConnections(target))
            #expect(try await user.markers(target) == "old")

            // The same through `ls --local`, which touches D too.
            async let again = pgclone.restore(
                key,
                into: target,
                ["--pre-swap-hook", SwapSafetyTests.lockingHook(target)]
            )
            let second = try await pgclone.waitForPGClone()
            try await SwapSafetyTests.waitUntilInTheSwap(server, second)
            kill(second, SIGSTOP)
            try await restartServer()
            kill(second, SIGKILL)
            _ = try await again
            #expect(await !user.acceptsConnections(target))
            let listed = try await pgclone.run(["ls", "--local", "--database", user.url(target)])
            #expect(listed.exitCode == 0, "\(role): \(listed)")
            #expect(
                listed.stderr.contains(
                    "\"\(target)\" refused connections, left so by a pgclone swap that was cut short"
                ),
                "\(role): \(listed)"
            )
            #expect(await user.acceptsConnections(target))
            #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
        }
    }
}
