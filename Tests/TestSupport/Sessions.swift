import Foundation
package import PGCloneActors

/// Sessions on the test server, as an application keeps them, and what a client connecting sees.
extension PostgresServer {
    /// A libpq session on `database` as this server's user.
    package func connect(_ database: String) async throws -> PostgresConnection {
        try await PostgresConnection.connect(ConnectionSettings(conninfo: url(database), from: "test"))
    }

    /// `count` idle sessions on `database`.
    package func sessions(on database: String, count: Int) async throws -> [PostgresConnection] {
        var sessions: [PostgresConnection] = []
        for _ in 0..<count { sessions.append(try await connect(database)) }
        return sessions
    }

    /// Whether a new session on `database` is let in now.
    package func acceptsConnections(_ database: String) async -> Bool {
        guard let session = try? await connect(database) else { return false }
        await session.close()
        return true
    }

    /// How long `database` took to accept a new session, polled every 20 ms; `nil` if it did not
    /// within `timeout`.
    package func waitUntilAccepting(_ database: String, within timeout: Duration) async throws -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < timeout {
            if await acceptsConnections(database) { return clock.now - start }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// The values of table `marker` in `database`, sorted and joined by commas.
    package func markers(_ database: String) async throws -> String {
        try await psql("SELECT string_agg(v, ',' ORDER BY v) FROM marker", database: database)
    }

    /// Whether the pgclone process `pid` waits on a lock to rename a database (inside the swap).
    /// Run as a superuser: other roles' statements are hidden from the rest.
    package func pgcloneWaitsOnALock(_ pid: Int32) async throws -> Bool {
        try await psql(
            """
            SELECT count(*) > 0 FROM pg_stat_activity
            WHERE application_name = 'pgclone[\(pid)]' AND wait_event_type = 'Lock' AND query LIKE 'ALTER DATABASE % \
            RENAME TO %'
            """
        ) == "t"
    }

    /// The statements pgclone `pid`'s sessions wait on a lock in now, joined by ` | `; empty when
    /// none waits. Run as a superuser: other roles' statements are hidden from the rest.
    package func pgcloneLockWaits(_ pid: Int32) async throws -> String {
        try await psql(
            """
            SELECT coalesce(string_agg(query, ' | '), '') FROM pg_stat_activity
            WHERE application_name = 'pgclone[\(pid)]' AND wait_event_type = 'Lock'
            """
        )
    }

    /// Starts sampling the lock waits of pgclone's sessions in statements that name `database`,
    /// and returns once the sampling runs (start pgclone after it: a task of a loaded test run
    /// may begin seconds late). `LockWaitSampler.stop()` ends it and gives what it saw: the
    /// statements that waited, once per wait (a wait that follows another at once shows as a
    /// change of statement). The server samples every 20 ms itself, so a loaded machine cannot
    /// make the test miss a wait. Run as a superuser.
    package func sampleLockWaits(
        on database: String,
        within limit: Duration = .seconds(300)
    ) async throws
        -> LockWaitSampler
    {
        let name = "lock waits on \(database)"
        let sampling = Task {
            try await psql(
                """
                SET application_name = \(literal(name));
                CREATE FUNCTION pg_temp.lock_waits(database text, deadline timestamptz) RETURNS text
                LANGUAGE plpgsql AS $$
                DECLARE
                    waits text[] := '{}';
                    last text := '';
                    waiting text;
                BEGIN
                    BEGIN
                        WHILE clock_timestamp() < deadline LOOP
                            PERFORM pg_stat_clear_snapshot();
                            SELECT coalesce(string_agg(replace(query, E'\\n', ' '), ' | ' ORDER BY pid), '')
                            INTO waiting FROM pg_stat_activity
                            WHERE application_name ~ '^pgclone\\[[0-9]+\\]$' AND wait_event_type = 'Lock'
                                AND strpos(query, database) > 0;
                            IF waiting <> '' AND waiting <> last THEN waits := waits || waiting; END IF;
                            last := waiting;
                            PERFORM pg_sleep(0.02);
                        END LOOP;
                    EXCEPTION WHEN query_canceled THEN NULL;
                    END;
                    RETURN array_to_string(waits, E'\\n');
                END $$;
                SELECT pg_temp.lock_waits(
                    \(literal(database)), clock_timestamp() + interval '\(limit.components.seconds) s');
                """
            )
        }
        let running = """
            SELECT count(*) > 0 FROM pg_stat_activity
            WHERE application_name = \(literal(name)) AND query LIKE 'SELECT pg_temp.lock_waits%'
            """
        do {
            try await waitUntil("the sampling of lock waits on \(database) to begin") { try await psql(running) == "t" }
        } catch {
            sampling.cancel()
            throw error
        }
        return LockWaitSampler(server: self, name: name, sampling: sampling)
    }

    /// Ends the sessions holding a lock on database `name` itself (a `COMMENT ON DATABASE` a test's
    /// hook left open), which releases it at once.
    package func endLockHolders(on name: String) async throws {
        try await psql(
            """
            SELECT pg_terminate_backend(l.pid) FROM pg_locks AS l JOIN pg_database AS d ON d.oid = l.objid
            WHERE l.locktype = 'object' AND l.granted AND d.datname = \(literal(name))
            """
        )
    }
}

extension PGCloneHarness {
    /// PIDs of the pgclone processes this harness started that are still running.
    package func pgclonePIDs() -> [Int32] {
        markedProcesses(marker).filter { $0.commandLine.hasPrefix(TestEnvironment.binary + " ") }.map(\.pid)
    }

