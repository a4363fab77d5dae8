import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// A restore whose admin session ends (a DBA's `pg_terminate_backend`, a network cut) has lost the
/// target's lock with it: another restore of `D` may begin, drop this one's `D__temp` and make its
/// own under the same name. The first restore must then stop, write nothing into the other's
/// `D__temp`, and never take the other's swap for its own.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct LostLockTests {
    /// A query that ends the admin session of the restore into `target`, the one holding its lock;
    /// `t` if it did.
    static func endAdminSessionQuery(_ target: String) -> String {
        """
        SELECT pg_terminate_backend(l.pid) FROM pg_locks AS l CROSS JOIN \
        (SELECT ('x' || substr(md5('pgclone restore \(target)'), 1, 16))::bit(64)::bigint AS key) AS k \
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
        AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295
        """
    }

    /// `result` is a restore that failed in one line saying the session holding the lock on
    /// `target` was lost, for `reason` if given.
    static func expectLostLock(_ result: CommandResult, target: String, reason: String = "") {
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        #expect(
            result.errorLines.first?.hasPrefix(
                "pgclone: error: the session holding the lock on \"\(target)\" was lost (\(reason)"
            ) == true,
            "\(result)"
        )
    }

    /// A dump of a new database `prefix_…` whose table `marker` holds `other`: the other restore's.
    static func otherDump(_ pgclone: PGCloneHarness, _ prefix: String) async throws -> String {
        let other = TestEnvironment.uniqueName(prefix)
        try await pgclone.server.createDatabase(other)
        try await pgclone.server.psql(
            "CREATE TABLE marker (v text); INSERT INTO marker VALUES ('other')",
            database: other
        )
        return try await pgclone.dump(other)
    }

    /// What the tests of two restores of one target set up, as `role`: pgclone, the target and a
    /// dump (`marker` old and new), another dump (`other`), and the file a hook touches once it runs.
    static func twoRestores(
        _ role: TestRole,
        _ prefix: String
    ) async throws -> (pgclone: PGCloneHarness, key: String, target: String, otherKey: String, started: String) {
        let pgclone = try PGCloneHarness(server: try await role.user(on: try PostgresServer.shared))
        let (key, target) = try await pgclone.targetAndDump(prefix)
        let otherKey = try await otherDump(pgclone, "\(prefix)_other")
        return (pgclone, key, target, otherKey, pgclone.directory + "/hook-started")
    }

    /// Waits until the file at `path` exists (a hook has reached it), 2 minutes at most.
    static func waitFor(_ path: String) async throws {
        try await waitUntil("\(path) appearing", within: .seconds(120)) { FileManager.default.fileExists(atPath: path) }
    }

    /// Restore A loses its admin session while it is stopped (SIGSTOP, standing for a machine
    /// that stalls) in a pre-swap hook, and restore B of another dump runs to its end meanwhile.
    /// Resumed, A finds its session gone and `D` replaced: by B, not by A. A must say so and
    /// fail, not report B's swap as its own.
    @Test(arguments: TestRole.allCases)
    func aRestoreThatLostItsLockDoesNotTakeAnotherSwapForItsOwn(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let (pgclone, key, target, otherKey, started) = try await Self.twoRestores(role, "lostlock")
        let user = pgclone.server
        let resume = pgclone.directory + "/hook-resume"

        let hook = "touch \(started); until [ -e \(resume) ]; do sleep 0.1; done"
        async let restoring = pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        try await Self.waitFor(started)
        let pid = try #require(pgclone.pgclonePIDs().first)
        kill(pid, SIGSTOP)
        #expect(try await user.psql(Self.endAdminSessionQuery(target)) == "t")
        let second = try await pgclone.restore(otherKey, into: target)
        kill(pid, SIGCONT)
        #expect(second.exitCode == 0, "\(second)")
        FileManager.default.createFile(atPath: resume, contents: nil)
        let first = try await restoring

        Self.expectLostLock(first, target: target)
        #expect(!first.stderr.contains("the swap committed"), "\(first)")
        #expect(
            first.errorLines.first?.contains(
                "\"\(target)\" is unknown: it holds another database than before, not the one this restore made"
            ) == true,
            "\(first)"
        )
        #expect(try await user.markers(target) == "other")
        #expect(try await server.databases(startingWith: target) == [target])
    }

    /// A pre-swap hook that goes on connecting to `D__temp` (a migration tool that reconnects)
    /// after its restore lost the session holding the lock, while another restore of `D` runs:
    /// pgclone stops the hook within a tenth of a second, before the other restore has made its
    /// `D__temp`, so nothing of the hook's reaches the database the other swaps in.
    @Test(arguments: TestRole.allCases)
    func aHookThatGoesOnConnectingIsStoppedWhenTheLockIsLost(role: TestRole) async throws {
        let server = try PostgresServer.shared
        let (pgclone, key, target, otherKey, started) = try await Self.twoRestores(role, "lostlock_hook")
        let user = pgclone.server
        // The session is ended once the hook goes on connecting (had the hook ended it itself, a
        // loaded machine could have pgclone stop the hook before it said so).
        let hook = """
            touch \(started) && for i in $(seq 300); do \
            psql -X -q -c 'CREATE TABLE IF NOT EXISTS hook_was_here ()' 2>/dev/null; sleep 0.05; done
            """

        async let restoring = pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        try await Self.waitFor(started)
        #expect(try await user.psql(Self.endAdminSessionQuery(target)) == "t")
        let second = try await pgclone.restore(otherKey, into: target, ["--wait=60s"])
        #expect(second.exitCode == 0, "\(second)")
        let first = try await restoring

        // The server's own reason, which it sends the idle session before it ends it.
        Self.expectLostLock(
            first,
            target: target,
            reason:
                "FATAL: terminating connection due to administrator command; server closed the connection unexpectedly"
        )
        #expect(try await user.markers(target) == "other")
        #expect(
            try await user.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'hook_was_here'", database: target)
                == "0"
        )
        #expect(try await server.databases(startingWith: target) == [target])
    }

    /// A pre-swap hook (standing for a DBA) drops `D__temp` and makes another database of that
    /// name: the swap must not put it in place of `D`, nor may the clean-up drop it (it is not
    /// pgclone's; the clean-up dropped it by name before).
    @Test func aTemporaryDatabaseReplacedUnderItsNameIsNotSwappedIn() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("lostlock_dba")
        let hook = """
            psql -X -q -d postgres -c 'DROP DATABASE "\(target)__temp"' \
            -c 'CREATE DATABASE "\(target)__temp" TEMPLATE template0'
            """
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: "\(target)__temp" is no longer the database this restore made: it was dropped \
                and made again while this restore ran, though not by pgclone (this restore holds the lock on \
                "\(target)"); "\(target)" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await server.markers(target) == "old")
        #expect(try await server.databases(startingWith: target) == [target, "\(target)__temp"])
        try await server.dropDatabase("\(target)__temp")
    }

    /// The check each session pgclone opens to `D__temp` makes, and the admin session's own:
    /// a `D__temp` dropped and made again under the same name (what another restore does once
    /// this one has lost its lock) is not this run's.
    @Test func aTemporaryDatabaseMadeAgainUnderItsNameIsNotThisRunsOwn() async throws {
        let server = try PostgresServer.shared
        let target = TestEnvironment.uniqueName("lostlock_oid")
        let admin = try await server.connect("postgres")
        let swap = DatabaseSwap(
            admin: DatabaseAdmin(connection: admin),
            names: try DatabaseNames(target: target),
            started: "now"
        )
        try await swap.createTemporary(locale: nil)
        let session = try await server.connect("\(target)__temp")
        try await swap.confirmConnected(session)
        try await swap.confirmTemporary()
        await session.close()

        try await server.dropDatabase("\(target)__temp")
        try await server.createDatabase("\(target)__temp")
        let again = try await server.connect("\(target)__temp")
        let expected = """
            "\(target)__temp" is no longer the database this restore made: it was dropped and made again, as \
            another restore of "\(target)" does once this one has lost the session holding its lock
            """
        await #expect { try await swap.confirmConnected(again) } throws: { "\($0)" == expected }
        // The admin session answers, so the lock is held: not another restore's doing.
        await #expect {
            try await swap.confirmTemporary()
        } throws: {
            "\($0)" == """
                "\(target)__temp" is no longer the database this restore made: it was dropped and made again \
                while this restore ran, though not by pgclone (this restore holds the lock on "\(target)")
                """
        }
        await again.close()
        try await server.dropDatabase("\(target)__temp")
        await #expect {
            try await swap.confirmTemporary()
        } throws: {
            "\($0)" == "\"\(target)__temp\" no longer exists: it was dropped while this restore ran"
        }
        await admin.close()
    }
}

