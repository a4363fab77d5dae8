import Glibc
package import Logging
package import PGCloneMetrics
import PGCloneStreams
import Synchronization

/// What `pgclone restore` was asked to restore.
package enum RestoreSource: Sendable, Hashable {
    /// A dump key.
    case key(DumpKey)
    /// The newest dump of a database, of any tool's layout (see ``DumpCatalog``); made with
    /// `RestorePipeline.dumpConfig`, if given.
    case database(String)
    /// A database on the server (`:name`); `:previous` and `:current` name the target's snapshots.
    case local(String)
}

extension RestoreSource {
    /// `:NAME`, a dump key of any layout ``DumpKey`` reads, or else a database name (which may
    /// hold a `/`): text ending in `.dump` that is no key is a mistyped key.
    package static func parse(_ text: String) throws(PGCloneError) -> RestoreSource {
        if text.hasPrefix(":") {
            let name = String(text.dropFirst())
            guard !name.isEmpty else {
                throw PGCloneError(.invalidConfiguration, "\":\" names no database; write :previous, :current or :NAME")
            }
            return .local(name)
        }
        if let key = DumpKey(parsing: text) { return .key(key) }
        if text.contains("/") && text.hasSuffix(".dump") {
            throw PGCloneError(
                .invalidConfiguration,
                """
                \"\(text)\" is not a dump key; keys look like mydb/20261126T075200.123456Z.default.dump, or \
                django-pgclone's (see `pgclone ls`)
                """
            )
        }
        guard !text.isEmpty else {
            throw PGCloneError(.invalidConfiguration, "give a dump key, a database name or :NAME")
        }
        return .database(text)
    }
}

/// What a restore did.
package struct RestoreOutcome: Sendable {
    /// The dump restored; `nil` for a local database.
    package var dump: StoredDump?
    /// The local database restored, for `:name`.
    package var localSource: String?
    package var target: String
    package var restore: RestoreRunner.Report?
    package var swap: DatabaseSwap.SwapReport
    /// The names of `D`'s settings for the whole database that the source has not, which the
    /// restored database therefore has not either.
    package var settingsNotKept: [String] = []
}

