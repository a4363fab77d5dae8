package import PGCloneStreams

extension DatabaseSwap {
    /// Statements that give `database` (`D__temp` renamed, whose properties were `temporary`:
    /// its owner's and any privileges a hook granted go) the source's access properties, as far as
    /// this server allows: its comment (not one of pgclone's markers: the source may be a copy
    /// pgclone made) and connection limit; its database privileges, for the roles that exist here
    /// (PUBLIC's always), the owner's own exactly (none if the source's owner had revoked them);
    /// its owner, if that role exists and the current role may make it the owner (a superuser, or
    /// a member who may SET ROLE to it). If it may not, `D__temp`'s owner stays the owner, with
    /// the privileges the source's owner had. Run in the transaction that renames `D__temp` to
    /// `D`; the owner changes last.
    /// - Returns: the statements, and what was left out, for the warning.
    func accessStatements(
        _ access: DatabaseAccess,
        for database: String,
        replacing temporary: DatabaseProperties
    ) async throws -> (statements: [String], leftOut: [String]) {
        let currentOwner = temporary.owner
        let name = quoteIdentifier(database)
        let comment = DatabaseMarker.isPGClone(access.comment) ? nil : access.comment
        var statements = [
            "COMMENT ON DATABASE \(name) IS \(try await connection.quoteLiteral(orNull: comment))",
            "ALTER DATABASE \(name) CONNECTION LIMIT \(access.connectionLimit)",
        ]
        var leftOut: [String] = []
        var owner = access.owner
        if !(try await connection.roleExists(access.owner)) {
            leftOut.append("owner \"\(access.owner)\" (no such role here)")
            owner = currentOwner
        } else if !(try await connection.maySetRole(access.owner)) {
            leftOut.append(
                """
                owner \"\(access.owner)\" (\"\(await connection.endpoint.user)\" may not make it the owner: it may not \
                SET ROLE to it)
                """
            )
            owner = currentOwner
        }
        // The source's privileges as the owner `D` gets would have them (its owner's going to it),
        // for the roles that exist here; replayed as the swap replays `D`'s.
        var granted: [DatabaseProperties.Grant]? = access.privileges.map { _ in [] }
        for var grant in access.privileges ?? [] {
            if grant.grantee == access.owner { grant.grantee = owner }
            if grant.grantor == access.owner { grant.grantor = owner }
            if let grantee = grant.grantee, !(try await connection.roleExists(grantee)) {
                leftOut.append("\(grant.privilege) for \"\(grantee)\" (no such role here)")
            } else {
                granted?.append(grant)
            }
        }
        var model = temporary
        model.owner = owner
        model.privileges = granted
        let (privileges, regranted) = model.privilegeStatements(
            for: database,
            replacing: temporary,
            actingAs: try await connection.rolesItMaySetRoleTo(model.grantors)
        )
        statements += privileges
        leftOut += regranted.map { "\(DatabaseProperties.describe($0)) as granted by the owner" }
        if owner != currentOwner {
            statements.append("ALTER DATABASE \(name) OWNER TO \(quoteIdentifier(owner))")
        }
        return (statements, leftOut)
    }

    /// The role `D__temp` is made for: `D`'s owner, or with no `D` the role restoring (`--role`)
    /// or else the source's owner (`source`), if the current role may make it the owner and has
    /// its privileges (to drop or rename it later); `nil`: the current role. A first restore gives
    /// `D` the source's owner at the swap. The dump's objects are restored into a database with the owner `D`
    /// will have, since their owners need what the database's owner grants (the public schema's
    /// CREATE belongs to `pg_database_owner`: without it, PostgreSQL refuses to make another role
    /// a table's owner).
    package func temporaryOwner(source: DatabaseAccess?, restoringAs role: String?) async throws -> String? {
        let owner = try await DatabaseProperties.read(names.target, on: connection)?.owner ?? role ?? source?.owner
        guard let owner else { return nil }
        return try await admin.usableOwner(owner)
    }
}
