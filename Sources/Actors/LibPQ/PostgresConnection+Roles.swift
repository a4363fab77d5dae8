extension PostgresConnection {
    /// Whether `role` exists on this server.
    package nonisolated func roleExists(_ role: String) async throws -> Bool {
        try await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).isEmpty == false
    }

    /// Whether the session's role may act as `role` where PostgreSQL asks for it (`SET ROLE`,
    /// `ALTER … OWNER TO`, `CREATE DATABASE … OWNER`): it is `role`, a superuser, or a member of
    /// `role` — with the SET option on PostgreSQL 16 and newer. `false` if `role` does not exist.
    package nonisolated func maySetRole(_ role: String) async throws -> Bool {
        let option = await serverVersion >= 160_000 ? "SET" : "MEMBER"
        let rows = try await query(
            """
            SELECT r.oid IS NOT NULL AND (r.rolname = current_user
                   OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                   OR pg_has_role(current_user, r.oid, '\(option)'))
            FROM (SELECT $1::text AS name) AS wanted LEFT JOIN pg_roles AS r ON r.rolname = wanted.name
            """,
            [role]
        )
        return rows.first?.first == "t"
    }

    /// Those of `roles` the session's role may act as (``maySetRole(_:)``).
    package nonisolated func rolesItMaySetRoleTo(_ roles: [String]) async throws -> Set<String> {
        var allowed: Set<String> = []
        for role in roles where try await maySetRole(role) { allowed.insert(role) }
        return allowed
    }
}
