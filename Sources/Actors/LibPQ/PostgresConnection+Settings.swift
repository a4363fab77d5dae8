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
}
