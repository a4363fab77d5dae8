import Logging
package import PGCloneStreams

extension DatabaseSwap {
    /// What the swap did.
    package struct SwapReport: Sendable {
        /// How long `D` refused connections; zero on a first restore.
        package var unavailable: Duration
        /// Sessions on `D` (and the renamed snapshots) that were ended: not those on `D__temp`,
        /// pgclone's own (pg_restore's, whose server processes may still be exiting) or a hook's.
        package var terminatedSessions: Int
        /// Whether there was a `D` to swap out.
        package var replacedExisting: Bool
        /// Databases the swap displaced, to drop now (``dropDisplaced(_:keepingSnapshots:)``).
        package var displaced: [String]
        /// What of the database's access properties it could not give as they were (a first
        /// restore's missing roles, grants made by the owner for a role it may not act as).
        package var accessLeftOut: [String] = []
    }

    /// Puts `D__temp` in place of `D`. With the guard installed (``SwapGuard``), `D` refuses new
    /// connections, its sessions (and those on the snapshots being renamed) are ended, then one
    /// transaction renames `D` to `D__swap` (or `D__previous`, `keepingPrevious`, the old
    /// `D__previous` going to `D__swap`) and `D__temp` to `D`, gives the new `D` the old one's
    /// owner, privileges, connection limit and comment, and makes `D__snap` the new `D__current`
    /// (the old one goes to `D__temp`, free by then). Either all of it happens or none.
    ///
    /// Cancelled (SIGINT, SIGTERM) before the transaction commits, the swap stops and `D` is as it
    /// was; once COMMIT is sent, the transaction decides. On failure, `D` accepts connections again
    /// (through pgclone, or the guard if pgclone's session is gone).
    /// - Parameters:
    ///   - guardSettings: how to open the guard's session (the maintenance database).
    ///   - lockTimeout: how long a statement of the swap may wait for a lock (`lock_timeout`'s
    ///     syntax) while `D` is closed: a session holding a lock on one of the databases fails the
    ///     swap then, rather than keeping `D` closed as long as it likes.
    ///   - attempts: renames fail while sessions still leave; each attempt ends them again.
    ///   - sourceAccess: the source's access properties, which a first restore (no `D`) gives the
    ///     new `D` as far as its roles exist (``accessStatements(_:for:replacing:)``); what is left out goes
    ///     into the report.
    package func swap(
        keepingPrevious: Bool,
        newSnapshot: Bool,
        guardSettings: ConnectionSettings,
        lockTimeout: String = "10s",
        sourceAccess: DatabaseAccess? = nil,
        attempts: Int = 5
    ) async throws -> SwapReport {
        let target = quoteIdentifier(names.target)
        let temporary = quoteIdentifier(names.temporary)
        guard let old = try await DatabaseProperties.read(names.target, on: connection) else {
            // A first restore: nothing to replace; the source's access properties where it says.
            var (statements, leftOut): ([String], [String]) = ([], [])
            if let sourceAccess {
                (statements, leftOut) = try await accessStatements(
                    sourceAccess,
                    for: names.target,
                    replacing: temporaryProperties()
                )
            }
            // A `D__current` without `D` (a DBA dropped `D`) gives way to the new snapshot.
            let currentExists = newSnapshot ? try await admin.exists(names.current) : false
            // The rename waits for D__temp's sessions (one a hook left behind).
            try await admin.terminateSessions(on: names.temporary, cancellable: true)
            try await admin.transaction(cancellable: true) {
                try await connection.execute("ALTER DATABASE \(temporary) RENAME TO \(target)", cancellable: true)
                try await connection.execute("COMMENT ON DATABASE \(target) IS NULL")
                for statement in statements {
                    try await connection.execute(statement, cancellable: true)
                }
                if newSnapshot {
                    try await makeSnapshotCurrent(displacing: currentExists)
                }
            }
            return SwapReport(
                unavailable: .zero,
                terminatedSessions: 0,
                replacedExisting: false,
                displaced: currentExists ? [names.temporary] : [],
                accessLeftOut: leftOut
            )
        }
        let previousExists = try await admin.exists(names.previous)
        let currentExists = try await admin.exists(names.current)
        // Sessions on the databases renamed in the transaction must be gone too: D__temp's
        // included (a session a hook left behind, a role D's privileges let in), or its rename
        // waits for them while D refuses connections.
        var renamed = [names.target, names.temporary]
        if keepingPrevious {
            if previousExists { renamed.append(names.previous) }
            if newSnapshot && currentExists { renamed.append(names.current) }
        }
        // Ended once before D closes, so that one pgclone may not end fails the swap with D open.
        let endedBeforeClosing = try await admin.terminateSessions(on: names.temporary, cancellable: true)

        // `D` refused connections before pgclone came (a DBA's decision): it stays so, and there is
        // nothing for a guard to undo.
        let closes = old.allowsConnections
        let swapGuard =
            closes
            ? try await SwapGuard.install(
                admin: connection,
                settings: guardSettings,
                target: names.target,
                comment: old.comment
            ) : nil
        let clock = ContinuousClock()
        var start = clock.now
        var terminated = 0
        var endedOnTemporary = endedBeforeClosing
        do {
            try await connection.query("SELECT set_config('lock_timeout', $1, false)", [lockTimeout])
            if closes {
                try await close(comment: old.comment)
                // D refuses connections from here on, not while closing it waited for a lock.
                start = clock.now
            }
            var lastError: LibPQError?
            for attempt in 1...attempts {
                do {
                    for database in renamed {
                        let ended = try await admin.terminateSessions(on: database, cancellable: true)
                        if database == names.temporary { endedOnTemporary += ended } else { terminated += ended }
                    }
                    let (displaced, regranted) = try await renameAll(
                        old: old,
                        keepingPrevious: keepingPrevious,
                        newSnapshot: newSnapshot,
                        previousExists: previousExists,
                        currentExists: currentExists,
                        refusedBefore: !old.allowsConnections
                    )
                    let unavailable = clock.now - start
                    // Committed: the restored D accepts connections, and the guard has nothing
                    // left to do (if its session failed, there is nothing to undo either).
                    if let swapGuard { try? await swapGuard.release(admin: connection) }
                    if endedOnTemporary > 0 {
                        logger?.debug("ended \(counted(endedOnTemporary, "session")) on \"\(names.temporary)\"")
                    }
                    logger?.warnRegranted(regranted, on: names.target, role: await connection.endpoint.user)
                    return SwapReport(
                        unavailable: unavailable,
                        terminatedSessions: terminated,
                        replacedExisting: true,
                        displaced: displaced,
                        accessLeftOut: regranted.map { "\(DatabaseProperties.describe($0)) as granted by the owner" }
                    )
                } catch let error as LibPQError where error.isObjectInUse && attempt < attempts && !error.connectionLost
                {
                    // Sessions still leaving (or reconnecting to a snapshot): end them again.
                    lastError = error
                }
            }
            throw lastError ?? LibPQError(sqlState: nil, message: "the swap did not complete")
        } catch {
            // Undo what is not transactional: `D` accepts connections again. If pgclone's session
            // is gone, its server process ends and the guard does it.
            // Only if it refuses them: a close that never committed (it waited for a lock) has
            // nothing to undo, and reopening would wait for the same lock again.
            if closes, (try? await DatabaseProperties.read(names.target, on: connection))??.allowsConnections != true {
                try? await reopen(comment: old.comment)
            }
            if let swapGuard {
                try? await swapGuard.release(admin: connection)
            }
            throw error
        }
    }