/// A restore in pieces that loses its admin session while a piece is being read from S3.
@Suite(.enabled(if: TestEnvironment.hasPostgresAndS3, "run with scripts/test.sh (needs PostgreSQL and moto)"))
struct S3LostLockTests {
    let s3 = S3TestServer.shared!

    /// The first piece's GET is held; meanwhile the restore's admin session is ended. The restore
    /// notices within a tenth of a second, stops its COPY sessions and says so, leaving `D` as it
    /// was. With `anotherRestore`, another restore of `D` waiting for the lock then runs to its
    /// end, untouched by the first.
    @Test(arguments: [false, true])
    func aRestoreInPiecesThatLostItsLockStopsAndLeavesTheOtherAlone(anotherRestore: Bool) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let dump = try await pgclone.dumpToNewBucket(
            s3,
            prefix: "lostlock_s3",
            rows: 200_000,
            extraSQL: "ALTER TABLE t ADD PRIMARY KEY (i);"
        )
        let target = TestEnvironment.uniqueName("lostlock_s3_dst")
        try await server.createDatabase(target)
        try await server.psql("CREATE TABLE marker (v text); INSERT INTO marker VALUES ('old')", database: target)
        let otherKey = try await LostLockTests.otherDump(pgclone, "lostlock_s3_other")

