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

    /// The lock waits of pgclone `pid`'s sessions from now until `stopLockWaitSampler(pid)` (or
    /// `limit`): the statements that waited, once per wait (a wait that follows another at once
    /// shows as a change of statement). The server samples them every 20 ms itself, so a machine
    /// the other tests load cannot make the test miss one. Run as a superuser.
    package func pgcloneLockWaits(until pid: Int32, within limit: Duration = .seconds(300)) async throws -> [String] {
        let output = try await psql(
            """
            SET application_name = 'lock waits of pgclone[\(pid)]';
            CREATE FUNCTION pg_temp.lock_waits(app text, deadline timestamptz) RETURNS text
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
                        INTO waiting FROM pg_stat_activity WHERE application_name = app AND wait_event_type = 'Lock';
                        IF waiting <> '' AND waiting <> last THEN waits := waits || waiting; END IF;
                        last := waiting;
                        PERFORM pg_sleep(0.02);
                    END LOOP;
                EXCEPTION WHEN query_canceled THEN NULL;
                END;
                RETURN array_to_string(waits, E'\\n');
            END $$;
            SELECT pg_temp.lock_waits('pgclone[\(pid)]', clock_timestamp() + interval '\(limit.components.seconds) s');
            """
        )
        return output.isEmpty ? [] : output.split(separator: "\n").map(String.init)
    }

    /// Ends `pgcloneLockWaits(until: pid)`, which then returns what it saw.
    package func stopLockWaitSampler(_ pid: Int32) async throws {
        try await waitUntil("the lock wait sampler of pgclone[\(pid)] to begin") {
            try await psql(
                """
                SELECT coalesce(bool_or(pg_cancel_backend(pid)), false) FROM pg_stat_activity
                WHERE application_name = 'lock waits of pgclone[\(pid)]'
                    AND query LIKE 'SELECT pg_temp.lock_waits%'
                """
            ) == "t"
        }
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