    /// The swap's transaction. Returns the databases it displaced.
    /// - Returns: what it moved out of the way, and `D`'s privileges granted by the owner for a
    ///   role the current role may not act as (``DatabaseProperties/statements(for:replacing:actingAs:on:)``).
    private func renameAll(
        old: DatabaseProperties,
        keepingPrevious: Bool,
        newSnapshot: Bool,
        previousExists: Bool,
        currentExists: Bool,
        refusedBefore: Bool
    ) async throws -> (displaced: [String], regranted: [DatabaseProperties.Grant]) {
        let target = quoteIdentifier(names.target)
        // What the transaction moves out of the way, to be dropped after it: the old
        // `D__previous`, or `D` itself; the old `D__current`.
        var displaced: [String] = []
        if !keepingPrevious || previousExists { displaced.append(names.swapped) }
        if newSnapshot && currentExists { displaced.append(names.temporary) }
        var regranted: [DatabaseProperties.Grant] = []
        // The last moment an interrupt can still undo the swap is just before its COMMIT.
        try await admin.transaction(cancellable: true) {
            if keepingPrevious {
                if previousExists {
                    try await displace(names.previous, to: names.swapped)
                }
                try await rename(names.target, names.previous)
                try await admin.mark(names.previous, DatabaseMarker.previous(target: names.target, started: started))
                // The snapshot is restored by copying it as a template; it stays closed only if a
                // DBA had closed `D`.
                if !refusedBefore {
                    try await connection.execute(
                        "ALTER DATABASE \(quoteIdentifier(names.previous)) ALLOW_CONNECTIONS true"
                    )
                }
            } else {
                try await displace(names.target, to: names.swapped)
            }
            // `D`'s owner, privileges and connection limit, read now that this transaction has
            // renamed it: a GRANT or REVOKE a DBA committed since pgclone first read them is here,
            // and one not yet committed waits for this transaction, then fails. Its comment is
            // the one from before the swap closed it. D__temp's privileges (its owner's, and any a
            // hook granted) go, for D's to be granted; then its owner gives way to D's.
            let renamedOld = keepingPrevious ? names.previous : names.swapped
            guard var current = try await DatabaseProperties.read(renamedOld, on: connection) else {
                throw PGCloneError(.swapFailed, "\"\(names.target)\" is gone: was it dropped during the restore?")
            }
            current.comment = old.comment
            let properties: [String]
            (properties, regranted) = try await current.statements(
                for: names.target,
                replacing: temporaryProperties(),
                actingAs: connection.rolesItMaySetRoleTo(current.grantors),
                on: connection
            )
            try await rename(names.temporary, names.target)
            for statement in properties {
                try await connection.execute(statement, cancellable: true)
            }
            if refusedBefore {
                try await connection.execute("ALTER DATABASE \(target) ALLOW_CONNECTIONS false")
            }
            if newSnapshot {
                try await makeSnapshotCurrent(displacing: currentExists)
            }
        }
        return (displaced, regranted)
    }

