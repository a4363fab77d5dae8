import PGCloneMetrics
package import Logging
package import PGCloneStreams

/// The administrative half of the restore-and-swap protocol (DESIGN.md), run over one libpq
/// connection to the maintenance database: the per-target advisory lock, the checks made before
/// anything is changed, the temporary database, the database-level settings, and the swap
/// (`DatabaseSwap+Swap.swift`).
///
/// Every name is quoted as an identifier and every value as a literal; nothing the user wrote is
/// spliced into SQL.
package struct DatabaseSwap: Sendable {
    package let admin: PostgresConnection
    package let names: DatabaseNames
    /// When this run began, UTC, for the comments on the databases it makes.
    package let started: String
    /// Where to say what a drop did besides dropping (the subscriptions it dropped first).
    package let logger: Logger?

    package init(admin: PostgresConnection, names: DatabaseNames, started: String, logger: Logger? = nil) {
        self.admin = admin
        self.names = names
        self.started = started
        self.logger = logger
    }

    // MARK: Lock

    /// 64-bit advisory lock key of `$1` in pgclone's namespace `scope`, hashed by the server.
    static func lockKey(_ scope: String) -> String {
        "('x' || substr(md5('pgclone \(scope) ' || $1), 1, 16))::bit(64)::bigint"
    }

    /// Takes the session-level advisory lock for the target, held until ``releaseLock()`` or the
    /// connection ends (so a killed pgclone never leaves it behind).
    /// - Parameter wait: how long to wait for another restore to finish; `nil` fails at once.
    /// - Throws: `.lockHeld` naming the holder.
    package func acquireLock(wait: Duration?) async throws {
        let clock = ContinuousClock()
        let deadline = wait.map { clock.now + $0 }
        while true {
            if try await tryLock() { return }
            guard let deadline, clock.now < deadline else {
                let holder = try? await lockHolder()
                let advice = wait == nil ? "wait for it to finish, or pass --wait" : "it was still running after \(wait!.formattedSeconds)"
                throw PGCloneError(
                    .lockHeld,
                    "another pgclone restore of database \"\(names.target)\" is running\(holder.map { " (\($0))" } ?? ""); \(advice)"
                )
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Takes the target's lock if it is free.
    package func tryLock() async throws -> Bool {
        try await admin.query("SELECT pg_try_advisory_lock(\(Self.lockKey("restore")))", [names.target]).first?.first == "t"
    }

    /// Who holds the lock: the session's application name, server pid and start time.
    private func lockHolder() async throws -> String? {
        let rows = try await admin.query(
            """
            SELECT a.application_name, a.pid, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')
            FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
            CROSS JOIN (SELECT \(Self.lockKey("restore")) AS key) AS k
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid::bigint = (k.key >> 32) & 4294967295 AND l.objid::bigint = k.key & 4294967295
            """,
            [names.target]
        )
        guard let row = rows.first else { return nil }
        return "\(row[0] ?? "?"), server pid \(row[1] ?? "?"), since \(row[2] ?? "?")"
    }

    package func releaseLock() async {
        _ = try? await admin.query("SELECT pg_advisory_unlock(\(Self.lockKey("restore")))", [names.target])
    }

    // MARK: Inspection

    package func exists(_ database: String) async throws -> Bool {
        try await !admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).isEmpty
    }

    // MARK: Repair

    /// Lets `D` accept connections again, with its own comment back, if a swap left it closed:
    /// pgclone's guard does that when pgclone dies, but not when the server itself restarted in
    /// the middle of the swap. The swap marks `D` in the transaction that closes it; a `D` that a
    /// DBA closed carries no such mark and is left alone. Call with the target's lock held.
    /// - Returns: whether it repaired `D`.
    @discardableResult
    package func repairInterruptedSwap() async throws -> Bool {
        guard let target = try await DatabaseProperties.read(names.target, on: admin), !target.allowsConnections,
            let comment = DatabaseMarker.commentBeforeSwap(target.comment)
        else { return false }
        try await reopen(comment: comment)
        return true
    }

    /// Closes `D` to new connections and marks it, in one transaction, as closed by this swap,
    /// with its comment (``reopen(comment:)`` puts it back).
    func close(comment: String?) async throws {
        let target = quoteIdentifier(names.target)
        try await transaction(cancellable: true) {
            try await admin.execute(
                "COMMENT ON DATABASE \(target) IS \(try await admin.quoteLiteral(DatabaseMarker.closedForSwap(comment: comment)))",
                cancellable: true
            )
            try await admin.execute("ALTER DATABASE \(target) ALLOW_CONNECTIONS false", cancellable: true)
        }
    }

    /// Opens `D` to connections again, with `comment` back, in one transaction.
    func reopen(comment: String?) async throws {
        let target = quoteIdentifier(names.target)
        let literal = try await admin.quoteLiteral(orNull: comment)
        try await transaction(cancellable: false) {
            try await admin.execute("ALTER DATABASE \(target) ALLOW_CONNECTIONS true")
            try await admin.execute("COMMENT ON DATABASE \(target) IS \(literal)")
        }
    }

    /// `body` between BEGIN and COMMIT; ROLLBACK if it throws.
    func transaction(cancellable: Bool, _ body: () async throws -> Void) async throws {
        try await admin.execute("BEGIN")
        do {
            try await body()
            if cancellable { try Task.checkCancellation() }
        } catch {
            _ = try? await admin.execute("ROLLBACK")
            throw error
        }
        try await admin.execute("COMMIT")
    }

    // MARK: Temporary database

    /// Drops what an interrupted run left: `D__temp`, `D__snap`, and `D__swap` if `D` itself exists
    /// (then the swap had committed and only the drop of the old database was missed). Only
    /// databases pgclone marked as its own; ``SwapPreflight`` refuses to go on beside others.
    package func dropLeftovers() async throws {
        for name in [names.temporary, names.snapshot] where try await isPGClones(name) {
            try await drop(name)
        }
        if try await exists(names.target), try await isPGClones(names.swapped) {
            try await drop(names.swapped)
        }
    }

    /// Whether `database` exists and pgclone made it (``DatabaseMarker/isPGClone(_:)``).
    func isPGClones(_ database: String) async throws -> Bool {
        guard let properties = try await DatabaseProperties.read(database, on: admin) else { return false }
        return DatabaseMarker.isPGClone(properties)
    }

    /// Creates an empty `D__temp` from `template0` (so nothing in `template1` collides with the
    /// archive), marked as pgclone's and open to those `D` is open to (``create(_:as:marker:)``),
    /// with `locale` — the source's, from the dump — or, for a dump that does not say it, `D`'s
    /// (the server's default if there is no `D`), owned by `owner` (``temporaryOwner(source:restoringAs:)``;
    /// the current role if `nil`).
    /// - Returns: the locale it has.
    @discardableResult
    package func createTemporary(locale source: DatabaseLocale?, owner: String? = nil) async throws -> DatabaseLocale? {
        var options = "TEMPLATE template0"
        if let owner { options += " OWNER \(quoteIdentifier(owner))" }
        let locale = if let source { source } else { try await admin.databaseLocale(of: names.target) }
        if let locale {
            options += " ENCODING \(try await admin.quoteLiteral(locale.encoding))"
            options += " LC_COLLATE \(try await admin.quoteLiteral(locale.collate))"
            options += " LC_CTYPE \(try await admin.quoteLiteral(locale.ctype))"
            let serverVersion = await admin.serverVersion
            if locale.provider != "libc" || serverVersion >= 150_000 {
                // A server older than 15 has libc only: CREATE DATABASE says so, in one line.
                options += " LOCALE_PROVIDER \(try await admin.quoteLiteral(locale.provider))"
            }
            if let name = locale.locale {
                let keyword = locale.provider == "builtin" ? "BUILTIN_LOCALE" : "ICU_LOCALE"
                options += " \(keyword) \(try await admin.quoteLiteral(name))"
            }
            if let rules = locale.icuRules, !rules.isEmpty {
                options += " ICU_RULES \(try await admin.quoteLiteral(rules))"
            }
        }
        try await create(names.temporary, as: options, marker: temporaryMarker, forRestoring: true)
        return locale
    }

    /// `D__temp`'s comment.
    var temporaryMarker: String {
        DatabaseMarker.temporary(target: names.target, started: started)
    }

    /// `CREATE DATABASE name options`, made pgclone's and no more open than its model in one step:
    /// it is created closed (no connections, connection limit 0), then one transaction comments it
    /// with `marker` and gives it the model's database privileges (not PUBLIC's default CONNECT and
    /// TEMPORARY), connection limit and openness. A pgclone killed in between leaves a closed
    /// database with no comment, which ``DatabaseMarker/isHalfMade(_:)`` recognises as its own.
    /// - Parameters:
    ///   - model: the database it must not be more open than; `D` unless said otherwise.
    ///   - forRestoring: pg_restore and the hooks connect to it (`D__temp`): it accepts
    ///     connections, without a limit, even if the model does not.
    func create(_ name: String, as options: String, marker: String, model modelName: String? = nil, forRestoring: Bool = false) async throws {
        let database = quoteIdentifier(name)
        try await admin.execute("CREATE DATABASE \(database) \(options) ALLOW_CONNECTIONS false CONNECTION LIMIT 0", cancellable: true)
        let model = try await DatabaseProperties.read(modelName ?? names.target, on: admin)
        try await transaction(cancellable: false) {
            try await mark(name, marker)
            for statement in model?.privilegeStatements(for: name, keepingOwnersOwn: true) ?? [] {
                try await admin.execute(statement)
            }
            let allows = forRestoring || (model?.allowsConnections ?? true)
            let limit = forRestoring ? -1 : model?.connectionLimit ?? -1
            try await admin.execute("ALTER DATABASE \(database) WITH ALLOW_CONNECTIONS \(allows) CONNECTION LIMIT \(limit)")
        }
    }

    func mark(_ database: String, _ comment: String) async throws {
        try await admin.execute("COMMENT ON DATABASE \(quoteIdentifier(database)) IS \(try await admin.quoteLiteral(comment))")
    }

    /// Creates `copy` as a copy of `template` (`CREATE DATABASE … TEMPLATE`, which needs the template
    /// to have no sessions: they are ended first), with the template's database-level settings,
    /// commented `marker` and no more open than `model` (``create(_:as:marker:model:forRestoring:)``).
    /// - Returns: the template's settings that could not be carried over, with why.
    @discardableResult
    package func copy(_ template: String, to copy: String, marker: String, model: String? = nil, forRestoring: Bool = false) async throws -> [(DatabaseSetting, String)] {
        guard try await exists(template) else {
            throw PGCloneError(.objectNotFound, "there is no database \"\(template)\" on this server; `pgclone ls --local` lists them")
        }
        try await terminateSessions(on: template, cancellable: true)
        var options = "TEMPLATE \(quoteIdentifier(template))"
        // FILE_COPY copies the files (3-4 times faster here, PLATFORM.md §0) instead of writing the
        // whole copy to WAL; PostgreSQL 15 and later default to the latter.
        if await admin.serverVersion >= 150_000 { options += " STRATEGY = FILE_COPY" }
        do {
            try await create(copy, as: options, marker: marker, model: model, forRestoring: forRestoring)
        } catch let error as LibPQError where error.isObjectInUse {
            // A session that arrived between the termination and the copy: once more.
            try await terminateSessions(on: template, cancellable: true)
            try await create(copy, as: options, marker: marker, model: model, forRestoring: forRestoring)
        }
        return try await apply(admin.databaseSettings(of: template), to: copy)
    }

    /// Ends every other session of a role on `database`. Autovacuum workers (which have none) are
    /// left to PostgreSQL, which ends them itself for a rename, a copy or a drop; only a superuser
    /// could end them here. (`backend_type` would tell them apart, but is hidden from roles that may
    /// not see another role's sessions in full.)
    /// `cancellable`: an interrupt stops it (the work before the swap's COMMIT); clean-up is not.
    @discardableResult
    package func terminateSessions(on database: String, cancellable: Bool = false) async throws -> Int {
        let rows = try await admin.query(
            """
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = $1 AND pid <> pg_backend_pid() AND usesysid IS NOT NULL
            """,
            [database],
            cancellable: cancellable
        )
        return Int(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
    }

    /// `--reversible`: `D__snap`, a snapshot of `D__temp` as restored (before hooks), which the swap
    /// makes `D__current`; the old `D__current` stays until then.
    package func snapshotCurrent() async throws {
        try await copy(names.temporary, to: names.snapshot, marker: DatabaseMarker.snapshot(target: names.target, started: started))
    }

    /// `D__temp` as a copy of the local database `source` (`restore :NAME`).
    /// - Returns: `source`'s settings that could not be carried over, with why.
    package func copyAsTemporary(_ source: String) async throws -> [(DatabaseSetting, String)] {
        try await copy(source, to: names.temporary, marker: temporaryMarker, forRestoring: true)
    }

    /// The settings to give `D__temp`: `source`'s, but for those `D` has for particular roles,
    /// which are `kept` (a role read-only on `D` stays so), and must be carried over.
    package func settingsToApply(source: [DatabaseSetting]) async throws -> (source: [DatabaseSetting], kept: [DatabaseSetting]) {
        let own = try await admin.databaseSettings(of: names.target).filter { $0.role != nil }
        return (source.filter { setting in !own.contains { $0.role == setting.role && $0.name == setting.name } }, own)
    }

    /// Applies database-level settings to `database` (`D__temp` unless said otherwise). Role-specific
    /// settings of roles that do not exist on this server are skipped and returned with why; so is
    /// one the role may not set, unless it is `required`.
    /// - Throws: `.insufficientPrivilege` for a `required` setting the role may not set.
    package func apply(_ settings: [DatabaseSetting], to database: String? = nil, required: Bool = false) async throws -> [(DatabaseSetting, String)] {
        let target = database ?? names.temporary
        let quoted = quoteIdentifier(target)
        var skipped: [(DatabaseSetting, String)] = []
        for setting in settings {
            var statement: String
            if let role = setting.role {
                guard try await !admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).isEmpty else {
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
                values.append(try await admin.quoteLiteral(element))
            }
            statement += " SET \(name) TO \(values.joined(separator: ", "))"
            do {
                try await admin.execute(statement)
            } catch let error as LibPQError where error.isInsufficientPrivilege {
                guard required else {
                    skipped.append((setting, "\(error.message) (it needs a superuser\(setting.role == nil ? "" : " or CREATEROLE"))"))
                    continue
                }
                let owner = setting.role.map { "role \"\($0)\"'s setting" } ?? "the setting"
                throw PGCloneError(
                    .insufficientPrivilege,
                    "\(owner) \(setting.name) = \(setting.value) on \"\(names.target)\" cannot be carried over to the restored database (\(error.message)), and the restore would lose it; restore as a superuser\(setting.role == nil ? "" : " or a role with CREATEROLE"), or reset it on \"\(names.target)\" first if it is not needed",
                    cause: error
                )
            }
        }
        return skipped
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

    /// Drops what this run made before the swap (after a failure): `D__temp` and `D__snap`.
    package func dropTemporary() async throws {
        try await drop(names.temporary)
        try await drop(names.snapshot)
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
                try await admin.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(database))")
                return
            } catch let error as LibPQError where error.isObjectInUse && attempt < attempts {
                // A session (or a subscription) that arrived in between: once more.
            }
        }
    }
}
