extension PostgresConnection {
    /// PUBLIC's privileges on the objects every new database has (from `template0`), by object:
    /// `LANGUAGE plpgsql` and `SCHEMA public`, where they exist, each with its privileges
    /// (`USAGE`, `CREATE`) sorted; their defaults when their ACL is unset.
    /// - Throws: ``LibPQError``.
    package nonisolated func publicPrivilegesOnTemplateObjects() async throws -> [String: [String]] {
        let rows = try await query(
            """
            SELECT 'LANGUAGE plpgsql', (SELECT pg_catalog.string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)
                FROM pg_catalog.aclexplode(coalesce(l.lanacl, pg_catalog.acldefault('l', l.lanowner))) AS a
                WHERE a.grantee = 0)
            FROM pg_catalog.pg_language AS l WHERE l.lanname = 'plpgsql'
            UNION ALL
            SELECT 'SCHEMA public', (SELECT pg_catalog.string_agg(a.privilege_type, ',' ORDER BY a.privilege_type)
                FROM pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a
                WHERE a.grantee = 0)
            FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'public'
            """
        )
        var privileges: [String: [String]] = [:]
        for row in rows {
            guard let object = row[0] else { continue }
            privileges[object] = row[1].map { $0.split(separator: ",").map(String.init) } ?? []
        }
        return privileges
    }
}