    /// Renames `from` to `to`, in the swap's transaction (an interrupt cancels it).
    private func rename(_ from: String, _ to: String) async throws {
        try await connection.execute(
            "ALTER DATABASE \(quoteIdentifier(from)) RENAME TO \(quoteIdentifier(to))",
            cancellable: true
        )
    }

    /// Moves `database` out of the way as `name`, marked for the drop after the swap.
    private func displace(_ database: String, to name: String) async throws {
        try await rename(database, name)
        try await admin.mark(name, DatabaseMarker.displaced(target: names.target))
    }

    /// In the swap's transaction, once `D__temp` is `D`: `D__snap` becomes `D__current`, the old
    /// one (`displacing`) moved to `D__temp`, marked for the drop after the swap. `D__current` gets
    /// `D`'s owner, as `D__previous` (the old `D`) has it: the next restore by that owner may drop
    /// or rename it.
    private func makeSnapshotCurrent(displacing: Bool) async throws {
        if displacing {
            // `D__temp` is free since its rename.
            try await displace(names.current, to: names.temporary)
        }
        try await rename(names.snapshot, names.current)
        let owner =
            try await connection.query(
                "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = $1",
                [names.target]
            ).first?.first ?? nil
        if let owner {
            try await connection.execute(
                "ALTER DATABASE \(quoteIdentifier(names.current)) OWNER TO \(quoteIdentifier(owner))"
            )
        }
    }

    /// Drops what the swap displaced; without `keepingSnapshots`, the reversible restore's
    /// snapshots too, which no longer describe `D` (django-pgclone's semantics). One that cannot be
    /// dropped (a subscription a guard keeps) leaves the others to be dropped all the same.
    /// - Throws: the first database's error, once every one has been tried; a lost session or a
    ///   cancellation at once.
    package func dropDisplaced(_ displaced: [String], keepingSnapshots: Bool) async throws {
        var databases = displaced
        if !keepingSnapshots {
            for database in [names.previous, names.current] where try await admin.isPGClones(database) {
                databases.append(database)
            }
        }
        var firstError: (any Error)?
        for database in databases {
            do {
                try await admin.drop(database)
            } catch let error as LibPQError where !error.connectionLost {
                firstError = firstError ?? error
            } catch let error as PGCloneError {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
    }

    /// What state `D` is in, found on the server: the database it was (`old`), accepting
    /// connections as it did or not, or the restored one.
    package func targetState(old: DatabaseProperties?) async -> PGCloneError.TargetState {
        let (oldOID, existed) = (old?.oid, old != nil)
        do {
            guard let properties = try await DatabaseProperties.read(names.target, on: connection) else {
                if !existed { return .unchanged(names.target) }
                return .unknown(names.target, advice: "it no longer exists; `pgclone ls --local` lists the databases")
            }
            // The swap renames D__temp: D has its OID once it has committed.
            if let temporaryOID, properties.oid == temporaryOID { return .replaced(names.target) }
            if properties.oid != oldOID {
                return .unknown(
                    names.target,
                    advice: """
                        it holds another database than before, not the one this restore made (this one lost the \
                        session holding its lock, which lets another restore begin)
                        """
                )
            }
            // Closed before pgclone came (a DBA's decision) is as it was.
            if properties.allowsConnections || old?.allowsConnections == false { return .unchanged(names.target) }
            return .refusingConnections(
                names.target,
                advice: """
                    run this restore again, which lets it accept them first, or run ALTER DATABASE \
                    \(quoteIdentifier(names.target)) ALLOW_CONNECTIONS true
                    """
            )
        } catch {
            return .unknown(
                names.target,
                advice: "pgclone could not reach the server (\(error)); check it with `pgclone ls --local`"
            )
        }
    }

    /// `D__temp`'s properties, for the swap to replace.
    private func temporaryProperties() async throws -> DatabaseProperties {
        guard let properties = try await DatabaseProperties.read(names.temporary, on: connection) else {
            throw PGCloneError(.swapFailed, "\"\(names.temporary)\" is gone: was it dropped during the restore?")
        }
        return properties
    }
}
