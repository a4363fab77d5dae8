import Glibc
import Logging

/// The logical replication subscriptions of one database. They sit in a shared catalog
/// (`pg_subscription`) but belong to their database: `DROP DATABASE` refuses one that has any ("is
/// being used by logical replication subscription"), and `ALTER`/`DROP SUBSCRIPTION` reach only
/// those of the database their session is connected to. A subscription is restored from a dump
/// disabled (pg_dump writes `connect = false`), but it is there, in `D__temp`, then `D`, then
/// `D__swap` or `D__previous`: every database pgclone drops may hold some.
struct DatabaseSubscription: Sendable, Equatable {
    var name: String
    var owner: String
    var enabled: Bool
    /// `slot_name`: the replication slot on the publisher that `DROP SUBSCRIPTION` would connect
    /// there to drop; `nil` for `NONE`.
    var slot: String?
    /// Whether its owner is a superuser.
    var ownerIsSuperuser: Bool
    /// Whether the current role may alter and drop it: a superuser may; otherwise a member of its
    /// owner (with its privileges), unless it must be altered and has `password_required = false`
    /// (PostgreSQL 16 and later), which only a superuser may alter.
    var detachable: Bool
    /// Whether it has `password_required = false`, and the current role is no superuser.
    var needsSuperuser: Bool

    /// Whether detaching it takes an `ALTER SUBSCRIPTION` (it is enabled or names a slot).
    var needsAlter: Bool { enabled || slot != nil }

    /// The subscriptions of `database`, by name; none on a server older than PostgreSQL 10 or for
    /// a database that does not exist. Reads only the columns of `pg_subscription` that every role
    /// may read (not `subconninfo`, which may hold a password).
    static func list(in database: String, on admin: PostgresConnection) async throws -> [DatabaseSubscription] {
        let version = await admin.serverVersion
        guard version >= 100_000 else { return [] }
        let passwordRequired = version >= 160_000 ? "s.subpasswordrequired" : "true"
        let rows = try await admin.query(
            """
            SELECT s.subname, pg_get_userbyid(s.subowner), s.subenabled, s.subslotname,
                   coalesce(o.rolsuper, false), r.rolsuper, pg_has_role(current_user, s.subowner, 'USAGE'), \
                   \(passwordRequired)
            FROM pg_subscription AS s JOIN pg_database AS d ON d.oid = s.subdbid
            LEFT JOIN pg_roles AS o ON o.oid = s.subowner
            CROSS JOIN pg_roles AS r
            WHERE d.datname = $1 AND r.rolname = current_user
            ORDER BY s.subname
            """,
            [database]
        )
        return rows.map { row in
            let isSuperuser = row[5] == "t"
            let passwordRequired = row[7] != "f"
            var subscription = DatabaseSubscription(
                name: row[0] ?? "",
                owner: row[1] ?? "",
                enabled: row[2] == "t",
                slot: row[3],
                ownerIsSuperuser: row[4] == "t",
                detachable: false,
                needsSuperuser: false
            )
            subscription.needsSuperuser = !isSuperuser && subscription.needsAlter && !passwordRequired
            subscription.detachable = isSuperuser || (row[6] == "t" && !subscription.needsSuperuser)
            return subscription
        }
    }

    /// The statements that detach it and drop it without contacting its publisher: disabled (its
    /// worker stops), its slot forgotten (so `DROP SUBSCRIPTION` leaves the publisher alone), dropped.
    /// Each only where needed, so that a disabled subscription without a slot is only dropped.
    var detachStatements: [String] {
        let quoted = quoteIdentifier(name)
        var statements: [String] = []
        if enabled { statements.append("ALTER SUBSCRIPTION \(quoted) DISABLE") }
        if slot != nil { statements.append("ALTER SUBSCRIPTION \(quoted) SET (slot_name = NONE)") }
        statements.append("DROP SUBSCRIPTION \(quoted)")
        return statements
    }
}

