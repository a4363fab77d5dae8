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
                a.is_grantable, pg_get_userbyid(a.grantor)
                FROM pg_database AS d CROSS JOIN LATERAL aclexplode(d.datacl) WITH ORDINALITY AS a
                WHERE d.datname = $1 ORDER BY a.ordinality
                """,
                [database]
            )
            properties.privileges = grants.map {
                Grant(grantee: $0[0], privilege: $0[1] ?? "", grantable: $0[2] == "t", grantor: $0[3])
            }
        }
        return properties
    }

    /// Statements that give `database` (`D__temp` renamed, whose properties were `temporary`)
    /// these properties, but for accepting connections, which the swap decides. Run inside the
    /// swap's transaction; the owner changes last, so that the current role grants as the owner
    /// first. `actingAs`: the grantors of grant chains the current role may SET ROLE to
    /// (``grantors``); the others' grants are made by the owner, and returned for a warning.
    func statements(
        for database: String,
        replacing temporary: DatabaseProperties,
        actingAs: Set<String>,
        on admin: PostgresConnection
    ) async throws -> (statements: [String], regranted: [Grant]) {
        let name = quoteIdentifier(database)
        var statements = [
            "COMMENT ON DATABASE \(name) IS \(try await admin.quoteLiteral(orNull: comment))",
            "ALTER DATABASE \(name) CONNECTION LIMIT \(connectionLimit)",
        ]
        let privileges = privilegeStatements(for: database, replacing: temporary, actingAs: actingAs)
        statements += privileges.statements
        statements.append("ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner))")
        return (statements, privileges.regranted)
    }

    /// The roles that granted some of these privileges on from their grant option (not the owner).
    var grantors: [String] {
        var roles: [String] = []
        for grantor in (privileges ?? []).compactMap(\.grantor) where grantor != owner && !roles.contains(grantor) {
            roles.append(grantor)
        }
        return roles
    }

    /// The roles with privileges on the database, PUBLIC aside: its owner (whose own come from the
    /// default ACL when it has no other), and those granted some.
    var holders: [String] {
        var roles = [owner]
        for grantee in (privileges ?? []).compactMap(\.grantee) where !roles.contains(grantee) { roles.append(grantee) }
        return roles
    }

    /// Statements that give `database` these database privileges. Every privilege of PUBLIC and
    /// of `holders` goes first (with what was granted on from them: `CASCADE`), then the model's
    /// are granted (``replayOrder(_:owner:)``), or the default ones (PUBLIC's CONNECT and
    /// TEMPORARY, the owner's all) if it has those. `holders`: `nil` for a database just made,
    /// whose owner keeps its own privileges (the current role restores into it before the swap
    /// gives `D`'s), and which has the default ones already. A grant another role made from its
    /// grant option is made as that role (`SET ROLE`) where `actingAs` has it, so that revoking
    /// that role's option still takes it; else by the owner, and returned.
    func privilegeStatements(
        for database: String,
        revokingFrom holders: [String]?,
        actingAs: Set<String> = []
    ) -> (statements: [String], regranted: [Grant]) {
        guard privileges != nil || holders != nil else { return ([], []) }
        let name = quoteIdentifier(database)
        let roles = ["PUBLIC"] + (holders ?? []).map(quoteIdentifier)
        var statements = ["REVOKE ALL ON DATABASE \(name) FROM \(roles.joined(separator: ", ")) CASCADE"]
        let (ordered, unplaceable) = Self.replayOrder(privileges ?? Self.defaultPrivileges(owner: owner), owner: owner)
        var regranted: [Grant] = []
        for grant in ordered + unplaceable {
            guard let statement = Self.statement(granting: grant, on: database) else { continue }
            guard let grantor = grant.grantor, grantor != owner else {
                statements.append(statement)
                continue
            }
            if actingAs.contains(grantor) && !unplaceable.contains(grant) {
                statements += ["SET ROLE \(quoteIdentifier(grantor))", statement, "RESET ROLE"]
            } else {
                statements.append(statement)
                regranted.append(grant)
            }
        }
        return (statements, regranted)
    }

    /// ``privilegeStatements(for:revokingFrom:actingAs:)`` for `D__temp` renamed `database`,
    /// whose privileges were `temporary`'s: all of them go, unless both have the default ones (no
    /// hook granted any on `D__temp`), when there is nothing to do.
    func privilegeStatements(
        for database: String,
        replacing temporary: DatabaseProperties,
        actingAs: Set<String>
    ) -> (statements: [String], regranted: [Grant]) {
        let holders = privileges == nil && temporary.privileges == nil ? nil : temporary.holders
        return privilegeStatements(for: database, revokingFrom: holders, actingAs: actingAs)
    }

    /// A database's privileges when its ACL is the default (`datacl` NULL).
    static func defaultPrivileges(owner: String) -> [Grant] {
        [
            Grant(grantee: nil, privilege: "TEMPORARY", grantable: false, grantor: owner),
            Grant(grantee: nil, privilege: "CONNECT", grantable: false, grantor: owner),
            Grant(grantee: owner, privilege: "CREATE", grantable: false, grantor: owner),
            Grant(grantee: owner, privilege: "TEMPORARY", grantable: false, grantor: owner),
            Grant(grantee: owner, privilege: "CONNECT", grantable: false, grantor: owner),
        ]
    }

    /// `grants` in an order they can be granted in: one made from a role's grant option after
    /// that option (`aclexplode`'s order need not be: a role may be given an option after it
    /// granted from another it lost). In their own order otherwise; those whose grantor never
    /// holds the option come back apart, for the owner to grant.
    static func replayOrder(_ grants: [Grant], owner: String) -> (ordered: [Grant], unplaceable: [Grant]) {
        var options: Set<String> = []
        var ordered: [Grant] = []
        var pending = grants
        var progressed = true
        while progressed && !pending.isEmpty {
            progressed = false
            var waiting: [Grant] = []
            for grant in pending {
                let grantor = grant.grantor ?? owner
                if grantor == owner || options.contains("\(grantor)\u{0}\(grant.privilege)") {
                    ordered.append(grant)
                    if grant.grantable, let grantee = grant.grantee {
                        options.insert("\(grantee)\u{0}\(grant.privilege)")
                    }
                    progressed = true
                } else {
                    waiting.append(grant)
                }
            }
            pending = waiting
        }
        return (ordered, pending)
    }

    /// `CONNECT for "reader" (granted by "lead")`, for messages.
    static func describe(_ grant: Grant) -> String {
        // Quoted as SQL quotes them: a name with a `"` stays readable.
        let grantee = grant.grantee.map(quoteIdentifier) ?? "PUBLIC"
        return "\(grant.privilege) for \(grantee)"
            + (grant.grantor.map { " (granted by \(quoteIdentifier($0)))" } ?? "")
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
