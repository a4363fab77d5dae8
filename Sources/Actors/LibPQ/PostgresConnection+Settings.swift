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
