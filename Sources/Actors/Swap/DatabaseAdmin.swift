import Dispatch
package import Logging
import PGCloneMetrics
package import PGCloneStreams

/// The administrative session: one libpq connection to the maintenance database, and the
/// statements that make, copy, configure and drop databases on it. The Swap stage
/// (``DatabaseSwap``) runs the restore-and-swap protocol through it; `copy` copies a database with
/// it alone.
///
/// Every name is quoted as an identifier and every value as a literal; nothing the user wrote is
/// spliced into SQL.
package struct DatabaseAdmin: Sendable {
    /// The session; its actor runs libpq on a dispatch queue of its own.
    package let connection: PostgresConnection
    /// Where to say what a drop did besides dropping (the subscriptions it dropped first).
    package let logger: Logger?

    package init(connection: PostgresConnection, logger: Logger? = nil) {
        self.connection = connection
        self.logger = logger
    }

    /// Whether `database` exists.
    package func exists(_ database: String) async throws -> Bool {
        try await !connection.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).isEmpty
    }

    /// `body` between BEGIN and COMMIT; ROLLBACK if it throws.
    /// `commit` false: rolled back all the same, a trial of what `body` does.
    func transaction(cancellable: Bool, commit: Bool = true, _ body: () async throws -> Void) async throws {
        try await connection.execute("BEGIN")
        do {
            try await body()
            if cancellable { try Task.checkCancellation() }
        } catch {
            _ = try? await connection.execute("ROLLBACK")
            throw error
        }
        try await connection.execute(commit ? "COMMIT" : "ROLLBACK")
    }

    /// Whether `database` exists and pgclone made it (``DatabaseMarker/isPGClone(_:)``).
    func isPGClones(_ database: String) async throws -> Bool {
        guard let properties = try await DatabaseProperties.read(database, on: connection) else { return false }
        return DatabaseMarker.isPGClone(properties)
    }

    /// `CREATE DATABASE name options`, made pgclone's and no more open than its model in one step:
    /// it is created closed (no connections, connection limit 0), then one transaction comments it
    /// with `marker` and gives it the model's database privileges (not PUBLIC's default CONNECT and
    /// TEMPORARY), connection limit and openness. A pgclone killed in between leaves a closed
    /// database with no comment, which ``DatabaseMarker/isHalfMade(_:)`` recognises as its own.
    /// - Parameters:
    ///   - model: the database it must not be more open than (`D`, or a copy's source); `nil`:
    ///     PostgreSQL's defaults.
    ///   - forRestoring: pg_restore and the hooks connect to it (`D__temp`): it accepts
    ///     connections, without a limit, even if the model does not.
    ///   - owner: its owner; `nil`: the current role.
    ///   - exact: the model's privileges exactly, its owner's own too (a snapshot, a copy with the
    ///     source's owner); else its owner keeps its own (restored into, or the current role's).
    ///     Grants the model's roles made from their grant options are made as they, where the
    ///     current role may act as them; else by the owner, with a warning.
    func create(
        _ name: String,
        as options: String,
        marker: String,
        model modelName: String?,
        owner: String? = nil,
        exact: Bool = false,
        forRestoring: Bool = false
    ) async throws {
        let database = quoteIdentifier(name)
        let ownedBy = owner.map { " OWNER \(quoteIdentifier($0))" } ?? ""
        try await connection.execute(
            "CREATE DATABASE \(database) \(options)\(ownedBy) ALLOW_CONNECTIONS false CONNECTION LIMIT 0",
            cancellable: true
        )
        let model: DatabaseProperties? =
            if let modelName { try await DatabaseProperties.read(modelName, on: connection) } else { nil }
        var holders: [String]?
        if exact {
            let current = try await connection.currentUser()
            holders = [owner ?? current]
        }
        let actingAs = try await connection.rolesItMaySetRoleTo(model?.grantors ?? [])
        let (statements, regranted) =
            model?.privilegeStatements(for: name, revokingFrom: holders, actingAs: actingAs) ?? ([], [])
        try await transaction(cancellable: false) {
            try await mark(name, marker)
            for statement in statements { try await connection.execute(statement) }
            let allows = forRestoring || (model?.allowsConnections ?? true)
            let limit = forRestoring ? -1 : model?.connectionLimit ?? -1
            try await connection.execute(
                "ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS \(allows) CONNECTION LIMIT \(limit)"
            )
        }
        if exact { logger?.warnRegranted(regranted, on: name, role: await connection.endpoint.user) }
    }

    /// `role`, if the current role may make it a database's owner and then act on that database
    /// (drop or rename it): it may SET ROLE to it and has its privileges; else `nil`.
    package func usableOwner(_ role: String) async throws -> String? {
        guard try await connection.maySetRole(role) else { return nil }
        let usable =
            try await connection.query("SELECT pg_has_role(current_user, $1, 'USAGE')", [role]).first?.first == "t"
        return usable ? role : nil
    }

    func mark(_ database: String, _ comment: String) async throws {
        try await connection.execute(
            "COMMENT ON DATABASE \(quoteIdentifier(database)) IS \(try await connection.quoteLiteral(comment))"
        )
    }

    /// Creates `copy` as a copy of `template` (`CREATE DATABASE … TEMPLATE`, which needs the template
    /// to have no sessions: they are ended first), with the template's database-level settings,
    /// commented `marker` and no more open than `model` (``create(_:as:marker:model:owner:forRestoring:)``),
    /// owned by `owner` (the current role if `nil`).
    /// - Returns: the template's settings that could not be carried over, with why, and how many
    ///   of its sessions were ended.
    @discardableResult
    package func copy(
        _ template: String,
        to copy: String,
        marker: String,
        model: String?,
        owner: String? = nil,
        exact: Bool = false,
        forRestoring: Bool = false
    ) async throws -> (skipped: [(DatabaseSetting, String)], endedSessions: Int) {
        guard try await exists(template) else {
            throw PGCloneError(
                .objectNotFound,
                "there is no database \"\(template)\" on this server; `pgclone ls --local` lists them"
            )
        }
        var ended = try await terminateSessions(on: template, cancellable: true)
        var options = "TEMPLATE \(quoteIdentifier(template))"
        // FILE_COPY copies the files (3-4 times faster here, PLATFORM.md §0) instead of writing the
        // whole copy to WAL; PostgreSQL 15 and later default to the latter.
        if await connection.serverVersion >= 150_000 { options += " STRATEGY = FILE_COPY" }
        let make = {
            try await self.create(
                copy,
                as: options,
                marker: marker,
                model: model,
                owner: owner,
                exact: exact,
                forRestoring: forRestoring
            )
        }
        do {
            try await make()
        } catch let error as LibPQError where error.isObjectInUse {
            // A session that arrived between the termination and the copy: once more.
            ended += try await terminateSessions(on: template, cancellable: true)
            try await make()
        }
        return (try await apply(connection.databaseSettings(of: template), to: copy, from: template), ended)
    }

    /// Ends every other session of a role on `database`. Autovacuum workers (which have none) are
    /// left to PostgreSQL, which ends them itself for a rename, a copy or a drop; only a superuser
    /// could end them here. (`backend_type` would tell them apart, but is hidden from roles that may
    /// not see another role's sessions in full.)
    /// `cancellable`: an interrupt stops it (the work before the swap's COMMIT); clean-up is not.
    /// - Returns: how many sessions it ended; a parallel query's workers, ended with it, are not
    ///   sessions of their own (as far as the role sees their `leader_pid`).
    /// - Throws: `.insufficientPrivilege` for a session the role may not end (a superuser's, or
    ///   another role's without pg_signal_backend), which began after ``SwapPreflight`` looked and
    ///   is still there after two seconds (one whose client just left is gone within moments).
    @discardableResult
    package func terminateSessions(on database: String, cancellable: Bool = false) async throws -> Int {
        let rows = try await connection.query(
            """
            SELECT count(*) FILTER (WHERE ended AND \(Self.isSession)) FROM (
                SELECT pg_terminate_backend(a.pid) AS ended, a.pid, a.leader_pid FROM pg_stat_activity AS a
                WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL AND \(Self.maySignal)
            ) AS a
            """,
            [database],
            cancellable: cancellable
        )
        let ended = Int(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        let others = try await Self.sessionsItMayNotEnd(on: database, connection: connection, cancellable: cancellable)
        guard others.isEmpty else {
            throw PGCloneError(
                .insufficientPrivilege,
                """
                cannot end \(counted(others.count, "session")) on \"\(database)\" that \
                began after pgclone's checks (\(others.prefix(3).map(\.description).joined(separator: "; "))): only \
                a superuser ends a superuser's, and only a member of the role or of pg_signal_backend another \
                role's; end \(others.count == 1 ? "it" : "them"), and run pgclone again\
                \(ended == 0 ? "" : " (\(ended == 1 ? "1 other session was" : "\(ended) other sessions were") ended)")
                """
            )
        }
        return ended
    }

    /// A session that pgclone's role may not end.
    package struct UnendableSession: Sendable {
        package var role: String
        package var isSuperuser: Bool
        /// `role "app": pid 123, application "psql"`.
        package var description: String
    }

    /// The sessions on `database` that pgclone's role may not end (``maySignal``), looked at again
    /// every 50 ms for up to two seconds while any remain: one whose client has just left is gone
    /// within moments. `cancellable` false: an interrupt does not cut it short (clean-up).
    package static func sessionsItMayNotEnd(
        on database: String,
        connection: PostgresConnection,
        cancellable: Bool
    ) async throws -> [UnendableSession] {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(2)
        while true {
            let sessions = try await connection.query(
                """
                SELECT a.usename, coalesce((SELECT rolsuper FROM pg_roles WHERE oid = a.usesysid), false),
                    format('role "%s": pid %s%s', a.usename, a.pid,
                        CASE WHEN a.application_name <> '' THEN format(', application "%s"', a.application_name) END)
                FROM pg_stat_activity AS a
                WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL AND NOT \(maySignal)
                    AND \(isSession)
                ORDER BY a.pid
                """,
                [database],
                cancellable: cancellable
            ).map { UnendableSession(role: $0[0] ?? "", isSuperuser: $0[1] == "t", description: $0[2] ?? "") }
            guard !sessions.isEmpty, clock.now < deadline else { return sessions }
            if cancellable {
                try await Task.sleep(for: .milliseconds(50))
            } else {
                await withCheckedContinuation { continuation in
                    DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { continuation.resume() }
                }
            }
        }
    }

    /// Whether a row `a` of `pg_stat_activity` is a session rather than a parallel query's worker
    /// (which ends with its leader). A worker of a role whose sessions the role may not see in full
    /// shows no `leader_pid`, and counts as a session.
    private static let isSession = "(a.leader_pid IS NULL OR a.leader_pid = a.pid)"

    /// Whether pgclone's role may end session `a` of `pg_stat_activity` (`pg_terminate_backend`'s
    /// rule): a superuser any; another role none of a superuser's, and another role's only as a
    /// member of it or of pg_signal_backend.
    private static let maySignal = """
        (coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)
         OR (NOT coalesce((SELECT rolsuper FROM pg_roles WHERE oid = a.usesysid), false)
             AND (pg_has_role(current_user, a.usesysid, 'USAGE')
                  OR pg_has_role(current_user, 'pg_signal_backend', 'USAGE'))))
        """

    /// Applies database-level settings of `origin` (the database they come from, for messages) to
    /// `database`. Role-specific settings of roles that do not exist on this server are skipped and
    /// returned with why; so is one the role may not set, unless it is `required`.
    /// - Throws: `.insufficientPrivilege` for a `required` setting the role may not set; `dropping`:
    ///   the settings are `D`'s, which the restore would drop, tried to see that the role could
    ///   (it may reset what it may set), and the error says so.
    package func apply(
        _ settings: [DatabaseSetting],
        to database: String,
        from origin: String,
        required: Bool = false,
        dropping: Bool = false
    ) async throws -> [(DatabaseSetting, String)] {
        let quoted = quoteIdentifier(database)
        var skipped: [(DatabaseSetting, String)] = []
        for setting in settings {
            var statement: String
            if let role = setting.role {
                guard try await !connection.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).isEmpty else {
                    skipped.append((setting, "the role does not exist here"))
                    continue
                }
                statement = "ALTER ROLE \(quoteIdentifier(role)) IN DATABASE \(quoted)"
            } else {
                statement = "ALTER DATABASE \(quoted)"
            }
            let name = setting.name.split(separator: ".").map { quoteIdentifier(String($0)) }.joined(separator: ".")
            var values: [String] = []
            for element in Self.valueElements(of: setting) {
                values.append(try await connection.quoteLiteral(element))
            }
            statement += " SET \(name) TO \(values.joined(separator: ", "))"
            do {
                try await connection.execute(statement)
            } catch let error as LibPQError where error.isInsufficientPrivilege {
                let who = await whoMaySet(setting, refused: error)
                guard required else {
                    skipped.append((setting, "\(error.message) (it needs \(who))"))
                    continue
                }
                // A role's setting is D's own; one of the whole database is the source's value of one D has.
                let named =
                    setting.role.map { "role \"\($0)\"'s setting \(setting.shown)" }
                    ?? "the setting \(setting.name)"
                if dropping {
                    let reset = "ALTER DATABASE \(quoteIdentifier(origin)) RESET \(name)"
                    throw PGCloneError(
                        .insufficientPrivilege,
                        """
                        \(named) on \"\(origin)\" is not the source's, so the restore would drop it, which needs \
                        \(who) (\(error.message)); restore as one, or have one reset it first (\(reset))
                        """,
                        cause: error
                    )
                }
                throw PGCloneError(
                    .insufficientPrivilege,
                    """
                    \(named) on \"\(origin)\" cannot be carried over to the restored database \
                    (\(error.message)), and the restore would lose it; restore as \(who), or reset it on \
                    \"\(origin)\" first if it is not needed
                    """,
                    cause: error
                )
            }
        }
        return skipped
    }

    /// Who may set `setting`, which the server `refused` the restoring role.
    private func whoMaySet(_ setting: DatabaseSetting, refused: LibPQError) async -> String {
        let version = await connection.serverVersion
        // A parameter only a superuser sets (log_statement): PostgreSQL 15 can grant it.
        if refused.message.contains("permission denied to set parameter") {
            return version >= 150_000
                ? "a superuser, or a role a superuser granted SET ON PARAMETER \(setting.name)" : "a superuser"
        }
        guard let role = setting.role else { return "a superuser" }
        // ALTER ROLE … IN DATABASE … SET: PostgreSQL 16 asks for ADMIN OPTION on the role too.
        return version >= 160_000
            ? "a superuser or a role with CREATEROLE and ADMIN OPTION on \"\(role)\""
            : "a superuser or a role with CREATEROLE"
    }

    /// The literals to write a setting's value as. List-valued settings are stored as one string
    /// whose elements are double-quoted where needed; they must be set as one literal per element,
    /// as pg_dump does (`makeAlterConfigCommand`), or `SET search_path TO 'a, b'` would name one
    /// schema called "a, b".
    package static func valueElements(of setting: DatabaseSetting) -> [String] {
        let listSettings: Set<String> = [
            "local_preload_libraries", "search_path", "session_preload_libraries", "shared_preload_libraries",
            "temp_tablespaces", "unix_socket_directories",
        ]
        guard listSettings.contains(setting.name.lowercased()) else { return [setting.value] }
        var elements: [String] = []
        var current = ""
        var inQuotes = false
        var characters = setting.value.makeIterator()
        while let character = characters.next() {
            switch character {
            case "\"" where inQuotes:
                // A doubled quote inside quotes stands for one quote character.
                if let following = characters.next() {
                    if following == "\"" {
                        current.append("\"")
                    } else {
                        inQuotes = false
                        if following == "," {
                            elements.append(current)
                            current = ""
                        } else if !following.isWhitespace {
                            current.append(following)
                        }
                    }
                } else {
                    inQuotes = false
                }
            case "\"":
                inQuotes = true
            case "," where !inQuotes:
                elements.append(current.trimmingWhitespace())
                current = ""
            default:
                if inQuotes || !character.isWhitespace || !current.isEmpty { current.append(character) }
            }
        }
        elements.append(inQuotes ? current : current.trimmingWhitespace())
        return elements
    }

    /// Drops `database` after dropping its logical replication subscriptions, which `DROP DATABASE`
    /// refuses to drop with it (``detachSubscriptions(of:)``), and ending its client sessions. Not
    /// `WITH (FORCE)`: for a role that is not a superuser, that fails on an autovacuum worker (it
    /// checks the right to end every process there), which a plain DROP ends itself.
    package func drop(_ database: String, attempts: Int = 3) async throws {
        for attempt in 1...attempts {
            guard try await exists(database) else { return }
            try await detachSubscriptions(of: database)
            try await terminateSessions(on: database)
            do {
                try await connection.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(database))")
                return
            } catch let error as LibPQError where error.isObjectInUse && attempt < attempts {
                // A session (or a subscription) that arrived in between: once more.
            }
        }
    }
}