extension DatabaseAdmin {
    /// The error for `subscription` of `database` that could not be dropped (an event trigger of
    /// D's own refusing `ALTER SUBSCRIPTION`, which only a superuser's session may turn off): what,
    /// why, and what would. Until then every restore that must drop `database` fails with it,
    /// before it changes anything.
    static func detachRefused(
        _ subscription: DatabaseSubscription,
        of database: String,
        _ error: LibPQError,
        bySuperuser: Bool
    ) -> PGCloneError {
        let remedy =
            bySuperuser
            ? "run in \"\(database)\", as a role that may: \(subscription.detachStatements.joined(separator: "; "))"
            : "a restore by a superuser drops it, with the database's event triggers off"
        return PGCloneError(
            bySuperuser ? .databaseError : .insufficientPrivilege,
            """
            could not drop logical replication subscription \"\(subscription.name)\" of database \"\(database)\", \
            which must go before the database can be dropped: \(error.message); \(remedy)
            """,
            details: error.details.filter { $0.label != "statement" },
            cause: error
        )
    }

    /// Drops the subscriptions of `database`, so that `DROP DATABASE` can drop it, without
    /// contacting a publisher (``DatabaseSubscription/detachStatements``): in one transaction on a
    /// session of pgclone's own in `database` (the statements reach no other database's). A
    /// database that refuses connections — the `D__swap` a swap closed, a snapshot of a `D` a DBA
    /// closed — accepts them for that session only, and refuses them again before this returns,
    /// whatever happens: nobody uses its name, it is about to be dropped, and the roles that may
    /// connect are those that could connect to `D`. pgclone never enables a subscription.
    /// - Returns: the subscriptions dropped (none for a database without any, untouched then).
    @discardableResult
    func detachSubscriptions(of database: String) async throws -> [DatabaseSubscription] {
        let subscriptions = try await DatabaseSubscription.list(in: database, on: connection)
        guard !subscriptions.isEmpty, let properties = try await DatabaseProperties.read(database, on: connection)
        else { return [] }
        let quoted = quoteIdentifier(database)
        let closed = !properties.allowsConnections
        if closed {
            try await connection.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS true")
        }
        do {
            // The database's login event triggers (one refusing logins) do not fire either.
            let session = try await PostgresConnection.connect(
                connection.settings.replacingDatabase(database)
                    .adding("fallback_application_name", "pgclone[\(getpid())] dropping subscriptions")
                    .addingSessionSettings(
                        try await connection.eventTriggersOffAtLogin(),
                        environment: getenv("PGOPTIONS").map { ["PGOPTIONS": String(cString: $0)] } ?? [:]
                    )
            )
            do {
                // D's own event triggers (a guard refusing drops) are not for pgclone's clean-up:
                // off for the session, or, before PostgreSQL 17, disabled in its transaction.
                try await session.turnOffEventTriggers()
                try await session.inTransactionWithEventTriggersDisabled {
                    for subscription in subscriptions {
                        do {
                            for statement in subscription.detachStatements { try await session.execute(statement) }
                        } catch let error as LibPQError where !error.connectionLost {
                            // Asked on the admin session (same role): this transaction has failed.
                            let superuser = try? await connection.query(
                                "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user"
                            )
                            throw Self.detachRefused(
                                subscription,
                                of: database,
                                error,
                                bySuperuser: superuser?.first?.first == "t"
                            )
                        }
                    }
                }
            } catch {
                await session.close()
                throw error
            }
            await session.close()
        } catch {
            if closed { _ = try? await connection.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS false") }
            throw error
        }
        if closed {
            try await connection.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS false")
        }
        for subscription in subscriptions {
            let slot = subscription.slot.map { " (its slot_name was \"\($0)\")" } ?? ""
            if subscription.enabled {
                logger?.warning(
                    """
                    disabled and dropped logical replication subscription \"\(subscription.name)\" of \
                    \"\(database)\" before dropping the database, without contacting its publisher\(slot); a \
                    replication slot it used there keeps WAL until it is dropped there (pg_drop_replication_slot)
                    """
                )
            } else {
                logger?.info(
                    """
                    dropped logical replication subscription \"\(subscription.name)\" of \"\(database)\" before \
                    dropping the database, without contacting its publisher\(slot)
                    """
                )
            }
        }
        return subscriptions
    }
}
