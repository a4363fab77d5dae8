package import Logging

/// Where pgclone's administrative session goes (restore, copy, `ls --local`): as createdb and
/// pg_dumpall connect, `postgres`, else `template1`; or only the database a setting names
/// (`--maintenance-db`, `PGCLONE_MAINTENANCE_DB`, `maintenance_db`).
package struct MaintenanceDatabase: Sendable, Equatable {
    /// Tried in order; one that refuses the connection for a reason about it
    /// (``ConnectionFailure/aboutDatabase``) is passed over for the next.
    package var candidates: [String]
    /// The setting that named the database (`--maintenance-db`…), for messages; `nil` for
    /// pgclone's own choice.
    package var origin: String?

    /// `postgres`, else `template1`.
    package static let standard = MaintenanceDatabase(candidates: ["postgres", "template1"])

    /// Only `name`, as `origin` names it.
    package static func named(_ name: String, origin: String) -> MaintenanceDatabase {
        MaintenanceDatabase(candidates: [name], origin: origin)
    }

    package init(candidates: [String], origin: String? = nil) {
        self.candidates = candidates
        self.origin = origin
    }

    /// The databases a restore must never replace: those pgclone and other tools connect to.
    package var protected: [String] {
        var names = MaintenanceDatabase.standard.candidates
        for name in candidates where !names.contains(name) { names.append(name) }
        return names
    }

    /// Refuses a named maintenance database that is one of `databases` (each with what it is to
    /// the command): pgclone's own session in it would stop the command, as PostgreSQL cannot
    /// rename, drop or copy a database another session is in.
    package func checkNotAmong(_ databases: [(name: String, role: String)]) throws(PGCloneError) {
        guard let origin, let name = candidates.first,
            let clash = databases.first(where: { $0.name == name })
        else { return }
        throw PGCloneError(
            .invalidConfiguration,
            "the maintenance database \"\(name)\" (\(origin)) is \(clash.role); name another one, such as postgres"
        )
    }
}

extension PostgresConnection {
    /// A connection to the maintenance database: the first of `maintenance`'s candidates, other
    /// than those `avoiding` (the database being replaced or copied, which must have no session of
    /// pgclone's own: PostgreSQL cannot rename, drop or template the database a session is in),
    /// that accepts it. A candidate that refuses for a reason about itself (it does not exist, the
    /// role lacks CONNECT on it, pg_hba.conf or a password-file line for it) is passed over, as
    /// createdb passes over `postgres` for `template1`; a refusal about the server or the role (it
    /// cannot be reached, a wrong password given explicitly, no connection slot left) fails at
    /// once, as the next would fail the same way. A named maintenance database is the only one
    /// tried. Every message names the databases tried.
    ///
    /// Its server process checks every ``SwapGuard/checkInterval`` ms of a statement that pgclone
    /// is still there (PostgreSQL 14 and later): a killed pgclone's locks, the swap's and the
    /// restore's, go at once, not when a long statement (a copy, a drop, a lock wait) ends.
    /// - Throws: `.invalidConfiguration` when every candidate refused for reasons about itself,
    ///   `.databaseUnavailable` when the server or the role was refused.
    package static func connectMaintenance(
        _ settings: ConnectionSettings,
        _ maintenance: MaintenanceDatabase = .standard,
        avoiding: [String] = [],
        logger: Logger? = nil
    ) async throws -> PostgresConnection {
        var refusals: [(database: String, error: LibPQError, failure: ConnectionFailure)] = []
        for database in maintenance.candidates where !avoiding.contains(database) {
            let connection: PostgresConnection
            do {
                connection = try await connect(settings.replacingDatabase(database))
            } catch let error as LibPQError {
                guard let failure = error.connectionFailure else { throw error }
                refusals.append((database, error, failure))
                if failure.aboutDatabase { continue }
                break
            }
            do {
                if await connection.serverVersion >= 140_000 {
                    try await connection.query(
                        "SELECT set_config('client_connection_check_interval', $1, false)",
                        [String(SwapGuard.checkInterval)]
                    )
                }
            } catch {
                await connection.close()
                throw PGCloneError.from(
                    error,
                    step: "setting up the session on the maintenance database \"\(database)\""
                )
            }
            if let refused = refusals.last {
                let passedOver = refusals.map { "\"\($0.database)\"" }.joined(separator: " and ")
                // A session in template1 makes others' CREATE DATABASE (which copies it) wait, and
                // fail after 5 s.
                let note =
                    database == "template1" ? "; CREATE DATABASE from template1 waits while pgclone is in it" : ""
                logger?.info(
                    """
                    the maintenance database is \"\(database)\": \(passedOver) refused the connection \
                    (\(refused.failure.reason))\(note)
                    """
                )
            }
            return connection
        }
        guard let last = refusals.last else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                no maintenance database is left to connect to: \
                \(maintenance.candidates.map { "\"\($0)\"" }.joined(separator: " and ")) is what the command \
                works on; name another one with --maintenance-db
                """
            )
        }
        let origin = maintenance.origin.map { " (\($0))" } ?? ""
        let aboutDatabases = refusals.allSatisfy(\.failure.aboutDatabase)
        var message: String
        if refusals.count == 1 {
            message = "cannot connect to the maintenance database \"\(last.database)\"\(origin): \(last.failure.reason)"
        } else {
            let tried = refusals.map { "\"\($0.database)\" (\($0.failure.reason))" }
            message = """
                cannot connect to the maintenance database \(tried.dropLast().joined(separator: ", ")) or \
                \(tried.last!)
                """
        }
        if aboutDatabases {
            message +=
                maintenance.origin == nil
                ? "; name one the role may connect to with --maintenance-db"
                : "; name one the role may connect to"
        }
        var details: [PGCloneError.Detail] = []
        for refusal in refusals {
            for detail in refusal.error.details where !details.contains(detail) { details.append(detail) }
        }
        // No cause: the message holds all libpq said, and the error stays the last line logged.
        let configuration = aboutDatabases || refusals.contains { $0.failure.isBadOption }
        throw PGCloneError(configuration ? .invalidConfiguration : .databaseUnavailable, message, details: details)
    }
}
