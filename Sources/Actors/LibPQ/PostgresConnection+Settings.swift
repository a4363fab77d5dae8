package import PGCloneStreams

extension PostgresConnection {
    /// Database-level settings of `database` (`pg_db_role_setting`), for all roles and per role.
    package nonisolated func databaseSettings(of database: String) async throws -> [DatabaseSetting] {
        let rows = try await query(
            """
            SELECT r.rolname, s.cfg
            FROM pg_db_role_setting AS d
            JOIN pg_database AS db ON db.oid = d.setdatabase
            LEFT JOIN pg_roles AS r ON r.oid = d.setrole
            CROSS JOIN LATERAL unnest(d.setconfig) WITH ORDINALITY AS s(cfg, n)
            WHERE db.datname = $1
            ORDER BY r.rolname NULLS FIRST, s.n
            """,
            [database]
        )
        return rows.compactMap { row in
            row[1].flatMap { DatabaseSetting(role: row[0], setconfig: $0) }
        }
    }

    /// Turns the database's event triggers off for this session, on PostgreSQL 17 and newer
    /// (`event_triggers`), if it is a superuser's: for the statements pgclone runs itself in a
    /// database with the source's (or `D`'s) event triggers, which are the dump's or pgclone's,
    /// not changes for them to see (a guard refusing DDL failed a restore). Only a superuser makes
    /// event triggers, and only one may turn them off. Older servers have no such setting
    /// (`session_replication_role` fires those `ENABLE REPLICA`): see
    /// ``withEventTriggersDisabledBefore17(_:)``.
    package nonisolated func turnOffEventTriggers() async throws {
        guard await serverVersion >= 170_000 else { return }
        try await execute(
            """
            SELECT CASE WHEN pg_catalog.current_setting('is_superuser') = 'on'
                THEN pg_catalog.set_config('event_triggers', 'off', false) END
            """
        )
    }

    /// Runs `body` with the database's enabled event triggers disabled, on PostgreSQL 16 and
    /// older for a session whose role is a superuser (``turnOffEventTriggers()`` does nothing
    /// there), and enables them again as they were (`ENABLE`, `ENABLE REPLICA`, `ENABLE ALWAYS`)
    /// before returning what it returns. As it is on newer servers and for other roles.
    /// - Throws: what disabling or enabling them again throws (`body`'s own errors go through).
    package nonisolated func withEventTriggersDisabledBefore17<Result>(
        _ body: () async throws -> Result
    ) async throws -> Result {
        guard await serverVersion < 170_000 else { return try await body() }
        let enabled = try await query(
            """
            SELECT pg_catalog.format('ALTER EVENT TRIGGER %I ', evtname), evtenabled::text
            FROM pg_catalog.pg_event_trigger
            WHERE evtenabled <> 'D' AND pg_catalog.current_setting('is_superuser') = 'on' ORDER BY evtname
            """
        )
        var enable: [String] = []
        for row in enabled {
            guard let alter = row[0], let state = row[1] else { continue }
            try await execute(alter + "DISABLE")
            enable.append(alter + (state == "A" ? "ENABLE ALWAYS" : state == "R" ? "ENABLE REPLICA" : "ENABLE"))
        }
        let result = try await body()
        for statement in enable { try await execute(statement) }
        return result
    }

    /// The role the session acts as (`current_user`).
    package nonisolated func currentUser() async throws -> String {
        try await query("SELECT current_user").first?.first.flatMap { $0 } ?? ""
    }

    /// The encoding and locale of `database`, as far as this server's version has them; `nil` if
    /// there is no such database.
    package nonisolated func databaseLocale(of database: String) async throws -> DatabaseLocale? {
        let version = await serverVersion
        let provider = version >= 150_000 ? "d.datlocprovider::text" : "'c'"
        let locale = version >= 170_000 ? "d.datlocale" : version >= 150_000 ? "d.daticulocale" : "NULL::text"
        let rules = version >= 160_000 ? "d.daticurules" : "NULL::text"
        let rows = try await query(
            """
            SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, \(provider), \(locale), \(rules) \
            FROM pg_database AS d WHERE d.datname = $1
            """,
            [database]
        )
        guard let row = rows.first, let encoding = row[0], let collate = row[1], let ctype = row[2] else { return nil }
        let providers = ["c": "libc", "i": "icu", "b": "builtin"]
        let name = providers[row[3] ?? "c"] ?? "libc"
        return DatabaseLocale(
            encoding: encoding,
            collate: collate,
            ctype: ctype,
            provider: name,
            locale: name == "libc" ? nil : row[4],
            icuRules: row[5]
        )
    }
}