        let released = try pgclone.makeDirectory("hold") + "/released"
        let (proxied, log, stop) = try await s3.behindFaultyProxy(["GETMID:hold:20000:\(released)"])
        defer { stop() }
        var environment = dump.environment
        environment["PGCLONE_S3_ENDPOINT_URL"] = proxied.endpoint
        environment["PGCLONE_S3_STALL_TIMEOUT"] = "600"
        async let restoring = pgclone.run(
            ["restore", dump.key, "--database", server.url(target), "--jobs", "2"],
            environment: environment
        )
        for _ in 0..<3000 where !log().contains("fault GETMID:hold") { try await Task.sleep(for: .milliseconds(20)) }
        #expect(log().contains("fault GETMID:hold"), "\(log())")
        #expect(try await server.psql(LostLockTests.endAdminSessionQuery(target)) == "t")
        if anotherRestore {
            // It may have to wait for A's clean-up, which takes the lock again to drop what A made.
            let second = try await pgclone.restore(otherKey, into: target, ["--wait=60s"])
            #expect(second.exitCode == 0, "\(second)")
        }
        _ = FileManager.default.createFile(atPath: released, contents: nil)
        let first = try await restoring

        LostLockTests.expectLostLock(first, target: target)
        // Its clean-up finds D as it was, or, once the other restore has swapped, replaced by another.
        let states = [
            "\"\(target)\" is unchanged",
            """
            the state of \"\(target)\" is unknown: it holds another database than before, not the one this restore \
            made (this one lost the session holding its lock, which lets another restore begin)
            """,
        ]
        #expect(
            states.prefix(anotherRestore ? 2 : 1).contains { first.errorLines.first?.hasSuffix($0) == true },
            "\(first)"
        )
        let marker = try await server.psql("SELECT v FROM marker", database: target)
        #expect(marker == (anotherRestore ? "other" : "old"))
        #expect(try await server.databases(startingWith: target) == [target])
    }
}
