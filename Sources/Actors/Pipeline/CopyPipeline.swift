package import Logging
import PGCloneStreams

/// `pgclone copy :NAME`: a snapshot of the database as a new database on the same server
/// (`CREATE DATABASE NAME TEMPLATE D`), after the checks that its sessions can be ended.
package struct CopyPipeline: Sendable {
    package var connection: ConnectionSettings
    /// `statement_timeout` and the like for pgclone's own SQL.
    package var sessionSettings: [(name: String, value: String)] = []
    /// Where the administrative statements run.
    package var maintenance = MaintenanceDatabase.standard
    package var logger: Logger

    package init(connection: ConnectionSettings, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Copies the connection's database as `snapshot`; returns the source's name.
    /// - Throws: `.invalidConfiguration` for a name pgclone must not create or one that exists,
    ///   `.insufficientPrivilege` when the role cannot copy it; nothing is changed then.
    package func run(snapshot: String) async throws -> String {
        let source = try await PostgresConnection.databaseName(connection)
        try DatabaseNames.checkName(snapshot, as: "copy to")
        try maintenance.checkNotAmong([(source, "the database being copied"), (snapshot, "the name of the copy")])
        let admin = try await PostgresConnection.connectMaintenance(
            connection,
            maintenance,
            avoiding: [source],
            logger: logger
        )
        do {
            try await admin.apply(sessionSettings)
            if let names = try? DatabaseNames(target: source) {
                try await Self.repair(names, admin: admin, logger: logger)
            }
            let administration = DatabaseAdmin(connection: admin, logger: logger)
            try await SwapPreflight(admin: admin).checkCopy(from: source)
            if let existing = try await DatabaseProperties.read(snapshot, on: admin) {
                // What a copy killed before it was marked leaves is redone; anything else stays.
                guard DatabaseMarker.isHalfMade(existing) else {
                    throw PGCloneError(
                        .invalidConfiguration,
                        "a database named \"\(snapshot)\" already exists; choose another name, or drop it first"
                    )
                }
                logger.warning("dropping \"\(snapshot)\", which a copy that was killed left half made")
                try await administration.drop(snapshot)
            }
            logger.info("copying \"\(source)\" as \"\(snapshot)\"")
            // No more open than the source: a copy must not show its data to more roles.
            let marker = DatabaseMarker.copy(of: source, started: RestorePipeline.timestamp())
            // The source's owner's, as the source is, where the role may make it so.
            var owner: String?
            if let sourceOwner = try await DatabaseProperties.read(source, on: admin)?.owner {
                owner = try await administration.usableOwner(sourceOwner)
            }
            let copied = try await administration.copy(
                source,
                to: snapshot,
                marker: marker,
                model: source,
                owner: owner,
                exact: owner != nil
            )
            logger.warnSkipped(copied.skipped)
            let ended = counted(copied.endedSessions, "session")
            logger.info("copied \"\(source)\" as \"\(snapshot)\" (\(ended) of \"\(source)\" terminated)")
        } catch {
            await admin.close()
            throw PGCloneError.from(error, step: "copying \"\(source)\" as \"\(snapshot)\"")
        }
        await admin.close()
        return source
    }

    /// Lets `names.target` accept connections again if a swap cut short by a server crash left it
    /// refusing them, unless a restore of it is running (it holds the lock).
    package static func repair(_ names: DatabaseNames, admin: PostgresConnection, logger: Logger) async throws {
        let swap = DatabaseSwap(
            admin: DatabaseAdmin(connection: admin, logger: logger),
            names: names,
            started: RestorePipeline.timestamp()
        )
        guard try await swap.tryLock() else { return }
        let repaired: Bool
        do {
            repaired = try await swap.repairInterruptedSwap()
        } catch {
            await swap.releaseLock()
            throw error
        }
        await swap.releaseLock()
        if repaired {
            logger.warning(
                """
                \"\(names.target)\" refused connections, left so by a pgclone swap that was cut short (a server \
                restart or crash); it accepts them again
                """
            )
        }
    }
}
