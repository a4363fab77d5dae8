package import PGCloneStreams

/// What a database is apart from its content: owner, privileges, connection limit, whether it
/// accepts connections, its comment. The swap gives the restored database the properties of the
/// one it replaces, so that a restore never makes `D` more open than it was (DESIGN.md step 3).
package struct DatabaseProperties: Sendable, Equatable {
    package var oid: String
    package var owner: String
    /// `datacl` as `aclexplode` gives it, in its order (granted in that order, they make the same
    /// `datacl`): grantee (`nil` for PUBLIC), privilege, grant option. `nil` when the database has
    /// the default privileges.
    package var privileges: [Grant]?
    package var connectionLimit: Int
    package var allowsConnections: Bool
    package var isTemplate: Bool
    package var comment: String?

    /// One database privilege: grantee (`nil` for PUBLIC), privilege, grant option; as a dump
    /// records it.
    package typealias Grant = DatabaseAccess.Grant

    /// The access properties, as a dump records them.
    package var access: DatabaseAccess {
        DatabaseAccess(
            owner: owner,
            privileges: privileges,
            connectionLimit: connectionLimit,
            comment: comment
        )
    }

    /// The properties of `database`, or `nil` if there is none.
    package static func read(_ database: String, on admin: PostgresConnection) async throws -> DatabaseProperties? {
        let rows = try await admin.query(
            """
            SELECT d.oid::text, pg_get_userbyid(d.datdba), d.datacl IS NULL, d.datconnlimit, d.datallowconn, \
            d.datistemplate,
                   shobj_description(d.oid, 'pg_database')
            FROM pg_database AS d WHERE d.datname = $1
            """,
            [database]
        )
        guard let row = rows.first else { return nil }
        var properties = DatabaseProperties(
            oid: row[0] ?? "",
            owner: row[1] ?? "",
            privileges: nil,
            connectionLimit: Int(row[3] ?? "-1") ?? -1,
            allowsConnections: row[4] == "t",
            isTemplate: row[5] == "t",
            comment: row[6]
        )
        if row[2] == "f" {
            let grants = try await admin.query(
                """
                SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, \
                a.is_grantable
                FROM pg_database AS d CROSS JOIN LATERAL aclexplode(d.datacl) WITH ORDINALITY AS a
                WHERE d.datname = $1 ORDER BY a.ordinality
                """,
                [database]
            )
            properties.privileges = grants.map {
                Grant(grantee: $0[0], privilege: $0[1] ?? "", grantable: $0[2] == "t")
            }
        }
        return properties
    }

    /// Statements that give `database` (`D__temp` renamed, whose properties were `temporary`)
    /// these properties, but for accepting connections, which the swap decides. Run inside the
    /// swap's transaction; the owner changes last, so that the current role grants as the owner
    /// first.
    func statements(
        for database: String,
        replacing temporary: DatabaseProperties,
        on admin: PostgresConnection
    ) async throws -> [String] {
        let name = quoteIdentifier(database)
        var statements = [
            "COMMENT ON DATABASE \(name) IS \(try await admin.quoteLiteral(orNull: comment))",
            "ALTER DATABASE \(name) CONNECTION LIMIT \(connectionLimit)",
        ]
        statements += privilegeStatements(for: database, revokingFrom: temporary.holders)
        statements.append("ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner))")
        return statements
    }

    /// The roles with privileges on the database, PUBLIC aside: its owner (whose own come from the
    /// default ACL when it has no other), and those granted some.
    var holders: [String] {
        var roles = [owner]
        for grantee in (privileges ?? []).compactMap(\.grantee) where !roles.contains(grantee) { roles.append(grantee) }
        return roles
    }

    /// Statements that give `database` these database privileges; none for the default ones.
    /// Every privilege of PUBLIC and of `holders` goes first (with what was granted on from them:
    /// `CASCADE`), then the model's are granted in its order. `holders`: `nil` for a database just
    /// made, whose owner keeps its own privileges (the current role restores into it before the
    /// swap gives `D`'s).
    func privilegeStatements(for database: String, revokingFrom holders: [String]?) -> [String] {
        guard let privileges else { return [] }
        let name = quoteIdentifier(database)
        // The default ACL is the owner's privileges and PUBLIC's CONNECT and TEMPORARY: start from
        // none, then grant exactly what the model database has.
        let roles = ["PUBLIC"] + (holders ?? []).map(quoteIdentifier)
        var statements = ["REVOKE ALL ON DATABASE \(name) FROM \(roles.joined(separator: ", ")) CASCADE"]
        statements += privileges.compactMap { Self.statement(granting: $0, on: database) }
        return statements
    }

    /// `GRANT privilege ON DATABASE database TO grantee`, for a database privilege (`nil` for another).
    static func statement(granting grant: Grant, on database: String) -> String? {
        guard ["CREATE", "CONNECT", "TEMPORARY"].contains(grant.privilege) else { return nil }
        let grantee = grant.grantee.map(quoteIdentifier) ?? "PUBLIC"
        return """
            GRANT \(grant.privilege) ON DATABASE \(quoteIdentifier(database)) TO \
            \(grantee)\(grant.grantable ? " WITH GRANT OPTION" : "")
            """
    }
}