    /// Waits until a pgclone of this harness runs, up to `timeout`; its PID.
    package func waitForPGClone(within timeout: Duration = .seconds(120)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let pid = pgclonePIDs().first { return pid }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TestSetupError("no pgclone process started within \(timeout)")
    }

    /// Waits until at least `count` of this harness's processes have a command line that
    /// `matches`, up to `timeout`; returns those there are then.
    @discardableResult
    package func waitForProcesses(
        count: Int = 1,
        within timeout: Duration = .seconds(60),
        where matches: (String) -> Bool
    ) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let found = markedProcesses(marker).map(\.commandLine).filter(matches)
            if found.count >= count || ContinuousClock.now >= deadline { return found }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until `path` exists, up to `timeout`.
    package func waitForFile(_ path: String, within timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !FileManager.default.fileExists(atPath: path) {
            guard ContinuousClock.now < deadline else {
                throw TestSetupError("\(path) did not appear within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// The lock waits `PostgresServer.sampleLockWaits(on:)` samples.
package struct LockWaitSampler: Sendable {
    let server: PostgresServer
    let name: String
    let sampling: Task<String, any Error>

    /// Ends the sampling; the statements that waited on a lock, once per wait.
    package func stop() async throws -> [String] {
        try await server.psql(
            """
            SELECT pg_cancel_backend(pid) FROM pg_stat_activity
            WHERE application_name = \(server.literal(name)) AND query LIKE 'SELECT pg_temp.lock_waits%'
            """
        )
        let output = try await sampling.value
        return output.isEmpty ? [] : output.split(separator: "\n").map(String.init)
    }
}

extension PGCloneHarness {
    /// Runs `pgclone dump` of `database` (with a table of 400,000 rows made in it, as `owner`)
    /// and ends pg_dump's session, as this harness's server user, once it copies the rows; returns
    /// the result and whether the session was ended before pg_dump finished.
    package func dumpEndingItsSession(
        _ database: String,
        as owner: PostgresServer
    ) async throws -> (result: CommandResult, terminated: Bool) {
        try await owner.psql(
            "CREATE TABLE big AS SELECT i, repeat(md5(i::text), 8) AS payload FROM generate_series(1, 400000) AS i",
            database: database
        )
        async let dumping = run(["dump", "--database", owner.url(database)])
        var terminated = false
        for _ in 0..<3000 where !terminated {
            let ended = try await server.psql(
                """
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = '\(database)' AND application_name = 'pg_dump' AND query LIKE 'COPY %'
                """
            )
            terminated = ended.trimmingCharacters(in: .whitespacesAndNewlines) != "0"
            try await Task.sleep(for: .milliseconds(5))
        }
        return (try await dumping, terminated)
    }
}
