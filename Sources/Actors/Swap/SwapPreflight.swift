import PGCloneStreams

/// The checks made before a restore or a copy changes anything: everything its destructive steps
/// need that can be known in advance — the target may be replaced at all, the role can create
/// databases, owns (or is a member of the owner of) every database it will rename or drop, may end
/// every session on them, and no database in the way is someone else's. Each failure is one line
/// naming what is missing and the GRANT or option that fixes it.
///
/// Sessions that arrive after the check can still make the swap fail; it then leaves `D` as it was.
package struct SwapPreflight: Sendable {
    let admin: PostgresConnection

    package init(admin: PostgresConnection) {
        self.admin = admin
    }

    /// The current role and what it may do.
    struct Role {
        var name: String
        var isSuperuser: Bool
        var canCreateDatabases: Bool
        var canSignalBackends: Bool
    }

    func role() async throws -> Role {
        let row =
            try await admin.query(
                """
                SELECT rolname, rolsuper, rolcreatedb, rolsuper OR pg_has_role(current_user, 'pg_signal_backend', \
                'USAGE')
                FROM pg_roles WHERE rolname = current_user
                """
            ).first ?? []
        return Role(
            name: row.first.flatMap { $0 } ?? "",
            isSuperuser: row.count > 1 && row[1] == "t",
            canCreateDatabases: row.count > 2 && (row[1] == "t" || row[2] == "t"),
            canSignalBackends: row.count > 3 && row[3] == "t"
        )
    }

    /// Refuses a target that must never be replaced: a template (every `CREATE DATABASE` copies
    /// `template1`; `template0` must stay pristine) or a maintenance database pgclone and other
    /// tools connect to. Names with pgclone's own suffixes are refused by ``DatabaseNames``.
    package func checkReplaceable(_ target: String, maintenanceDatabases: [String], purpose: String) async throws {
        if let properties = try await DatabaseProperties.read(target, on: admin), properties.isTemplate {
            throw PGCloneError(
                .invalidConfiguration,
                """
                refusing to \(purpose) \"\(target)\": it is a template database (every CREATE DATABASE copies \
                one); choose another database
                """,
                target: .unchanged(target)
            )
        }
        if maintenanceDatabases.contains(target) {
            throw PGCloneError(
                .invalidConfiguration,
                """
                refusing to \(purpose) \"\(target)\": it is a maintenance database, which pgclone and other tools \
                connect to; choose another database
                """,
                target: .unchanged(target)
            )
        }
    }

    /// What a restore into `names.target` will do, checked: create `D__temp` (and `D__snap`),
    /// replace `D`, rename or drop the snapshots, drop pgclone's leftovers, and, for a local
    /// source, copy it.
    package func checkRestore(
        names: DatabaseNames,
        reversible: Bool,
        localSource: String?,
        restoringRole: String? = nil
    ) async throws {
        let role = try await role()
        let unchanged = PGCloneError.TargetState.unchanged(names.target)
        if let restoringRole {
            try await checkRestoring(as: restoringRole, role: role, target: names.target)
        }
        guard role.canCreateDatabases else {
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" cannot create databases, and a restore creates \"\(names.temporary)\"; \
                grant it with ALTER ROLE \(quoteIdentifier(role.name)) CREATEDB (as a superuser or a role with \
                CREATEROLE)
                """,
                target: unchanged
            )
        }
        // The databases the restore renames or drops, each with why.
        var replaced: [(name: String, why: String)] = [(names.target, "replacing it")]
        replaced += [(names.previous, reversible ? "keeping the snapshots" : "dropping the snapshots of --reversible")]
        replaced += [(names.current, reversible ? "keeping the snapshots" : "dropping the snapshots of --reversible")]
        for leftover in [names.temporary, names.swapped, names.snapshot] {
            replaced.append((leftover, "dropping what an earlier restore left"))
        }
        for (name, why) in replaced {
            guard let properties = try await DatabaseProperties.read(name, on: admin) else { continue }
            if name != names.target && !DatabaseMarker.isPGClone(properties) {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    a database \"\(name)\" exists that pgclone did not make, and a restore into \
                    \"\(names.target)\" would replace or drop it; rename it (ALTER DATABASE \
                    \(quoteIdentifier(name)) RENAME TO …) or drop it yourself
                    """,
                    target: unchanged
                )
            }
            try await checkOwnership(of: name, properties: properties, role: role, for: why, target: names.target)
            if name == names.target {
                try await checkAssignable(owner: properties.owner, of: name, role: role)
            }
            try await checkSessions(on: name, role: role, for: why, target: names.target)
            try await checkSubscriptions(of: name, role: role, for: why, target: names.target)
        }
        if let localSource {
            try await checkCopy(from: localSource, role: role, target: names.target)
        }
    }

    /// pg_restore's `--role`: the role exists, and the current role may SET ROLE to it.
    private func checkRestoring(as restoringRole: String, role: Role, target: String) async throws {
        let unchanged = PGCloneError.TargetState.unchanged(target)
        guard try await admin.roleExists(restoringRole) else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the role to restore as (--role, or a restore config's role), \"\(restoringRole)\", does not exist \
                on this server; name a role \"\(role.name)\" is a member of
                """,
                target: unchanged
            )
        }
        guard try await admin.maySetRole(restoringRole) else {
            let with = await admin.serverVersion >= 160_000 ? " WITH SET TRUE" : ""
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" may not SET ROLE to \"\(restoringRole)\", the role to restore as (--role, \
                or a restore config's role); GRANT \(quoteIdentifier(restoringRole)) TO \
                \(quoteIdentifier(role.name))\(with), or restore as another role
                """,
                target: unchanged
            )
        }
    }

    /// What `copy` of `source` does: create a database and end the sessions on `source`.
    package func checkCopy(from source: String) async throws {
        let role = try await role()
        guard role.canCreateDatabases else {
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" cannot create databases, which a copy does; grant it with ALTER ROLE \
                \(quoteIdentifier(role.name)) CREATEDB (as a superuser or a role with CREATEROLE)
                """
            )
        }
        try await checkCopy(from: source, role: role, target: nil)
    }

    private func checkCopy(from source: String, role: Role, target: String?) async throws {
        guard let properties = try await DatabaseProperties.read(source, on: admin) else {
            throw PGCloneError(
                .objectNotFound,
                "there is no database \"\(source)\" on this server; `pgclone ls --local` lists them",
                target: target.map { .unchanged($0) }
            )
        }
        if let unfinished = DatabaseMarker.unfinished(properties, named: source) {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \"\(source)\" is \(unfinished): it may be half made, and is no source to copy; restore from a \
                dump, or from a database pgclone finished
                """,
                target: target.map { .unchanged($0) }
            )
        }
        if !properties.isTemplate {
            // CREATE DATABASE … TEMPLATE copies a database that is not a template only for its owner.
            try await checkOwnership(of: source, properties: properties, role: role, for: "copying it", target: target)
        }
        try await checkSessions(
            on: source,
            role: role,
            for: "copying it (a copy needs it without sessions)",
            target: target
        )
    }

    /// The new `D` gets `D`'s owner (`ALTER DATABASE … OWNER TO`), which PostgreSQL 16 and newer
    /// allow a member only with the SET option.
    private func checkAssignable(owner: String, of database: String, role: Role) async throws {
        guard await admin.serverVersion >= 160_000, !(try await admin.maySetRole(owner)) else { return }
        throw PGCloneError(
            .insufficientPrivilege,
            """
            role \"\(role.name)\" may not SET ROLE to \"\(owner)\", which owns \"\(database)\" and must own the \
            restored database too; GRANT \(quoteIdentifier(owner)) TO \(quoteIdentifier(role.name)) WITH SET TRUE
            """,
            target: .unchanged(database)
        )
    }

    private func checkOwnership(
        of database: String,
        properties: DatabaseProperties,
        role: Role,
        for why: String,
        target: String?
    ) async throws {
        guard !role.isSuperuser else { return }
        let membership =
            try await admin.query(
                """
                SELECT pg_has_role(current_user, datdba, 'USAGE'), pg_has_role(current_user, datdba, 'MEMBER') FROM \
                pg_database WHERE datname = $1
                """,
                [database]
            ).first ?? []
        guard membership.first != "t" else { return }
        if membership.count > 1 && membership[1] == "t" {
            // A member without the owner's privileges: NOINHERIT, or PostgreSQL 16's INHERIT FALSE.
            let fix =
                await admin.serverVersion >= 160_000
                ? "GRANT \(quoteIdentifier(properties.owner)) TO \(quoteIdentifier(role.name)) WITH INHERIT TRUE"
                : "ALTER ROLE \(quoteIdentifier(role.name)) INHERIT"
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" is a member of \"\(properties.owner)\", which owns database \
                \"\(database)\", but does not have its privileges, which \(why) needs; \(fix), or run pgclone as \
                \"\(properties.owner)\"
                """,
                target: target.map { .unchanged($0) }
            )
        }
        let ownerIsSuperuser =
            try await admin.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [properties.owner]).first?.first
            == "t"
        guard !ownerIsSuperuser else {
            // Never advise granting a superuser role.
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" does not own database \"\(database)\" (its owner is the superuser \
                \"\(properties.owner)\"), which \(why) needs; as a superuser, give it to the role with ALTER \
                DATABASE \(quoteIdentifier(database)) OWNER TO \(quoteIdentifier(role.name)), or drop it
                """,
                target: target.map { .unchanged($0) }
            )
        }
        throw PGCloneError(
            .insufficientPrivilege,
            """
            role \"\(role.name)\" does not own database \"\(database)\" (its owner is \"\(properties.owner)\"), \
            which \(why) needs; GRANT \(quoteIdentifier(properties.owner)) TO \(quoteIdentifier(role.name)), or \
            run pgclone as \"\(properties.owner)\"
            """,
            target: target.map { .unchanged($0) }
        )
    }

    /// Logical replication subscriptions of `database` this role could not drop, which pgclone
    /// must drop before it drops the database (``DatabaseSwap/detachSubscriptions(of:)``): every
    /// database a restore replaces or drops is dropped, now or by a later restore. A superuser may
    /// drop any; another role needs its owner's privileges (PostgreSQL 15 lets only superusers own
    /// one) and the right to connect to the database.
    private func checkSubscriptions(of database: String, role: Role, for why: String, target: String) async throws {
        guard !role.isSuperuser else { return }
        let subscriptions = try await DatabaseSubscription.list(in: database, on: admin)
        guard !subscriptions.isEmpty else { return }
        let state = PGCloneError.TargetState.unchanged(target)
        let blocked = subscriptions.filter { !$0.detachable }
        if let first = blocked.first {
            let more = blocked.count > 1 ? " (and \(blocked.count - 1) more)" : ""
            let reason =
                first.needsSuperuser
                ? "it has password_required = false, which only a superuser may alter"
                : "its owner is \"\(first.owner)\""
            let who =
                first.needsSuperuser || first.ownerIsSuperuser ? "a superuser" : "a superuser or as \"\(first.owner)\""
            let statements = first.detachStatements.joined(separator: "; ")
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" may not drop logical replication subscription \"\(first.name)\"\(more) of \
                database \"\(database)\" (\(reason)), which must go before the database can be dropped (\(why)); \
                restore as \(who), or have one run in \"\(database)\": \(statements)
                """,
                target: state
            )
        }
        let mayConnect =
            try await admin.query("SELECT has_database_privilege($1, 'CONNECT')", [database]).first?.first == "t"
        guard mayConnect else {
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" may not connect to database \"\(database)\", and must, to drop its logical \
                replication subscriptions before the database can be dropped (\(why)); GRANT CONNECT ON DATABASE \
                \(quoteIdentifier(database)) TO \(quoteIdentifier(role.name))
                """,
                target: state
            )
        }
    }

    /// Sessions on `database` this role could not end, with what would let it.
    private func checkSessions(on database: String, role: Role, for why: String, target: String?) async throws {
        guard !role.isSuperuser else { return }
        let unendable = try await DatabaseAdmin.sessionsItMayNotEnd(on: database, connection: admin, cancellable: false)
        let superuserSessions = unendable.filter(\.isSuperuser).map(\.description)
        let otherSessions = unendable.filter { !$0.isSuperuser }
        var otherRoles: [String] = []
        for session in otherSessions where !otherRoles.contains(session.role) { otherRoles.append(session.role) }
        let state = target.map { PGCloneError.TargetState.unchanged($0) }
        if !superuserSessions.isEmpty {
            throw PGCloneError(
                .insufficientPrivilege,
                """
                cannot end \(counted(superuserSessions.count, "session")) of a superuser on \"\(database)\" \
                (\(superuserSessions.prefix(3).joined(separator: "; "))), which \(why) needs, and only a \
                superuser can end them; end those sessions first
                """,
                target: state
            )
        }
        if !otherSessions.isEmpty {
            let roles = otherRoles.map { "\"\($0)\"" }.joined(separator: ", ")
            throw PGCloneError(
                .insufficientPrivilege,
                """
                role \"\(role.name)\" cannot end \(counted(otherSessions.count, "session")) on \"\(database)\" \
                (\(otherSessions.prefix(3).map(\.description).joined(separator: "; "))), which \(why) needs: it \
                is not a member of \(roles) and lacks pg_signal_backend; GRANT pg_signal_backend TO \
                \(quoteIdentifier(role.name)), or end those sessions first
                """,
                target: state
            )
        }
    }

}
