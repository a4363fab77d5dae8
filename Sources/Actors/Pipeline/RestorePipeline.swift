package import Logging
import PGCloneStreams

/// What `pgclone restore` was asked to restore.
package enum RestoreSource: Sendable, Hashable {
    /// A dump key.
    case key(DumpKey)
    /// The newest dump of a database (its name as given; matched sanitised).
    case database(String)
}

/// What a restore did.
package struct RestoreOutcome: Sendable {
    package var dump: StoredDump
    package var target: String
    package var restore: RestoreRunner.Report
    package var swap: DatabaseSwap.SwapReport
}

/// `pgclone restore`: storage → zstd → pg_restore into `D__temp`, then the swap (DESIGN.md's
/// restore-and-swap protocol, without hooks and snapshots).
///
/// Until the swap, `D` is untouched; every failure before it drops `D__temp`. Cancellation
/// (SIGINT, SIGTERM) counts as a failure up to the swap; from the swap on the transaction decides.
package struct RestorePipeline: Sendable {
    package var storage: any StorageBackend
    package var connection: ConnectionSettings
    package var budget: MemoryBudget
    package var ignoreRestoreErrors = false
    /// Wait for another restore of the same database instead of failing.
    package var waitForLock = false
    /// Maintenance databases to try, in order, for the administrative statements.
    package var maintenanceDatabases = ["postgres", "template1"]
    package var environment: [String: String] = [:]
    package var logger: Logger

    package init(storage: any StorageBackend, connection: ConnectionSettings, budget: MemoryBudget, logger: Logger) {
        self.storage = storage
        self.connection = connection
        self.budget = budget
        self.logger = logger
    }

    package func run(_ source: RestoreSource) async throws -> RestoreOutcome {
        let dump = try await find(source)
        guard let target = await PostgresConnection.resolveDatabaseName(connection) else {
            throw PGCloneError(.invalidConfiguration, "cannot tell which database to restore into; pass --database")
        }
        let names = try DatabaseNames(target: target)
        logger.debug(
            "restoring into \"\(target)\"",
            metadata: [
                "connection": "\(connection.redactedDescription)",
                "budget": "\(budget.restoreTerms.map { "\($0.component)=\($0.bytes)" }.joined(separator: ","))",
            ]
        )
        let admin = try await connectMaintenance()
        let swap = DatabaseSwap(admin: admin, names: names)
        do {
            try await swap.acquireLock(wait: waitForLock)
        } catch {
            await admin.close()
            throw PGCloneError.from(error)
        }
        do {
            let outcome = try await restoreLocked(dump, swap: swap)
            await swap.releaseLock()
            await admin.close()
            return outcome
        } catch {
            await swap.releaseLock()
            await admin.close()
            throw error
        }
    }

    private func find(_ source: RestoreSource) async throws -> StoredDump {
        switch source {
        case .key(let key):
            guard let dump = try await storage.find(key) else {
                throw PGCloneError(.objectNotFound, "no dump \(key) in \(storage.location); `pgclone ls` lists them")
            }
            return dump
        case .database(let name):
            let sanitized = DumpKey.sanitize(name)
            guard let newest = try await storage.list(database: sanitized).first else {
                throw PGCloneError(
                    .objectNotFound,
                    "no dumps of database \"\(name)\" in \(storage.location); `pgclone ls --only-db-names` lists the databases"
                )
            }
            return newest
        }
    }

    private func connectMaintenance() async throws -> PostgresConnection {
        var lastError: (any Error)?
        for database in maintenanceDatabases {
            do {
                return try await PostgresConnection.connect(connection.replacingDatabase(database))
            } catch let error as LibPQError where error.isInvalidCatalogName {
                lastError = error
            } catch {
                lastError = error
                break
            }
        }
        throw PGCloneError(
            .databaseUnavailable,
            "cannot connect to the maintenance database: \(lastError.map { "\($0)" } ?? "no database to try")"
        )
    }

    private func restoreLocked(_ dump: StoredDump, swap: DatabaseSwap) async throws -> RestoreOutcome {
        let names = swap.names
        let tools = PostgresTools.locate(serverVersion: await swap.admin.serverVersion, environment: environment)
        let prepared: (RestoreRunner.Report, [DatabaseSetting])
        do {
            try await swap.dropLeftovers()
            try await swap.createTemporary()
        } catch {
            throw PGCloneError.from(error, target: names.target)
        }
        do {
            prepared = try await restoreIntoTemporary(dump, swap: swap, tools: tools)
            let skipped = try await swap.apply(prepared.1)
            for setting in skipped {
                logger.warning(
                    "skipped setting \(setting.name) of role \"\(setting.role ?? "")\": the role does not exist here"
                )
            }
            try Task.checkCancellation()
        } catch {
            try? await swap.dropTemporary()
            throw PGCloneError.from(error, dump: dump.key, target: names.target)
        }
        // From here on the swap transaction decides; cancellation no longer applies.
        let report: DatabaseSwap.SwapReport
        do {
            report = try await swap.swap()
        } catch {
            try? await swap.dropTemporary()
            throw PGCloneError.from(error, target: names.target)
        }
        if report.replacedExisting {
            logger.info(
                "swapped the restored database into \"\(names.target)\"; it refused connections for \(report.unavailable.formattedSeconds) (\(report.terminatedSessions) sessions terminated)"
            )
        } else {
            logger.info("created \"\(names.target)\" from the restored database")
        }
        do {
            try await swap.dropSwapped()
        } catch {
            logger.warning("the restore succeeded, but dropping the old database failed: \(PGCloneError.from(error))")
        }
        return RestoreOutcome(dump: dump, target: names.target, restore: prepared.0, swap: report)
    }

    /// Streams the dump into `D__temp`; returns pg_restore's report and the settings to apply.
    private func restoreIntoTemporary(
        _ dump: StoredDump,
        swap: DatabaseSwap,
        tools: PostgresTools
    ) async throws -> (RestoreRunner.Report, [DatabaseSetting]) {
        let names = swap.names
        logger.info("restoring \(dump.key) (\(ByteCount(bytes: dump.size))) from \(storage.location) into \"\(names.temporary)\"")
        let (stored, storedSource) = ByteStream.makeStream(backpressureStrategy: .capacity(budget.streamCapacity))
        let (archive, archiveSource) = ByteStream.makeStream(backpressureStrategy: .capacity(budget.streamCapacity))
        let decoder = DumpDecoder(settings: budget.decompression)
        let runner = RestoreRunner(tools: tools, connection: connection.replacingDatabase(names.temporary))
        let storage = self.storage
        let ignoreErrors = ignoreRestoreErrors
        let clock = ContinuousClock()
        let start = clock.now
        let (_, decoded, report): (Int, DecodedDump, RestoreRunner.Report)
        do {
            (_, decoded, report) = try await runStages(
                source: { try await storage.read(dump.key, into: storedSource) },
                transform: { try await decoder.decode(stored, into: archiveSource) },
                sink: { try await runner.restore(from: archive, ignoreErrors: ignoreErrors) }
            )
        } catch let failure as RestoreFailure {
            logErrors(failure.report)
            if failure.acceptable {
                logger.notice("--ignore-restore-errors would accept these errors and swap the database in")
            }
            throw failure
        }
        logErrors(report)
        logger.info(
            "restored a \(ByteCount(bytes: decoded.archiveBytes)) archive in \((clock.now - start).formattedSeconds)"
        )
        if let metadata = decoded.metadata {
            return (report, metadata.settings)
        }
        // A dump without pgclone's metadata (plain pg_dump -Fc): keep the target's own settings,
        // as django-pgclone does.
        return (report, try await swap.admin.databaseSettings(of: names.target))
    }

    private func logErrors(_ report: RestoreRunner.Report) {
        for entry in report.errors {
            logger.warning("pg_restore: \(entry.message)")
            if let statement = entry.statement { logger.warning("  statement: \(statement)") }
        }
        if report.errorCount > report.errors.count {
            logger.warning("… and \(report.errorCount - report.errors.count) more pg_restore errors")
        }
    }
}
