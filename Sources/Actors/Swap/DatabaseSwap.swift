package import Logging
import PGCloneMetrics
package import PGCloneStreams

/// The Swap stage: the restore-and-swap protocol (DESIGN.md) for one target `D`, run through the
/// administrative session (``DatabaseAdmin``): the per-target advisory lock, the repair of a swap
/// a crash cut short, the temporary database and its settings, the snapshot, and the swap itself
/// (`DatabaseSwap+Swap.swift`).
///
/// An actor: for the length of a restore it owns the admin session and the target's lock (whether
/// it holds it), so the protocol's steps run one at a time. The session's libpq calls run on the
/// connection's own executor; the stage itself only awaits them, on the shared pool.
package actor DatabaseSwap {
    /// The administrative session the protocol runs through.
    package nonisolated let admin: DatabaseAdmin
    package nonisolated let names: DatabaseNames
    /// When this run began, UTC, for the comments on the databases it makes.
    package nonisolated let started: String
    /// Whether this session holds the target's lock.
    private var holdsLock = false
    /// The OID of the `D__temp` this run made (``createTemporary(locale:owner:)``,
    /// ``copyAsTemporary(_:)``): a rename keeps it, so `D` has it once the swap has committed, and
    /// only then; a `D__temp` made again by another restore has another.
    package private(set) var temporaryOID: String?

    /// - Parameter temporaryOID: the OID of the `D__temp` this run made, for a session that takes
    ///   over from one that was lost.
    package init(admin: DatabaseAdmin, names: DatabaseNames, started: String, temporaryOID: String? = nil) {
        self.admin = admin
        self.names = names
        self.started = started
        self.temporaryOID = temporaryOID
    }

    nonisolated var connection: PostgresConnection { admin.connection }
    nonisolated var logger: Logger? { admin.logger }

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
                let advice =
                    wait == nil
                    ? "wait for it to finish, or pass --wait" : "it was still running after \(wait!.formattedSeconds)"
                throw PGCloneError(
                    .lockHeld,
                    """
                    another pgclone restore of database \"\(names.target)\" is \
                    running\(holder.map { " (\($0))" } ?? ""); \(advice)
                    """
                )
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Takes the target's lock if it is free.
    package func tryLock() async throws -> Bool {
        let locked =
            try await connection.query(
                "SELECT pg_try_advisory_lock(\(Self.lockKey("restore")))",
                [names.target]
            ).first?.first == "t"
        if locked { holdsLock = true }
        return locked
    }

    /// Who holds the lock: the session's application name, server pid and start time.
    private func lockHolder() async throws -> String? {
        let rows = try await connection.query(
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

    /// Releases the target's lock, if this session holds it.
    package func releaseLock() async {
        guard holdsLock else { return }
        _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey("restore")))", [names.target])
        holdsLock = false
    }

    // MARK: Repair

    /// Lets `D` accept connections again, with its own comment back, if a swap left it closed:
    /// pgclone's guard does that when pgclone dies, but not when the server itself restarted in
    /// the middle of the swap. The swap marks `D` in the transaction that closes it; a `D` that a
    /// DBA closed carries no such mark and is left alone. Call with the target's lock held.
    /// - Returns: whether it repaired `D`.
    @discardableResult
    package func repairInterruptedSwap() async throws -> Bool {
        guard let target = try await DatabaseProperties.read(names.target, on: connection), !target.allowsConnections,
            let comment = DatabaseMarker.commentBeforeSwap(target.comment)
        else { return false }
        try await reopen(comment: comment)
        return true
    }

    /// Closes `D` to new connections and marks it, in one transaction, as closed by this swap,
    /// with its comment (``reopen(comment:)`` puts it back).
    func close(comment: String?) async throws {
        let target = quoteIdentifier(names.target)
        try await admin.transaction(cancellable: true) {
            try await connection.execute(
                """
                COMMENT ON DATABASE \(target) IS \
                \(try await connection.quoteLiteral(DatabaseMarker.closedForSwap(comment: comment)))
                """,
                cancellable: true
            )
            try await connection.execute("ALTER DATABASE \(target) ALLOW_CONNECTIONS false", cancellable: true)
        }
    }

    /// Opens `D` to connections again, with `comment` back, in one transaction.
    func reopen(comment: String?) async throws {
        let target = quoteIdentifier(names.target)
        let literal = try await connection.quoteLiteral(orNull: comment)
        try await admin.transaction(cancellable: false) {
            try await connection.execute("ALTER DATABASE \(target) ALLOW_CONNECTIONS true")
            try await connection.execute("COMMENT ON DATABASE \(target) IS \(literal)")
        }
    }

    // MARK: Temporary database

    /// Drops what an interrupted run left: `D__temp`, `D__snap`, and `D__swap` if `D` itself exists
    /// (then the swap had committed and only the drop of the old database was missed). Only
    /// databases pgclone marked as its own; ``SwapPreflight`` refuses to go on beside others.
    package func dropLeftovers() async throws {
        for name in [names.temporary, names.snapshot] where try await admin.isPGClones(name) {
            try await admin.drop(name)
        }
        if try await admin.exists(names.target), try await admin.isPGClones(names.swapped) {
            try await admin.drop(names.swapped)
        }
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
        let locale = if let source { source } else { try await connection.databaseLocale(of: names.target) }
        if let locale {
            options += " ENCODING \(try await connection.quoteLiteral(locale.encoding))"
            options += " LC_COLLATE \(try await connection.quoteLiteral(locale.collate))"
            options += " LC_CTYPE \(try await connection.quoteLiteral(locale.ctype))"
            let serverVersion = await connection.serverVersion
            if locale.provider != "libc" || serverVersion >= 150_000 {
                // A server older than 15 has libc only: CREATE DATABASE says so, in one line.
                options += " LOCALE_PROVIDER \(try await connection.quoteLiteral(locale.provider))"
            }
            if let name = locale.locale {
                let keyword = locale.provider == "builtin" ? "BUILTIN_LOCALE" : "ICU_LOCALE"
                options += " \(keyword) \(try await connection.quoteLiteral(name))"
            }
            if let rules = locale.icuRules, !rules.isEmpty {
                options += " ICU_RULES \(try await connection.quoteLiteral(rules))"
            }
        }
        try await admin.create(
            names.temporary,
            as: options,
            marker: temporaryMarker,
            model: names.target,
            forRestoring: true
        )
        try await recordTemporary()
        return locale
    }

    /// Reads the OID of the `D__temp` just made, with the lock held: it is this run's.
    private func recordTemporary() async throws {
        temporaryOID = try await DatabaseProperties.read(names.temporary, on: connection)?.oid
    }

    /// Makes sure that this run may still restore into `D__temp`: its admin session answers, so
    /// it still holds the target's lock (a session-level lock ends only with the session), and
    /// `D__temp` is the database it made. Call before anything connects to `D__temp` by name,
    /// within ``watchingLock(_:)``, which makes a session that does not answer the lost lock.
    /// - Throws: `.databaseError` if `D__temp` is not this run's (with the lock held, someone
    ///   other than pgclone dropped it); the session's error if it does not answer.
    package func confirmTemporary() async throws {
        let oid = try await DatabaseProperties.read(names.temporary, on: connection)?.oid
        guard let oid, oid == temporaryOID else {
            throw PGCloneError(
                .databaseError,
                oid == nil
                    ? "\"\(names.temporary)\" no longer exists: it was dropped while this restore ran"
                    : """
                    \"\(names.temporary)\" is no longer the database this restore made: it was dropped and made \
                    again while this restore ran, though not by pgclone (this restore holds the lock on \
                    \"\(names.target)\")
                    """
            )
        }
    }

    /// Runs `body` while the admin session is watched, every 100 ms: once the server has ended
    /// it, and the target's lock with it, `body` is cancelled (its pg_restore, COPY sessions and
    /// hooks stopped) before another restore has had time to make a `D__temp` of its own, and
    /// this throws the lost lock. An error of `body`'s own after the session ended (a statement
    /// on it) is the lost lock too.
    /// - Throws: `.databaseUnavailable` if the session was lost; else what `body` throws.
    package nonisolated func watchingLock<T: Sendable>(
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let connection = self.connection
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while true {
                    try await Task.sleep(for: .milliseconds(100))
                    if let reason = await connection.endedReason() { throw self.lostLock(reason) }
                }
            }
            do {
                let result = try await group.next()!
                group.cancelAll()
                return result!
            } catch let error as PGCloneError where error.code == .databaseUnavailable {
                group.cancelAll()
                throw error
            } catch {
                group.cancelAll()
                if let reason = await connection.endedReason() { throw lostLock(reason) }
                throw error
            }
        }
    }

    /// The error of a restore whose admin session, which held the target's lock, ended for `reason`.
    nonisolated func lostLock(_ reason: String) -> PGCloneError {
        PGCloneError(
            .databaseUnavailable,
            """
            the session holding the lock on \"\(names.target)\" was lost (\(reason)); stopped, since another \
            restore of \"\(names.target)\" may have begun
            """
        )
    }

    /// Makes sure that `session`, opened to `D__temp` by name, is connected to the `D__temp` this
    /// run made: ``confirmTemporary()`` cannot rule out another restore making its own in the
    /// moment before `session` connects; once it is connected, the database cannot be dropped
    /// without ending it.
    /// - Throws: `.databaseError` if it is another.
    package func confirmConnected(_ session: PostgresConnection) async throws {
        let expected = temporaryOID
        let connected =
            try await session.query(
                "SELECT oid::text FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()"
            ).first?.first ?? nil
        guard let expected, connected == expected else {
            throw PGCloneError(
                .databaseError,
                """
                \"\(names.temporary)\" is no longer the database this restore made: it was dropped and made \
                again, as another restore of \"\(names.target)\" does once this one has lost the session holding \
                its lock
                """
            )
        }
    }

    /// `D__temp`'s comment.
    var temporaryMarker: String {
        DatabaseMarker.temporary(target: names.target, started: started)
    }

    /// `--reversible`: `D__snap`, a snapshot of `D__temp` as restored (before hooks), which the swap
    /// makes `D__current`; the old `D__current` stays until then.
    package func snapshotCurrent() async throws {
        try await admin.copy(
            names.temporary,
            to: names.snapshot,
            marker: DatabaseMarker.snapshot(target: names.target, started: started),
            model: names.target,
            exact: true
        )
    }

    /// `D__temp` as a copy of the local database `source` (`restore :NAME`), owned by `owner`
    /// (``temporaryOwner(source:restoringAs:)``; the current role if `nil`).
    /// - Returns: `source`'s settings that could not be carried over, with why.
    package func copyAsTemporary(_ source: String, owner: String?) async throws -> [(DatabaseSetting, String)] {
        let copied = try await admin.copy(
            source,
            to: names.temporary,
            marker: temporaryMarker,
            model: names.target,
            owner: owner,
            forRestoring: true
        )
        try await recordTemporary()
        return copied.skipped
    }

    /// The settings a restore gives `D__temp` (``settingsToApply(source:)``), and those of `D`'s
    /// that it does not (`dropped`).
    package typealias SettingsPlan = (
        required: [DatabaseSetting], optional: [DatabaseSetting], dropped: [DatabaseSetting]
    )

    /// The settings to give `D__temp`: `source`'s, but for those `D` has for particular roles,
    /// which are kept (a role read-only on `D` stays so). What must be carried over (`required`)
    /// is `D`'s for particular roles, and `source`'s for the whole database that `D` has too:
    /// skipping one of those (a superuser's `log_statement`, which the restoring role may not
    /// set) would take it from `D`. The rest of `source`'s (`optional`) is skipped with a warning
    /// when the role may not set it. `D`'s for the whole database that `source` lacks are
    /// `dropped`: the restored database's settings are its source's.
    package func settingsToApply(
        source: [DatabaseSetting]
    ) async throws -> SettingsPlan {
        let own = try await connection.databaseSettings(of: names.target)
        let ownForRoles = own.filter { $0.role != nil }
        let fromSource = source.filter { setting in
            !ownForRoles.contains { $0.role == setting.role && $0.name == setting.name }
        }
        let takenFromD = { (setting: DatabaseSetting) in
            setting.role == nil && own.contains { $0.role == nil && $0.name.lowercased() == setting.name.lowercased() }
        }
        let dropped = own.filter { setting in
            setting.role == nil
                && !source.contains { $0.role == nil && $0.name.lowercased() == setting.name.lowercased() }
        }
        return (ownForRoles + fromSource.filter(takenFromD), fromSource.filter { !takenFromD($0) }, dropped)
    }

    /// Tries `required` on `D__temp` in a transaction it rolls back, so that a setting the role may
    /// not set fails the restore before the archive is restored rather than after
    /// (``DatabaseAdmin/apply(_:to:from:required:dropping:)``; the settings themselves come after
    /// the restore: `default_transaction_read_only` would stop pg_restore). So are `dropped`, `D`'s
    /// that the source has not: the restore may drop only what the role could reset itself (a
    /// superuser's `log_statement` on `D` is not the application role's to remove).
    /// - Throws: `.insufficientPrivilege` for the first one the role may not set.
    package func checkSettings(_ required: [DatabaseSetting], dropping dropped: [DatabaseSetting] = []) async throws {
        guard !required.isEmpty || !dropped.isEmpty else { return }
        try await admin.transaction(cancellable: false, commit: false) {
            _ = try await admin.apply(required, to: names.temporary, from: names.target, required: true)
            _ = try await admin.apply(dropped, to: names.temporary, from: names.target, required: true, dropping: true)
        }
    }

    /// Applies database-level settings to `D__temp`: `D`'s own that must be kept are `required`
    /// (``DatabaseAdmin/apply(_:to:from:required:)``).
    /// - Returns: the settings skipped, with why.
    package func applyToTemporary(
        _ settings: [DatabaseSetting],
        required: Bool
    ) async throws -> [(DatabaseSetting, String)] {
        try await admin.apply(settings, to: names.temporary, from: names.target, required: required)
    }

    /// Drops what this run made before the swap (after a failure): `D__temp` and `D__snap`. Only
    /// this run's `D__temp` (by OID: a hook may have changed its comment) or one marked as
    /// pgclone's, and a `D__snap` marked so: a database made under the name by someone else
    /// meanwhile is theirs.
    package func dropTemporary() async throws {
        let temporary = try await DatabaseProperties.read(names.temporary, on: connection)
        if let temporary, temporary.oid == temporaryOID || DatabaseMarker.isPGClone(temporary) {
            try await admin.drop(names.temporary)
        }
        if try await admin.isPGClones(names.snapshot) { try await admin.drop(names.snapshot) }
    }
}
