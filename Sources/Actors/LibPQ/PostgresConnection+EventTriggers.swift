extension PostgresConnection {
    /// Turns the database's event triggers off for this session, on PostgreSQL 17 and newer
    /// (`event_triggers`), if it is a superuser's: for the statements pgclone runs itself in a
    /// database with the source's (or `D`'s) event triggers, which are the dump's or pgclone's,
    /// not changes for them to see (a guard refusing DDL failed a restore). Only a superuser makes
    /// event triggers, and only one may turn them off. Older servers have no such setting
    /// (`session_replication_role` fires those `ENABLE REPLICA`): see
    /// ``inTransactionWithEventTriggersDisabled(_:)``.
    package nonisolated func turnOffEventTriggers() async throws {
        guard await serverVersion >= 170_000 else { return }
        try await execute(
            """
            SELECT CASE WHEN pg_catalog.current_setting('is_superuser') = 'on'
                THEN pg_catalog.set_config('event_triggers', 'off', false) END
            """
        )
    }

    /// The settings that turn event triggers off from the start of a new session of this
    /// session's login role (`event_triggers = off` in its startup packet, for its `options`), on
    /// PostgreSQL 17 and newer if that role is a superuser, the only kind that may: a `login`
    /// event trigger fires before any statement could turn them off (one refusing logins kept
    /// pgclone from dropping an old `D`'s subscriptions). None otherwise.
    /// - Throws: ``LibPQError`` if the role cannot be read.
    package nonisolated func eventTriggersOffAtLogin() async throws -> [(name: String, value: String)] {
        guard await serverVersion >= 170_000 else { return [] }
        let superuser = try await query("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user")
        return superuser.first?.first == "t" ? [("event_triggers", "off")] : []
    }

    /// Runs `body` in one transaction (`BEGIN` … `COMMIT`; `ROLLBACK` if it throws) in which, on
    /// PostgreSQL 16 and older and for a session whose role is a superuser
    /// (``turnOffEventTriggers()`` does nothing there), the database's enabled event triggers are
    /// disabled first and enabled again as they were (`ENABLE`, `ENABLE REPLICA`,
    /// `ENABLE ALWAYS`) last. Whatever happens, the triggers end as they were: a failure or a lost
    /// session rolls the disabling back with the rest. A statement of `body` that may fail without
    /// failing the others runs through ``executeInSavepoint(_:)``.
    /// - Throws: what `BEGIN`, the disabling and enabling, `body` and `COMMIT` throw.
    package nonisolated func inTransactionWithEventTriggersDisabled<Result>(
        _ body: () async throws -> Result
    ) async throws -> Result {
        try await execute("BEGIN")
        do {
            var enable: [String] = []
            if await serverVersion < 170_000 {
                let enabled = try await query(
                    """
                    SELECT pg_catalog.format('ALTER EVENT TRIGGER %I ', evtname), evtenabled::text
                    FROM pg_catalog.pg_event_trigger
                    WHERE evtenabled <> 'D' AND pg_catalog.current_setting('is_superuser') = 'on' ORDER BY evtname
                    """
                )
                for row in enabled {
                    guard let alter = row[0], let state = row[1] else { continue }
                    try await execute(alter + "DISABLE")
                    enable.append(alter + (state == "A" ? "ENABLE ALWAYS" : state == "R" ? "ENABLE REPLICA" : "ENABLE"))
                }
            }
            let result = try await body()
            for statement in enable { try await execute(statement) }
            try await execute("COMMIT")
            return result
        } catch {
            _ = try? await execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `sql` inside the open transaction so that its failure undoes it alone
    /// (`SAVEPOINT`, then `RELEASE`, or `ROLLBACK TO` and `RELEASE` before rethrowing).
    /// - Returns: the WARNINGs the server sent for `sql`.
    /// - Throws: ``LibPQError``: `sql`'s own error, or the savepoint's if the session was lost.
    @discardableResult
    package nonisolated func executeInSavepoint(_ sql: String) async throws -> [String] {
        try await execute("SAVEPOINT pgclone_statement")
        let warnings: [String]
        do {
            warnings = try await executeReturningWarnings(sql)
        } catch let error as LibPQError where !error.connectionLost {
            try await execute("ROLLBACK TO SAVEPOINT pgclone_statement")
            try await execute("RELEASE SAVEPOINT pgclone_statement")
            throw error
        }
        try await execute("RELEASE SAVEPOINT pgclone_statement")
        return warnings
    }
}
