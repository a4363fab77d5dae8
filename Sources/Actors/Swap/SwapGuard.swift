import Glibc

/// The swap's dead-man guard (PLATFORM.md §9). Refusing connections to `D` commits on its own,
/// before the rename transaction; if pgclone died in between, `D` would go on refusing them. So
/// before refusing them, pgclone holds the swap's advisory lock on its admin session and leaves a
/// second session waiting for that lock, in a statement that lets `D` accept connections again
/// when it gets the lock. It gets it only when the admin session ends — pgclone finished the swap
/// and unlocked, or died, lost its connection or was ended, which the server notices within
/// ``checkInterval`` even in the middle of a statement (``PostgresConnection/connectMaintenance``
/// sets it) — and a statement waiting on a lock goes on when its own client has died.
///
/// At the normal end the guard finds `D` accepting connections and does nothing. A server crash
/// ends both sessions: then the next pgclone run repairs `D` (``DatabaseSwap/repairInterruptedSwap()``).
package struct SwapGuard: Sendable {
    /// The guard's own session.
    let session: PostgresConnection
    let target: String

    /// How often the admin session's server process checks that pgclone is still there during a
    /// statement (`client_connection_check_interval`, PostgreSQL 14 and later), in milliseconds.
    package static let checkInterval = 100

    /// Takes the swap lock on `admin`, then opens the guard session with `settings` (the
    /// maintenance database) and leaves its statement waiting; returns once the server shows it
    /// waiting. Throws if the guard cannot be set up: nothing has been changed yet then.
    /// - Parameter comment: `D`'s comment, which the guard puts back with the connections.
    static func install(
        admin: PostgresConnection,
        settings: ConnectionSettings,
        target: String,
        comment: String?
    ) async throws -> SwapGuard {
        let key = try await admin.query("SELECT \(DatabaseSwap.lockKey("swap"))", [target]).first?.first ?? nil
        guard let key, let keyValue = Int64(key) else {
            throw LibPQError(sqlState: nil, message: "could not compute the swap's lock key")
        }
        try await admin.query("SELECT pg_advisory_lock($1::bigint)", [key])
        // Named apart from pgclone's own session in pg_stat_activity.
        let session = try await PostgresConnection.connect(
            settings.adding("fallback_application_name", "pgclone[\(getpid())] swap guard")
        )
        do {
            // Nothing may end the guard's statement early: not the role's or database's timeouts,
            // nor a check for a dead client (its client is pgclone, which it must outlive).
            var timeouts = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
            let version = await session.serverVersion
            if version >= 140_000 { timeouts.append("client_connection_check_interval") }
            if version >= 170_000 { timeouts.append("transaction_timeout") }
            for name in timeouts {
                try await session.query("SELECT set_config($1, '0', false)", [name])
            }
            let statement = try await guardStatement(key: keyValue, target: target, comment: comment, on: session)
            try await session.send(statement)
            let pid = await session.backendPID
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                let waiting = try await admin.query(
                    """
                    SELECT count(*) FROM pg_locks
                    WHERE locktype = 'advisory' AND pid = $1 AND NOT granted AND objsubid = 1
                      AND classid::bigint = ($2::bigint >> 32) & 4294967295 AND objid::bigint = $2::bigint & 4294967295
                    """,
                    [String(pid), key]
                )
                if waiting.first?.first == "1" { break }
                guard ContinuousClock.now < deadline else {
                    throw LibPQError(
                        sqlState: nil,
                        message: "the swap's guard session did not start waiting within 10 s"
                    )
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        } catch {
            await session.close()
            _ = try? await admin.query("SELECT pg_advisory_unlock($1::bigint)", [key])
            throw error
        }
        return SwapGuard(session: session, target: target, key: key)
    }

    let key: String

    /// `DO` with a dollar-quote tag that the quoted literals cannot contain.
    private static func guardStatement(
        key: Int64,
        target: String,
        comment: String?,
        on session: PostgresConnection
    ) async throws -> String {
        let name = try await session.quoteLiteral(target)
        let original = try await session.quoteLiteral(orNull: comment)
        let marker = try await session.quoteLiteral(DatabaseMarker.closedForSwap(comment: comment))
        var tag: String
        repeat {
            tag = "$pgclone_guard_\(UInt64.random(in: 0...UInt64.max))$"
        } while (name + original + marker).contains(tag)
        // Only the database named `D` and closed by this swap (its mark) is opened: at the normal
        // end `D` accepts connections (the old one again, or the restored one, which carries the
        // old comment), and after a committed swap the name is the restored database's.
        return """
            DO \(tag)
            BEGIN
                PERFORM pg_advisory_lock(\(key)::bigint);
                IF EXISTS (
                    SELECT 1 FROM pg_database
                    WHERE datname = \(name) AND NOT datallowconn AND shobj_description(oid, 'pg_database') = \(marker)
                ) THEN
                    EXECUTE format('ALTER DATABASE %I ALLOW_CONNECTIONS true', \(name));
                    EXECUTE format('COMMENT ON DATABASE %I IS %L', \(name), \(original)::text);
                END IF;
                PERFORM pg_advisory_unlock(\(key)::bigint);
            END
            \(tag)
            """
    }

    /// Ends the guard after the swap, committed or not: unlocks on `admin` (when it is still
    /// there), waits for the guard's statement (it then finds `D` accepting connections, or makes
    /// it so if `admin` could not) and closes the guard's session.
    func release(admin: PostgresConnection) async throws {
        _ = try? await admin.query("SELECT pg_advisory_unlock($1::bigint)", [key])
        do {
            try await session.finishSent()
        } catch {
            await session.close()
            throw error
        }
        await session.close()
    }
}
