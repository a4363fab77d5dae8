import Foundation
import PGCloneTestSupport
import Testing

/// SIGINT, SIGTERM and SIGHUP (a closed terminal) before the swap abort cleanly: nothing half-made is left behind.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct SignalTests {
    private func bigDatabase(_ server: PostgresServer, _ prefix: String) async throws -> String {
        let name = TestEnvironment.uniqueName(prefix)
        try await server.createDatabase(name)
        try await server.psql(
            "CREATE TABLE big AS SELECT i, repeat(md5(i::text), 6) AS payload FROM generate_series(1, 400000) AS i",
            database: name
        )
        return name
    }

    /// SIGTERM while pgclone asks each pg_dump its version (it stops them): "interrupted", not
    /// that no pg_dump was found.
    @Test func aSignalWhilePgcloneLooksForPgDumpSaysInterrupted() async throws {
        let pgclone = try PGCloneHarness()
        let tools = try pgclone.makeDirectory("slow-tools")
        for program in ["pg_dump", "pg_restore"] {
            let path = "\(tools)/\(program)"
            try "#!/bin/sh\nsleep 30\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        let dumping = Task {
            try await pgclone.run(
                ["dump", "--database", pgclone.server.url("postgres")],
                environment: ["PGCLONE_PG_BIN_DIR": tools]
            )
        }
        try await waitUntil("pg_dump --version running") {
            !pgclone.signal(0, processesMatching: ["\(tools)/pg_dump", "--version"]).isEmpty
        }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let result = try await dumping.value
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(result.errorLines == ["pgclone: error: interrupted"], "\(result)")
        #expect(pgclone.storedFiles().isEmpty)
    }

    @Test(arguments: [("SIGTERM", SIGTERM), ("SIGHUP", SIGHUP)])
    func aSignalDuringTheRestoreDropsTheTemporaryDatabase(name: String, signal: Int32) async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = try await bigDatabase(server, "sig_src")
        let target = TestEnvironment.uniqueName("sig_dst")
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE existing (v text); INSERT INTO existing VALUES ('untouched')",
            database: target
        )
        let fingerprint = try await server.tableFingerprints(target)
        let key = try await pgclone.dump(source)

        async let restoring = pgclone.restore(key, into: target)
        // Wait until pg_restore is writing into the temporary database, then stop pgclone.
        var signalled: [Int32] = []
        for _ in 0..<3000 where signalled.isEmpty {
            let rows = try await server.psql(
                """
                SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)__temp' AND application_name = \
                'pg_restore'
                """
            )
            if rows == "1" {
                signalled = pgclone.signal(signal)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let result = try await restoring
        #expect(!signalled.isEmpty, "the restore finished before it could be interrupted")
        #expect(result.exitCode == 128 + signal, "\(result)")
        #expect(result.stderr.contains("pgclone: received \(name); stopping and cleaning up"))
        #expect(result.stdout.isEmpty)
        #expect(try await server.databases(startingWith: target) == [target])
        #expect(try await server.tableFingerprints(target) == fingerprint)
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
        // The lock was released with the session: the next restore goes through.
        let again = try await pgclone.restore(key, into: target)
        #expect(again.exitCode == 0, "\(again)")
    }

    @Test func sigintDuringTheDumpLeavesNothingInStorage() async throws {
        let pgclone = try PGCloneHarness()
        let source = try await bigDatabase(pgclone.server, "sig_dump")
        async let dumping = pgclone.run(["dump", "--database", pgclone.server.url(source)])
        var signalled: [Int32] = []
        for _ in 0..<3000 where signalled.isEmpty {
            if pgclone.storedFiles().contains(where: { $0.hasSuffix(".partial") }) {
                signalled = pgclone.signal(SIGINT)
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let result = try await dumping
        #expect(!signalled.isEmpty, "the dump finished before it could be interrupted")
        #expect(result.exitCode == 128 + SIGINT, "\(result)")
        #expect(pgclone.storedFiles().isEmpty)
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }
}