/// `pgclone restore`: DESIGN.md's restore-and-swap protocol. `D__temp` is made from the dump
/// (storage → zstd → pg_restore) or from a local database (`CREATE DATABASE … TEMPLATE`), gets the
/// source's database-level settings, is snapshotted as `D__current` (`--reversible`), goes through
/// the pre-swap hooks, and is swapped in for `D` in one transaction.
///
/// Until the swap, `D` is untouched; every failure before it drops `D__temp`. Cancellation
/// (SIGINT, SIGTERM) counts as a failure up to the swap's COMMIT; once it has committed, the restore
/// has succeeded. Everything the swap needs is checked before the first byte is restored.
package struct RestorePipeline: Sendable {
    package var storage: any StorageBackend
    package var connection: ConnectionSettings
    package var budget: MemoryBudget
    package var ignoreRestoreErrors = false
    /// `--jobs N`: spool the archive to a file in TMPDIR and run `pg_restore -j N` on it; `nil`
    /// streams into pg_restore's stdin (the default).
    package var jobs: Int?
    /// How long to wait for another restore of the same database; `nil` fails at once.
    package var waitForLock: Duration?
    /// Hooks, `reversible`, and the dump config whose dumps a restore by name picks.
    package var restoreConfig = RestoreConfig()
    /// `statement_timeout` and the like for pgclone's own SQL.
    package var sessionSettings: [(name: String, value: String)] = []
    /// Where the administrative statements run.
    package var maintenance = MaintenanceDatabase.standard
    package var environment: [String: String] = [:]
    /// Called once the swap has committed: from then on the restore has succeeded, and an
    /// interrupt no longer undoes it.
    package var onSwapCommitted: (@Sendable () -> Void)?
    package var metrics: PGCloneMetrics
    package var logger: Logger

    package init(
        storage: any StorageBackend,
        connection: ConnectionSettings,
        budget: MemoryBudget,
        metrics: PGCloneMetrics,
        logger: Logger
    ) {
        self.storage = storage
        self.connection = connection
        self.budget = budget
        self.metrics = metrics
        self.logger = logger
    }

    package func run(_ source: RestoreSource) async throws -> RestoreOutcome {
        // As pg_restore restores into no database unless -d names one: libpq's default (the
        // user's name) is never a target.
        guard connection.namesDatabase(environment: environment) else {
            throw PGCloneError(
                .invalidConfiguration,
                "no database to restore into is named; pass --database (or set DATABASE_URL or PGDATABASE)"
            )
        }
        let target = try await PostgresConnection.databaseName(connection)
        let names = try DatabaseNames(target: target)
        let dump: StoredDump?
        if case .local = source {
            dump = nil
        } else {
            dump = try await DumpCatalog(storage: storage, logger: logger).dump(
                for: source,
                config: restoreConfig.dumpConfig
            )
        }
        var localSource: String?
        if case .local(let name) = source {
            localSource = name == "previous" ? names.previous : name == "current" ? names.current : name
            guard localSource != target else {
                throw PGCloneError(
                    .invalidConfiguration,
                    "\":\(name)\" is the database being restored into; name another one"
                )
            }
        }
        logger.debug(
            "restoring into \"\(target)\"",
            metadata: [
                "connection": "\(connection.redactedDescription)",
                "budget": "\(budget.restoreTerms.map { "\($0.component)=\($0.bytes)" }.joined(separator: ","))",
            ]
        )
        let unchanged = PGCloneError.TargetState.unchanged(target)
        try maintenance.checkNotAmong(
            [(target, "the database being restored into")]
                + names.derived.map {
                    ($0, "one of the databases a restore into \"\(target)\" creates, renames or drops")
                }
        )
        let admin = try await PostgresConnection.connectMaintenance(
            connection,
            maintenance,
            avoiding: [names.target],
            logger: logger
        )
        let swap = DatabaseSwap(
            admin: DatabaseAdmin(connection: admin, logger: logger),
            names: names,
            started: Self.timestamp()
        )
        do {
            try await admin.apply(sessionSettings)
            try await SwapPreflight(admin: admin).checkReplaceable(
                target,
                maintenanceDatabases: maintenance.protected,
                purpose: "restore into"
            )
            try await metrics.phase(.lockWait) { try await swap.acquireLock(wait: waitForLock) }
        } catch {
            await admin.close()
            throw PGCloneError.from(error, step: "locking \"\(target)\"", target: unchanged)
        }
        do {
            var expectedDatabase: String?
            if case .database(let name) = source { expectedDatabase = name }
            let outcome = try await restoreLocked(
                dump: dump,
                expectedDatabase: expectedDatabase,
                localSource: localSource,
                swap: swap
            )
            await swap.releaseLock()
            await admin.close()
            return outcome
        } catch {
            await swap.releaseLock()
            await admin.close()
            throw error
        }
    }

    /// Now, UTC, as the comments on pgclone's databases give it.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S UTC", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// - Parameter expectedDatabase: the database name a restore by name asked for: the dump must be
    ///   of that database (names that differ can share a key, and a dump can be copied under
    ///   another's).
    private func restoreLocked(
        dump: StoredDump?,
        expectedDatabase: String?,
        localSource: String?,
        swap: DatabaseSwap
    ) async throws -> RestoreOutcome {
        let names = swap.names
        let unchanged = PGCloneError.TargetState.unchanged(names.target)
        let fromOwnSnapshot = localSource == names.previous || localSource == names.current
        let takesSnapshot = restoreConfig.reversible && !fromOwnSnapshot
        let old: DatabaseProperties?
        do {
            if try await swap.repairInterruptedSwap() {
                logger.warning(
                    """
                    \"\(names.target)\" refused connections, left so by a pgclone swap that was cut short (a \
                    server restart or crash); it accepts them again
                    """
                )
            }
            try await SwapPreflight(admin: swap.admin.connection).checkRestore(
                names: names,
                reversible: restoreConfig.reversible,
                localSource: localSource,
                restoringRole: localSource == nil ? restoreConfig.role : nil
            )
            try await metrics.phase(.prepare) { try await swap.dropLeftovers() }
            old = try await DatabaseProperties.read(names.target, on: swap.admin.connection)
        } catch {
            throw PGCloneError.from(error, step: "preparing the restore into \"\(names.target)\"", target: unchanged)
        }
        let report: RestoreRunner.Report?
        // What a first restore gives the new D: the source's owner, privileges, limit, comment.
        let sourceAccess: DatabaseAccess?
        // D's settings that the restored database does not have, said once it is D.
        let droppedSettings: [DatabaseSetting]
        let step = StepName("creating \"\(names.temporary)\"")
        do {
            // Everything up to the swap connects to D__temp by name: stopped as soon as the
            // session holding the lock is lost, before another restore can have made its own.
            (report, sourceAccess, droppedSettings) = try await swap.watchingLock { [self] in
                var report: RestoreRunner.Report?
                var sourceAccess: DatabaseAccess?
                let settings: DatabaseSwap.SettingsPlan
                if let localSource {
                    logger.info("copying database \"\(localSource)\" as \"\(names.temporary)\"")
                    sourceAccess = try await DatabaseProperties.read(localSource, on: swap.admin.connection)?.access
                    step.value = "copying \"\(localSource)\" as \"\(names.temporary)\""
                    let owner = try await swap.temporaryOwner(source: sourceAccess, restoringAs: restoreConfig.role)
                    let skipped = try await metrics.phase(.restore) {
                        try await swap.copyAsTemporary(localSource, owner: owner)
                    }
                    // The copy has the source's settings, as far as the role may set them; those D has
                    // too, and D's own for particular roles, are required (set again, or the restore
                    // fails before the swap).
                    let source = try await swap.admin.connection.databaseSettings(of: localSource)
                    let planned = try await swap.settingsToApply(source: source)
                    settings = (planned.required, [], planned.dropped)
                    try await swap.checkSettings([], dropping: planned.dropped)
                    logger.warnSkipped(
                        skipped.filter { skipped in
                            !settings.required.contains { $0.role == skipped.0.role && $0.name == skipped.0.name }
                        }
                    )
                } else if let dump {
                    let tools = try await PostgresInstallations.discover(environment: environment)
                    metrics.currentJob?.setObjectBytes(dump.size)
                    metrics.setSourceObjectBytes(dump.size)
                    step.value = "restoring into \"\(names.temporary)\""
                    let metadata: DumpMetadata?
                    (report, settings, metadata) = try await metrics.phase(.restore) {
                        try await restoreIntoTemporary(
                            dump,
                            expectedDatabase: expectedDatabase,
                            swap: swap,
                            tools: tools
                        )
                    }
                    sourceAccess = metadata?.access
                    metrics.currentJob?.setRestoreErrors(report?.errorCount ?? 0)
                    if let report {
                        let connecting = try await swap.admin.connection.currentUser()
                        let restoringRole = restoreConfig.role ?? connecting
                        warnUnrevoked(report, restoringRole: restoringRole, target: names.target)
                    }
                    if let metadata, metadata.privileges == true, !restoreConfig.noACL {
                        try await warnWherePublicKeepsMore(
                            than: metadata.publicPrivileges,
                            in: names.temporary,
                            target: names.target,
                            admin: swap.admin.connection
                        )
                    }
                } else {
                    preconditionFailure("a restore has a dump or a local source")
                }
                step.value = "applying the database settings to \"\(names.temporary)\""
                let skipped = try await metrics.phase(.settings) {
                    // The target's own are carried over or the restore fails: losing one (a role kept
                    // read-only) would make the database more open than it was.
                    _ = try await swap.applyToTemporary(settings.required, required: true)
                    return try await swap.applyToTemporary(settings.optional, required: false)
                }
                logger.warnSkipped(skipped)
                // Restoring one of D's own snapshots is an undo (:previous) or a redo (:current): the
                // state right after the last restore stays D__current.
                if takesSnapshot {
                    logger.info(
                        """
                        snapshotting the restored database as \"\(names.snapshot)\" (\"\(names.current)\" after \
                        the swap)
                        """
                    )
                    step.value = "snapshotting \"\(names.temporary)\" as \"\(names.snapshot)\""
                    try await metrics.phase(.snapshot) { try await swap.snapshotCurrent() }
                }
                if !restoreConfig.preSwapHooks.isEmpty {
                    step.value = "running the pre-swap hooks"
                    // They connect to D__temp by name.
                    try await swap.confirmTemporary()
                    let environment = HookEnvironment.make(
                        resolved: await swap.admin.connection.resolvedOptions,
                        endpoint: await swap.admin.connection.endpoint,
                        database: names.temporary
                    )
                    let hooks = HookRunner(metrics: metrics, logger: logger)
                    try await metrics.phase(.preSwapHooks) {
                        try await hooks.run(restoreConfig.preSwapHooks, phase: .preSwap, environment: environment)
                    }
                }
                try Task.checkCancellation()
                // The hooks ran for as long as they did, unchecked.
                step.value = "swapping \"\(names.temporary)\" into \"\(names.target)\""
                try await swap.confirmTemporary()
                return (report, sourceAccess, settings.dropped)
            }
        } catch {
            let state = await cleanUp(after: error, swap: swap, old: old)
            throw PGCloneError.from(error, step: step.value, dump: dump?.key, target: state)
        }
        let swapReport: DatabaseSwap.SwapReport
        do {
            swapReport = try await metrics.phase(.swap) {
                try await swap.swap(
                    keepingPrevious: restoreConfig.reversible,
                    newSnapshot: takesSnapshot,
                    guardSettings: connection.replacingDatabase(await swap.admin.connection.databaseName),
                    lockTimeout: sessionSettings.first { $0.name == "lock_timeout" }?.value ?? "10s",
                    sourceAccess: sourceAccess
                )
            }
        } catch {
            let state = await cleanUp(after: error, swap: swap, old: old)
            guard case .replaced = state else {
                throw PGCloneError.from(
                    error,
                    step: "swapping \"\(names.temporary)\" into \"\(names.target)\"",
                    target: state
                )
            }
            // The COMMIT went through but its answer was lost with the connection: the restore
            // is done; what it displaced is dropped by the next run.
            logger.warning("the swap committed, but the connection was lost before pgclone heard so: \(error)")
            onSwapCommitted?()
            return RestoreOutcome(
                dump: dump,
                localSource: localSource,
                target: names.target,
                restore: report,
                swap: DatabaseSwap.SwapReport(
                    unavailable: .zero,
                    terminatedSessions: 0,
                    replacedExisting: true,
                    displaced: []
                )
            )
        }
        // From here on the restore has succeeded, whatever happens.
        onSwapCommitted?()
        metrics.currentJob?.setSwap(
            unavailable: swapReport.unavailable,
            terminatedSessions: swapReport.terminatedSessions
        )
        if swapReport.replacedExisting {
            logger.info(
                """
                swapped the restored database into \"\(names.target)\"; it refused connections for \
                \(swapReport.unavailable.formattedSeconds) \
                (\(counted(swapReport.terminatedSessions, "session")) terminated)
                """
            )
            logger.warnDropped(
                droppedSettings,
                of: names.target,
                source: localSource.map { "\"\($0)\"" } ?? "the dump's database"
            )
        } else {
            logger.info("created \"\(names.target)\" from the restored database")
            if !swapReport.accessLeftOut.isEmpty {
                logger.warning(
                    """
                    \"\(names.target)\" has the source's owner and database privileges but for: \
                    \(swapReport.accessLeftOut.joined(separator: "; "))
                    """
                )
            }
        }
        do {
            try await metrics.phase(.cleanup) {
                try await swap.dropDisplaced(swapReport.displaced, keepingSnapshots: restoreConfig.reversible)
            }
        } catch {
            let failure = PGCloneError.from(error)
            // A refusal says itself what would drop it; anything else the next restore retries.
            let next = failure.code == .insufficientPrivilege ? "" : " (the next restore drops it)"
            logger.warning("the restore succeeded, but dropping what it replaced failed\(next): \(failure)")
        }
        logPhases()
        return RestoreOutcome(
            dump: dump,
            localSource: localSource,
            target: names.target,
            restore: report,
            swap: swapReport,
            settingsNotKept: swapReport.replacedExisting ? droppedSettings.map(\.name) : []
        )
    }

    /// The run's time by phase, each counted for itself (a phase inside another is not counted in
    /// it), in the protocol's order: where a restore's time went.
    private func logPhases() {
        guard let phases = metrics.currentJob?.phaseDurations, !phases.isEmpty else { return }
        let parts = Phase.allCases.compactMap { phase in
            phases[phase].map { "\(phase.rawValue) \(Duration.milliseconds(Int64($0 * 1000)).formattedSeconds)" }
        }
        logger.info("time by phase: \(parts.joined(separator: ", "))")
    }

    /// After a failure before or in the swap: drops `D__temp` and `D__snap` and finds what state
    /// `D` is in, on the admin connection or, if the failure took it (it no longer answers), on a
    /// new one (the lock went with the old session: a new connection cleans up only if it gets the
    /// lock back).
    private func cleanUp(
        after error: any Error,
        swap: DatabaseSwap,
        old: DatabaseProperties?
    ) async -> PGCloneError.TargetState {
        var swap = swap
        var reconnected: PostgresConnection?
        var usable = await swap.admin.connection.isUsable
        // Whatever failed (a COPY session, pg_restore, this session), the admin session still
        // holds the lock if it still answers; a server that restarted ended it too, which libpq
        // sees only when it is used.
        if usable {
            usable = (try? await swap.admin.connection.execute("SELECT 1")) != nil
        }
        if !usable {
            do {
                let admin = try await reconnect(avoiding: swap.names.target)
                reconnected = admin
                swap = DatabaseSwap(
                    admin: DatabaseAdmin(connection: admin, logger: logger),
                    names: swap.names,
                    started: swap.started,
                    temporaryOID: await swap.temporaryOID
                )
                guard try await swap.tryLock() else {
                    logger.warning(
                        """
                        the connection to PostgreSQL was lost, and another pgclone restore of \
                        \"\(swap.names.target)\" has begun since; it drops what this one left
                        """
                    )
                    let state = await swap.targetState(old: old)
                    await admin.close()
                    return state
                }
            } catch {
                return .unknown(
                    swap.names.target,
                    advice: """
                        the connection to PostgreSQL was lost and pgclone could not reconnect (\(error)); the next \
                        restore drops what this one left
                        """
                )
            }
        }
        var state = await swap.targetState(old: old)
        if case .refusingConnections = state, (try? await swap.repairInterruptedSwap()) == true {
            // The server restarted in the middle of the swap, which ended the guard's session too.
            logger.warning(
                "\"\(swap.names.target)\" was left refusing connections by the swap that failed; it accepts them again"
            )
            state = await swap.targetState(old: old)
        }
        if case .replaced = state {
        } else {
            do {
                try await swap.dropTemporary()
            } catch {
                logger.warning(
                    """
                    could not drop \"\(swap.names.temporary)\" (the next restore drops it): \
                    \(PGCloneError.from(error))
                    """
                )
            }
        }
        if let reconnected {
            await swap.releaseLock()
            await reconnected.close()
        }
        return state
    }

    /// A new admin connection after the old one was lost, tried for up to 30 s: a server that
    /// restarted refuses connections while it recovers. Not cut short by an interrupt, which is
    /// what the clean-up it serves follows.
    private func reconnect(avoiding target: String) async throws -> PostgresConnection {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var delay = Duration.milliseconds(250)
        while true {
            do {
                let admin = try await PostgresConnection.connectMaintenance(
                    connection,
                    maintenance,
                    avoiding: [target],
                    logger: logger
                )
                try await admin.apply(sessionSettings)
                return admin
            } catch {
                guard clock.now + delay < deadline else { throw error }
                logger.debug("reconnecting to clean up: \(error)")
                let pause = delay
                try? await withoutCancellation { try await Task.sleep(for: pause) }
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Connects to `database` as pg_restore is about to: pg_restore's own message of a refused
    /// connection does not say to which database (a password-file line for `D__temp` alone), and
    /// it would come only once the download has begun.
    private func checkConnects(toRestoreInto database: String) async throws {
        let session: PostgresConnection
        do {
            session = try await PostgresConnection.connect(connection.replacingDatabase(database))
        } catch let error as LibPQError {
            guard let failure = error.connectionFailure else { throw error }
            // Not `.databaseUnavailable`, which would have the clean-up take the admin session
            // for lost: it is not, and drops D__temp.
            throw PGCloneError(
                .databaseError,
                "cannot connect to database \"\(failure.database)\" to restore into it: \(failure.reason)",
                details: error.details
            )
        }
        await session.close()
    }

    /// Streams the dump into `D__temp`; returns pg_restore's report and the settings to apply: the
    /// source's, and those of the target that must be kept.
    private func restoreIntoTemporary(
        _ dump: StoredDump,
        expectedDatabase: String?,
        swap: DatabaseSwap,
        tools: PostgresInstallations
    ) async throws -> (
        RestoreRunner.Report, DatabaseSwap.SettingsPlan, DumpMetadata?
    ) {
        let names = swap.names
        logger.info(
            """
            restoring \(dump.key) (\(ByteCount(bytes: dump.size))) from \(storage.location) into \
            \"\(names.temporary)\"
            """
        )
        let ((stored, storedSource), (archive, archiveSource)) = metrics.restoreStreams(capacity: budget.streamCapacity)
        metrics.setMemoryBudget(budget.restoreTerms)
        let metrics = self.metrics
        let decoder = DumpDecoder(settings: budget.decompression)
        let restoreStep = metrics.step(.restoreStdin)
        let restoreConfig = self.restoreConfig
        let connectingRole = try await swap.admin.connection.currentUser()
        let englishMessages = try await englishMessageSettings(swap.admin.connection)
        let privilegeRestore = PrivilegeRestore(
            // It may open once pg_restore has made the source's event triggers: no login trigger fires.
            connection: connection.replacingDatabase(names.temporary).addingSessionSettings(
                try await swap.admin.connection.eventTriggersOffAtLogin() + englishMessages,
                environment: environment
            ),
            role: restoreConfig.role,
            restoringRole: restoreConfig.role ?? connectingRole,
            confirmSession: { try await swap.confirmConnected($0) }
        )
        // D__temp is made once the dump has said what it is (its metadata comes before the
        // archive), with the source's encoding and locale, which cannot change once it exists.
        let metadataRead = Mutex<DumpMetadata?>(nil)
        // The settings to give D__temp after the restore: `metadata`'s, or, from a dump without
        // pgclone's metadata (plain pg_dump -Fc), the target's own, as django-pgclone keeps them.
        // Planned, and tried, once D__temp is made.
        let settingsPlanned = Mutex<DatabaseSwap.SettingsPlan?>(nil)
        let planSettings: @Sendable (DumpMetadata?) async throws -> DatabaseSwap.SettingsPlan = { metadata in
            if let metadata { return try await swap.settingsToApply(source: metadata.settings) }
            return try await swap.settingsToApply(source: swap.admin.connection.databaseSettings(of: names.target))
        }
        let logger = self.logger
        let beforeStart: @Sendable () async throws -> OwnershipOptions = { [self] in
            let metadata = metadataRead.withLock { $0 }
            if let expectedDatabase, let metadata, metadata.database != expectedDatabase {
                throw PGCloneError(
                    .objectNotFound,
                    """
                    \(dump.key) is a dump of database \"\(metadata.database)\", not \"\(expectedDatabase)\" (it \
                    changed since it was chosen); restore it by its key if that is what you want
                    """
                )
            }
            // By its key: taken as it is, but a dump copied under another database's key says so.
            if expectedDatabase == nil, let metadata {
                var said = dump
                said.database = metadata.database
                said.databaseKnown = true
                if said.contradictsKey {
                    logger.warning(
                        "\(dump.key) is named for \"\(dump.key.database)\" but is a dump of \"\(metadata.database)\""
                    )
                }
            }
            let existing = try await swap.admin.connection.databaseLocale(of: names.target)
            let locale = try await metrics.phase(.createTemporary) {
                try await swap.createTemporary(
                    locale: metadata?.locale,
                    owner: swap.temporaryOwner(source: metadata?.access, restoringAs: restoreConfig.role)
                )
            }
            if metadata?.locale != nil, let locale, let existing, locale != existing {
                logger.warning(
                    "\"\(names.target)\" was \(existing); it takes the dump's encoding and locale, \(locale)"
                )
            }
            try await checkConnects(toRestoreInto: names.temporary)
            // Before the restore: once it has made the source's event triggers, the drops would
            // fire them (a guard refusing drops, an audit log recording pgclone's).
            try await dropTemplateObjects(metadata, of: names.temporary, target: names.target)
            // What cannot be carried over fails the restore now, not after it.
            let settings = try await planSettings(metadata)
            try await swap.checkSettings(settings.required, dropping: settings.dropped)
            settingsPlanned.withLock { $0 = settings }
            let ownership = restoreConfig.ownership(of: metadata)
            if restoreConfig.noACL && metadata?.privileges == true {
                logger.warning(
                    """
                    restoring without the dump's privileges (--no-acl): every object gets PostgreSQL's default \
                    ones, which let PUBLIC execute functions and use types and the public schema where the source \
                    may not have
                    """
                )
            }
            logger.debug(
                """
                restoring \(ownership.owners ? "the dump's owners" : "no owners") and \
                \(ownership.privileges ? "its privileges" : "no privileges")\
                \(ownership.role.map { " as role \"\($0)\"" } ?? "")
                """
            )
            return ownership
        }
        let serverMajor = await swap.admin.connection.serverVersion / 10_000
        // pg_restore's and the COPY sessions' (the one restoring large objects waits idle while
        // the tables' pieces load).
        let restoreConnection = connection.replacingDatabase(names.temporary)
            .addingSessionSettings(
                Self.restoreSessionSettings + PostgresConnection.idleSessionSettings(serverMajor: serverMajor)
                    + englishMessages,
                environment: environment
            )
        let runner = RestoreRunner(
            installations: tools,
            serverMajor: serverMajor,
            connection: restoreConnection,
            privilegeRestore: privilegeRestore,
            stdinWaiting: { restoreStep.waiting($0, starving: false) },
            beforeStart: beforeStart,
            confirmTarget: { try await swap.confirmTemporary() }
        )
        let storage = self.storage
        let ignoreErrors = ignoreRestoreErrors
        let clock = ContinuousClock()
        let start = clock.now
        let source: @Sendable () async throws -> Int = {
            try await metrics.running(.download) { try await storage.read(dump.key, into: storedSource) }
        }
        let transform: @Sendable () async throws -> DecodedDump = {
            try await metrics.running(.decompress) {
                try await decoder.decode(stored, into: archiveSource) { metadata in
                    metadataRead.withLock { $0 = metadata }
                }
            }
        }
        let decoded: DecodedDump
        let report: RestoreRunner.Report
        do {
            // A dump with an index restores in pieces; one without, through a spool file.
            let opening =
                jobs == nil ? nil : try await IndexedDump.open(dump, storage: storage, settings: budget.decompression)
            if let requested = jobs, case .ready(let indexed)? = opening {
                let jobs = try await connectionsFor(jobs: requested, admin: swap.admin.connection)
                metadataRead.withLock { $0 = indexed.metadata }
                var restored = try await restoreInPieces(
                    indexed,
                    jobs: jobs,
                    runner: runner,
                    connection: restoreConnection,
                    swap: swap
                )
                // The archive's size, as the other ways report it (the pieces count table data only).
                restored.bytesWritten = indexed.index.archiveBytes
                report = restored
                decoded = DecodedDump(
                    format: .zstd,
                    metadata: indexed.metadata,
                    storedBytes: dump.size,
                    archiveBytes: indexed.index.archiveBytes
                )
            } else if let requested = jobs {
                if case .unavailable(let reason)? = opening {
                    logger.notice(
                        """
                        restoring with --jobs through a file in TMPDIR, as pg_restore -j needs: \(dump.key) \(reason)
                        """
                    )
                }
                let jobs = try await connectionsFor(jobs: requested, admin: swap.admin.connection)
                // pg_restore -j seeks in its archive: spool it to a file first (restore_stdin
                // counts the bytes written there), then restore from the file.
                let spool = try await ArchiveSpool.create(in: temporaryDirectory(environment), minimumFree: dump.size)
                for path in await spool.removedAbandoned {
                    logger.info("removed \(path), left by a restore --jobs that was killed")
                }
                do {
                    // D__temp is made, and what would fail the restore checked, once the archive's
                    // first bytes have come (the dump's metadata with them), not after the spool.
                    let started = Mutex<RestoreRunner.Start?>(nil)
                    let spooled: Int
                    (_, decoded, spooled) = try await runStages(
                        source: source,
                        transform: transform,
                        sink: {
                            try await metrics.running(.restoreStdin) {
                                try await spool.write(from: archive) { first in
                                    let start = try await runner.start(first: first)
                                    started.withLock { $0 = start }
                                    try Task.checkCancellation()
                                    logger.info("spooling the archive to \(spool.path) for pg_restore --jobs=\(jobs)")
                                }
                            }
                        }
                    )
                    var restored = try await runner.restore(
                        file: spool.path,
                        jobs: jobs,
                        ignoreErrors: ignoreErrors,
                        started: started.withLock { $0 }
                    )
                    restored.bytesWritten = spooled
                    report = restored
                } catch {
                    await spool.remove()
                    throw error
                }
                await spool.remove()
            } else {
                (_, decoded, report) = try await runStages(
                    source: source,
                    transform: transform,
                    sink: {
                        try await metrics.running(.restoreStdin) {
                            try await runner.restore(from: archive, ignoreErrors: ignoreErrors)
                        }
                    }
                )
            }
        } catch let failure as RestoreFailure {
            metrics.currentJob?.setRestoreErrors(failure.report.errorCount)
            if !failure.sessionLost { logErrors(failure.report) }
            if failure.acceptable {
                logger.notice("--ignore-restore-errors would accept these errors and swap the database in")
            }
            throw failure
        }
        logErrors(report)
        logger.info(
            "restored a \(ByteCount(bytes: decoded.archiveBytes)) archive in \((clock.now - start).formattedSeconds)"
        )
        // Planned when D__temp was made, which every restore that gets here did.
        if let planned = settingsPlanned.withLock({ $0 }) { return (report, planned, decoded.metadata) }
        return (report, try await planSettings(decoded.metadata), decoded.metadata)
    }

    /// `restore --jobs` of an indexed dump: its pieces loaded by `jobs` sessions to `connection`
    /// (``RestoreRunner/restore(pieces:loader:jobs:ignoreErrors:metrics:)``).
    private func restoreInPieces(
        _ indexed: IndexedDump,
        jobs: Int,
        runner: RestoreRunner,
        connection: ConnectionSettings,
        swap: DatabaseSwap
    ) async throws -> RestoreRunner.Report {
        // No more COPY sessions than pieces (the indexes are still built `jobs` at a time).
        let sessions = max(1, min(jobs, indexed.plan.pieces.count))
        logger.info(
            """
            restoring in \(counted(indexed.plan.pieces.count, "piece")) of \
            \(counted(indexed.plan.tables.count, "table")) with \(counted(sessions, "session")) (--jobs=\(jobs)), \
            reading them from \(storage.location) as they load
            """
        )
        let inOrder = indexed.plan.tablesInOrder.compactMap { indexed.plan.tables[$0]?.name }.sorted()
        if sessions > 1, !inOrder.isEmpty {
            // Several sessions loading one table interleave its pages.
            let names = inOrder.prefix(5).joined(separator: ", ") + (inOrder.count > 5 ? ", …" : "")
            logger.info(
                """
                loading \(names) in one session each, the rows in their dumped order (a BRIN index or CLUSTER ON \
                wants it)
                """
            )
        }
        metrics.setMemoryBudget([
            ("restore_pieces", PieceLoader.memory(sessions: sessions, pieceSize: indexed.index.pieceSize))
        ])
        let loader = PieceLoader(
            storage: storage,
            dump: indexed,
            connection: connection,
            role: restoreConfig.role,
            ignoreErrors: ignoreRestoreErrors,
            decompression: budget.decompression,
            metrics: metrics,
            confirmSession: { try await swap.confirmConnected($0) }
        )
        let report = try await runner.restore(
            pieces: indexed,
            loader: loader,
            jobs: jobs,
            ignoreErrors: ignoreRestoreErrors,
            metrics: metrics
        )
        if let pieces = report.pieces {
            logger.debug(
                """
                pieces: \(pieces.pieces) loaded by \(counted(sessions, "session")), \
                \(ByteCount(bytes: pieces.archiveBytes)); they \
                took \(pieces.piecesTime.formattedSeconds) together, \(pieces.longestPiece.formattedSeconds) the \
                longest
                """
            )
        }
        return report
    }

    /// pg_restore's sessions commit without waiting for their WAL to reach disk: `D__temp` is
    /// thrown away if anything fails, and the swap's own commit, which waits, flushes the WAL up to
    /// it — everything restored before it included — before `D` is replaced. A crash before then
    /// loses only `D__temp`, which the next restore drops.
    static let restoreSessionSettings = [(name: "synchronous_commit", value: "off")]

    /// `lc_messages = C` for the restore's sessions (pg_restore's, the COPY sessions', the
    /// privileges' replay) and pgclone's own, whose messages pgclone reads in English, if the role
    /// may set it (a superuser, or one granted SET on it); else, where the server writes another
    /// language, a warning saying what goes unrecognised and who can change it.
    private func englishMessageSettings(_ admin: PostgresConnection) async throws -> [(name: String, value: String)] {
        let (lcMessages, role, maySet) = try await admin.messageLanguage()
        if maySet {
            // pgclone's own session too (a refusal it reads: a setting D's role may not carry over).
            try await admin.query("SELECT pg_catalog.set_config('lc_messages', 'C', false)")
            return [("lc_messages", "C")]
        }
        if let lcMessages, !PostgresConnection.writesEnglish(lcMessages) {
            let grant = await admin.serverVersion >= 150_000 ? " (or GRANT SET ON PARAMETER lc_messages TO it)" : ""
            logger.warning(
                """
                PostgreSQL writes its messages to "\(role)" in \(lcMessages) (lc_messages), and pgclone reads \
                pg_restore's in English only: errors it knows to be harmless fail the restore, roles this server \
                lacks are taken for errors, and a REVOKE of the dump without effect goes unsaid; a superuser can \
                run ALTER ROLE \(quoteIdentifier(role)) SET lc_messages = 'C'\(grant)
                """
            )
        }
        return []
    }

    /// `requested` jobs, or fewer if PostgreSQL would not let this role open that many more
    /// connections (pg_restore opens one per job and one of its own; pgclone keeps room for its
    /// swap guard): the server's `max_connections` less its reserved ones and those in use, and
    /// the role's connection limit.
    private func connectionsFor(jobs requested: Int, admin: PostgresConnection) async throws -> Int {
        let row =
            try await admin.query(
                """
                SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
                       - CASE WHEN r.rolsuper THEN 0 ELSE coalesce(current_setting('reserved_connections', true)::int, \
                       0) END
                       - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
                       CASE WHEN r.rolconnlimit < 0 OR r.rolsuper THEN NULL
                            ELSE r.rolconnlimit - (SELECT count(*) FROM pg_stat_activity WHERE usesysid = r.oid)::int \
                            END
                FROM pg_roles AS r WHERE r.rolname = current_user
                """
            ).first ?? []
        let free =
            [row.first ?? nil, row.count > 1 ? row[1] : nil].compactMap { $0.flatMap { Int($0) } }.min() ?? requested
            + 2
        // Half of what is free at most: the application needs connections too.
        let allowed = max(1, min(free - 2, free / 2))
        guard requested > allowed else { return requested }
        logger.warning(
            """
            --jobs \(requested) is more than PostgreSQL lets this role open (\(max(free, 0)) more connections \
            now); restoring with --jobs=\(allowed)
            """
        )
        return allowed
    }

    private func logErrors(_ report: RestoreRunner.Report) {
        if report.serialForOwners, report.pieces != nil {
            logger.warning(
                """
                built indexes and constraints with one pg_restore session, not --jobs: the dump names owners this \
                server lacks or the restoring role may not assign (the next warning counts them), and pg_restore's \
                parallel workers report those refusals in a way pgclone cannot read reliably; --no-owner, or \
                creating the roles or memberships, builds them in parallel
                """
            )
        } else if report.serialForOwners {
            logger.warning(
                """
                restored with one pg_restore session, not --jobs: the dump names owners this server lacks or the \
                restoring role may not assign (the next warning counts them), and pg_restore's parallel workers \
                report those refusals in a way pgclone cannot read reliably; --no-owner, or creating the roles or \
                memberships, restores in parallel
                """
            )
        }
        if let summary = report.privileges?.summary {
            logger.warning("\(summary)")
        }
        if !report.harmless.isEmpty {
            let reasons = report.harmless.keys.sorted()
            let count = report.harmless.values.reduce(0, +)
            logger.warning(
                """
                \(report.pgRestore.isEmpty ? "pg_restore" : report.pgRestore) reported \
                \(counted(count, "error")) known to be harmless: \(reasons.joined(separator: "; "))
                """
            )
        }
        for entry in report.errors {
            logger.warning("\(entry.program ?? "pg_restore"): \(entry.message)")
            for detail in entry.details { logger.warning("  \(detail.label): \(detail.text)") }
        }
        if report.errorCount > report.errors.count {
            logger.warning("… and \(report.errorCount - report.errors.count) more errors")
        }
    }
}

/// What a restore is doing, for its error message, set as it goes by work that may run in a task
/// of its own (``DatabaseSwap/watchingLock(_:)``).
final class StepName: Sendable {
    private let name: Mutex<String>

    init(_ value: String) { name = Mutex(value) }

    var value: String {
        get { name.withLock { $0 } }
        set { name.withLock { $0 = newValue } }
    }
}
