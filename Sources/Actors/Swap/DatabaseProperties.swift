package import PGCloneStreams

/// What a database is apart from its content: owner, privileges, connection limit, whether it
/// accepts connections, its comment. The swap gives the restored database the properties of the
/// one it replaces, so that a restore never makes `D` more open than it was (DESIGN.md step 3).
package struct DatabaseProperties: Sendable, Equatable {
    package var oid: String
    package var owner: String
    /// `datacl` as `aclexplode` gives it: grantee (`nil` for PUBLIC), privilege, grant option.
    /// `nil` when the database has the default privileges.
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
                FROM pg_database AS d CROSS JOIN LATERAL aclexplode(d.datacl) AS a
                WHERE d.datname = $1 ORDER BY 1 NULLS FIRST, 2
                """,
                [database]
            )
            properties.privileges = grants.map {
                Grant(grantee: $0[0], privilege: $0[1] ?? "", grantable: $0[2] == "t")
            }
        }
        return properties
    }

    /// Statements that give `database` (a new one, owned by `currentOwner` with default
    /// privileges) these properties, but for accepting connections, which the swap decides. Run
    /// inside the swap's transaction; the owner changes last, so that the current role grants as
    /// the owner first.
    func statements(
        for database: String,
        ownedBy currentOwner: String,
        on admin: PostgresConnection
    ) async throws -> [String] {
        let name = quoteIdentifier(database)
        var statements = [
            "COMMENT ON DATABASE \(name) IS \(try await admin.quoteLiteral(orNull: comment))",
            "ALTER DATABASE \(name) CONNECTION LIMIT \(connectionLimit)",
        ]
        statements += privilegeStatements(for: database, revokingFrom: currentOwner)
        statements.append("ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner))")
        return statements
    }

    /// Statements that give `database` these database privileges; none for the default ones.
    /// `revokingFrom`: its owner, whose own privileges (the default ACL gives them) go too, to be
    /// granted as these say; `nil` keeps them (the current role restores into the database before
    /// the swap gives it its final owner).
    func privilegeStatements(for database: String, revokingFrom currentOwner: String?) -> [String] {
        guard let privileges else { return [] }
        let name = quoteIdentifier(database)
        // The default ACL is the owner's privileges and PUBLIC's CONNECT and TEMPORARY: start from
        // none, then grant exactly what the model database has.
        var statements = ["REVOKE ALL ON DATABASE \(name) FROM PUBLIC"]
        if let currentOwner {
            statements.append("REVOKE ALL ON DATABASE \(name) FROM \(quoteIdentifier(currentOwner))")
        }
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
