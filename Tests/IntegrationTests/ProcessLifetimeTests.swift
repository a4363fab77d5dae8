import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Nothing of a run outlives it: children die with a SIGKILLed pgclone, a lost admin session is
/// followed by a clean-up on a new one, and what killed dumps left is removed later.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct ProcessLifetimeTests {
    @Test func aSIGKILLedPgcloneTakesItsHookAndWhatTheHookStartedWithIt() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("life_hook")
        let started = pgclone.directory + "/hook-started"
        async let restoring = pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", "sleep 300 & touch \(started); sleep 301"]
        )
        try await pgclone.waitForFile(started)
        #expect(markedProcesses(pgclone.marker).contains { $0.commandLine.hasPrefix("sleep 300") })
        #expect(!pgclone.signal(SIGKILL).isEmpty)
        _ = try await restoring
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }

    /// `timeout` puts itself in a process group of its own: it still dies with pgclone.
    @Test func aHookInAProcessGroupOfItsOwnDiesWithPgcloneToo() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("life_timeout")
        let started = pgclone.directory + "/hook-started"
        async let restoring = pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", "touch \(started); timeout 120 sleep 100"]
        )
        try await pgclone.waitForFile(started)
        let sleeping = try await pgclone.waitForProcesses(count: 2) {
            $0.hasPrefix("timeout 120 sleep 100") || $0.hasPrefix("sleep 100")
        }
        #expect(sleeping.count == 2, "timeout and its sleep: \(sleeping)")
        #expect(!pgclone.signal(SIGKILL).isEmpty)
        _ = try await restoring
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }

    @Test func aSIGKILLedPgcloneTakesPgRestoreAndItsJobsWithIt() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("life_jobs")
        let target = TestEnvironment.uniqueName("life_jobs_dst")
        try await server.createDatabase(source)
        // 10 s of restoring one table: the leader and its workers run that long.
        try await server.psql(Fixtures.slowRestoreSQL(rows: 8000, milliseconds: 5), database: source)
        try await server.psql("CREATE TABLE other AS SELECT i FROM generate_series(1, 100000) AS i", database: source)
        // Without an index, so that pg_restore -j loads the data (PieceRestoreTests kill a restore in pieces).
        let key = try await pgclone.dumpWithoutIndex(source)
        async let restoring = pgclone.restore(key, into: target, ["--jobs", "2"])
        let workers = try await pgclone.waitForProcesses(count: 3) { $0.contains("/pg_restore ") }
        #expect(workers.count >= 3, "pg_restore and its two jobs: \(workers)")
        #expect(!pgclone.signal(SIGKILL).isEmpty)
        _ = try await restoring
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }

    @Test func anAdminSessionEndedMidRestoreIsCleanedUpOnANewOne() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("life_admin")
        // Before the swap, a DBA ends pgclone's own session (the hook's parent is pgclone).
        let hook =
            #"psql -X -q -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "#
            + #"application_name = 'pgclone[$PPID]'" >/dev/null"#
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        // pgclone notices within a tenth of a second, and stops: the lock went with the session.
        #expect(
            result.errorLines.first?.hasPrefix(
                "pgclone: error: the session holding the lock on \"\(target)\" was lost ("
            ) == true,
            "\(result)"
        )
        #expect(result.errorLines.first?.hasSuffix("; \"\(target)\" is unchanged") == true, "\(result)")
        // pgclone reconnected and dropped what it had made.
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.markers(target) == "old")
    }

    @Test func partialFilesOfKilledDumpsAreRemovedLater() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("life_partial")
        try await server.createDatabase(source)
        let directory = pgclone.storage + "/" + source
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // One left by a killed dump (nobody holds it), one a running dump still writes (locked).
        let abandoned = directory + "/.20261101T000000.000000Z.default.dump.4242.partial"
        let live = directory + "/.20261101T000001.000000Z.default.dump.4243.partial"
        FileManager.default.createFile(atPath: abandoned, contents: Data("half".utf8))
        FileManager.default.createFile(atPath: live, contents: Data("half".utf8))
        let holder = open(live, O_RDONLY)
        defer { close(holder) }
        #expect(flock(holder, LOCK_EX) == 0)

        let dumped = try await pgclone.run(["dump", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(
            dumped.stderr.contains(
                """
                pgclone: removed .pgclone/\(source)/.20261101T000000.000000Z.default.dump.4242.partial, left by a \
                dump that was killed
                """
            ),
            "\(dumped)"
        )
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(FileManager.default.fileExists(atPath: live))

        // prune removes them too, but only with --confirm.
        FileManager.default.createFile(atPath: abandoned, contents: Data("half".utf8))
        let dryRun = try await pgclone.run(["prune", "--keep-last", "5"])
        #expect(dryRun.exitCode == 0, "\(dryRun)")
        #expect(FileManager.default.fileExists(atPath: abandoned))
        let pruned = try await pgclone.run(["prune", "--keep-last", "5", "--confirm"])
        #expect(pruned.exitCode == 0, "\(pruned)")
        #expect(!FileManager.default.fileExists(atPath: abandoned))
        #expect(FileManager.default.fileExists(atPath: live))
    }
}
