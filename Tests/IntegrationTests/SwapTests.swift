import Foundation
import PGCloneActors
import PGCloneTestSupport
import Synchronization
import Testing

/// The swap protocol under concurrency: the advisory lock, and clients reconnecting during the swap.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct SwapTests {
    private func connect(_ server: PostgresServer, _ database: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(ConnectionSettings(conninfo: server.url(database), from: "test"))
    }

    /// pgclone's advisory lock for `target`, taken in the maintenance database as pgclone does.
    private func holdLock(_ server: PostgresServer, _ target: String) async throws -> PostgresConnection {
        let connection = try await connect(server, "postgres")
        try await connection.query(
            "SELECT pg_advisory_lock(('x' || substr(md5('pgclone restore ' || $1), 1, 16))::bit(64)::bigint)",
            [target]
        )
        return connection
    }

    @Test func aSecondRestoreOfTheSameDatabaseFailsFastWithExitCode4() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("lock")
        let holder = try await holdLock(pgclone.server, target)
        let result = try await pgclone.restore(key, into: target)
        await holder.close()
        #expect(result.exitCode == 4, "\(result)")
        // The holder is named: this test process's session.
        let line = try #require(result.errorLines.first)
        #expect(result.errorLines.count == 1)
        #expect(
            line.hasPrefix(
                """
                pgclone: error: another pgclone restore of database \"\(target)\" is running (pgclone[\(getpid())], \
                server pid 
                """
            )
        )
        #expect(line.hasSuffix(" UTC); wait for it to finish, or pass --wait; \"\(target)\" is unchanged"))
        #expect(try await pgclone.server.psql("SELECT v FROM marker", database: target) == "old")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    /// A session on D__temp — one a hook left in the background — is ended with D's, before D
    /// closes: the rename no longer waits for it with D refusing connections, and fails.
    @Test func aSessionAHookLeftOnTheCopyIsEnded() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("leftsess")
        let arrived =
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(target)__temp' AND pid <> pg_backend_pid()"
        let hook =
            #"(psql -X -q -c 'SELECT pg_sleep(60)' >/dev/null 2>&1 &) ; "#
                + """
                for i in $(seq 1 600); do [ \"$(psql -X -At -c \"\(arrived)\")\" = 1 ] && exit 0; sleep 0.1; done; \
                exit 1
                """
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(result.exitCode == 0, "\(result)")
        // Ended, but not counted as one of D's: only sessions on D are (the application's), not
        // those on D__temp (a hook's, or pg_restore's own still leaving, which made restores that
        // no one used say "1 session terminated").
        #expect(result.stderr.contains("(0 sessions terminated)"), "\(result)")
        #expect(try await pgclone.server.markers(target) == "new")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    /// The time D refused connections counts from when it was closed: not the time closing it
    /// waited for a lock (here a transaction holding D's comment, which the close sets), while
    /// D still let everyone in.
    @Test func theTimeDRefusedConnectionsLeavesOutTheWaitToClose() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("unavail")
        let held = pgclone.directory + "/comment-held"
        let hook = """
            (psql -X -q -d '\(target)' -c "BEGIN" -c "COMMENT ON DATABASE \\"\(target)\\" IS 'held'" \
            -c "\\! touch \(held)" -c "SELECT pg_sleep(4)" -c "ROLLBACK" >/dev/null 2>&1 &); \
            for i in $(seq 1 600); do [ -e \(held) ] && exit 0; sleep 0.1; done; exit 1
            """
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(result.exitCode == 0, "\(result)")
        let refused = result.stderr.firstMatch(of: /it refused connections for ([0-9.]+) s/).flatMap { Double($0.1) }
        // About a tenth of a second; the comment was held for 4 s, most of it after the hook ended.
        #expect(refused.map { $0 < 2.5 } == true, "\(result)")
        #expect(try await pgclone.server.markers(target) == "new")
    }

    @Test func waitWaitsForTheLock() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("wait")
        let holder = try await holdLock(pgclone.server, target)
        async let restoring = pgclone.restore(key, into: target, ["--wait"])
        try await Task.sleep(for: .seconds(2))
        #expect(try await pgclone.server.psql("SELECT v FROM marker", database: target) == "old")
        await holder.close()
        let result = try await restoring
        #expect(result.exitCode == 0, "\(result)")
        #expect(try await pgclone.server.psql("SELECT v FROM marker", database: target) == "new")
    }

    @Test func waitWithADurationGivesUp() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("waitfor")
        let holder = try await holdLock(pgclone.server, target)
        let clock = ContinuousClock()
        let start = clock.now
        let result = try await pgclone.restore(key, into: target, ["--wait=2s"])
        let elapsed = clock.now - start
        await holder.close()
        #expect(result.exitCode == 4, "\(result)")
        #expect(
            result.errorLines.first?.hasSuffix("it was still running after 2.000 s; \"\(target)\" is unchanged")
                == true,
            "\(result)"
        )
        #expect(elapsed >= .seconds(2))
    }

    /// What a reconnecting client saw.
    enum Observation: Hashable {
        case data(String)
        case refused(String)
    }

    @Test func swapUnderReconnectingLoad() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let (key, target) = try await pgclone.targetAndDump("load")
        // A session held open on the target, idle in the middle of its work.
        let held = try await connect(server, target)
        try await held.query("SELECT v FROM marker")

        let stop = StopFlag()
        let settings = try ConnectionSettings(conninfo: server.url(target), from: "test")
        // Clients reconnecting as fast as they can, each recording every attempt.
        let clients = (0..<3).map { _ in
            Task { () -> [Observation] in
                var seen: [Observation] = []
                while !stop.isSet {
                    do {
                        let connection = try await PostgresConnection.connect(settings)
                        do {
                            let value = try await connection.query("SELECT v FROM marker").first?.first ?? nil
                            seen.append(.data(value ?? "NULL"))
                        } catch {
                            seen.append(.refused("query: \(error)"))
                        }
                        await connection.close()
                    } catch {
                        seen.append(.refused("\(error)"))
                    }
                }
                return seen
            }
        }
        // The catalog, read in one session: D must exist at every moment (the renames commit as one).
        let catalog = try await connect(server, "postgres")
        let watcher = Task { () -> Int in
            var missing = 0
            while !stop.isSet {
                let rows = try await catalog.query("SELECT count(*) FROM pg_database WHERE datname = $1", [target])
                if rows.first?.first != "1" { missing += 1 }
            }
            return missing
        }
        try await Task.sleep(for: .milliseconds(300))
        let result = try await pgclone.restore(key, into: target)
        try await Task.sleep(for: .milliseconds(300))
        stop.set()
        var observations: [Observation] = []
        for client in clients { observations += await client.value }
        #expect(try await watcher.value == 0, "D was missing from pg_database")
        await catalog.close()

        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stderr.contains(/\([1-9]\d* sessions? terminated\)/), "\(result)")
        // The held session was ended.
        await #expect(throws: (any Error).self) { try await held.query("SELECT 1") }
        await held.close()
        // Afterwards clients see the new data.
        #expect(try await server.psql("SELECT v FROM marker", database: target) == "new")
        #expect(observations.contains(.data("old")))
        #expect(observations.last(where: { if case .data = $0 { true } else { false } }) == .data("new"))

        // Everything else was refused while the swap ran, or was a session ended by it; a
        // database that is missing only as PostgreSQL's answer to a connection racing the rename:
        // a connection starting while the renames commit can find the name's old row, or
        // neither row (PostgreSQL looks the name up at connection start before it locks the
        // database), though the catalog never lacks D (the watcher above).
        let unexpected = observations.filter { observation in
            guard case .refused(let message) = observation else { return false }
            if message.contains("is not currently accepting connections") { return false }
            if message.contains("terminating connection due to administrator command") { return false }
            if message.hasPrefix("query:") && message.contains("server closed the connection unexpectedly") {
                return false
            }
            if message.contains("FATAL: database \"\(target)\" does not exist") { return false }
            return true
        }
        #expect(unexpected.isEmpty, "unexpected: \(Set(unexpected))")
        let refusals = observations.filter { if case .refused = $0 { true } else { false } }.count
        print("swap under load: \(observations.count) connection attempts, \(refusals) refused or ended")
    }
}

final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
