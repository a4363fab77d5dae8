package import Logging
package import PGCloneMetrics
import PGCloneStreams

/// `pgclone dump`: pg_dump → zstd → storage, three stages joined by bounded streams in one task
/// group. The dump is published under its key only if every stage succeeded.
package struct DumpPipeline: Sendable {
    package var storage: any StorageBackend
    package var connection: ConnectionSettings
    package var budget: MemoryBudget
    /// The config name recorded in the key.
    package var config = "default"
    /// Exclusions and pre-dump hooks.
    package var dumpConfig = DumpConfig()
    /// `statement_timeout` and the like for pgclone's own SQL.
    package var sessionSettings: [(name: String, value: String)] = []
    /// Environment the tools are located with (`PGCLONE_PG_BIN_DIR`).
    package var environment: [String: String] = [:]
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

    /// What a dump did.
    package struct Outcome: Sendable {
        package var dump: StoredDump
        /// Bytes of pg_dump's archive, before compression.
        package var archiveBytes: Int
    }

    package func run() async throws -> Outcome {
        logger.debug("dumping", metadata: ["connection": "\(connection.redactedDescription)"])
        let source: PostgresConnection
        do {
            source = try await PostgresConnection.connect(connection)
        } catch let error as LibPQError {
            guard let failure = error.connectionFailure else {
                throw PGCloneError.from(error, step: "connecting to the database to dump")
            }
            // No cause: the message holds all libpq said, and stays the last line logged.
            throw PGCloneError(
                failure.isBadOption ? .invalidConfiguration : .databaseUnavailable,
                "cannot connect to database \"\(failure.database)\" to dump it: \(failure.reason)",
                details: error.details
            )
        }
        let database = await source.databaseName
        if !dumpConfig.preDumpHooks.isEmpty {
            let environment = HookEnvironment.make(
                resolved: await source.resolvedOptions,
                endpoint: await source.endpoint,
                database: database
            )
            do {
                let hooks = HookRunner(metrics: metrics, logger: logger)
                try await metrics.phase(.preDumpHooks) {
                    try await hooks.run(dumpConfig.preDumpHooks, phase: .preDump, environment: environment)
                }
            } catch {
                await source.close()
                throw PGCloneError.from(error, step: "running the pre-dump hooks")
            }
        }
        let metadata: DumpMetadata
        let key: DumpKey
        let tools: PostgresTools
        // pg_dump's session writes English where the role may set it, as a restore's do: its
        // errors end pgclone's line.
        let englishMessages: [(name: String, value: String)]
        do {
            try await source.apply(sessionSettings)
            let version = try await source.query("SELECT current_setting('server_version')").first?.first ?? nil
            key = DumpKey(database: database, config: config)
            metadata = DumpMetadata(
                pgcloneVersion: pgcloneVersion,
                serverVersion: version ?? "",
                database: database,
                dumpConfig: config,
                createdAt: key.isoTimestamp,
                settings: try await source.databaseSettings(of: database),
                locale: try await source.databaseLocale(of: database),
                access: try await DatabaseProperties.read(database, on: source)?.access,
                owners: !dumpConfig.noOwner,
                privileges: !dumpConfig.noACL,
                publicSchema: try await source.query(
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'public')"
                ).first?.first == "t",
                plpgsql: try await source.query(
                    "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'plpgsql')"
                ).first?.first == "t",
                publicPrivileges: try await source.publicPrivilegesOnTemplateObjects()
            )
            englishMessages = try await source.messageLanguage().maySet ? [("lc_messages", "C")] : []
            let serverVersion = await source.serverVersion
            tools = try await PostgresInstallations.discover(environment: environment)
                .forDump(serverVersion: serverVersion, serverVersionText: version ?? "\(serverVersion)")
            logger.debug("running \(tools.pgDump)")
        } catch {
            await source.close()
            throw PGCloneError.from(error)
        }
        var exclusions: [String]
        do {
            exclusions = try await TableDataExclusion.pgDumpArguments(
                patterns: dumpConfig.excludedTablePatterns,
                tools: tools,
                source: source,
                logger: logger
            )
            if !dumpConfig.excludeExtensions.isEmpty {
                let major = await tools.pgDumpMajorVersion()
                guard let major, major >= 17 else {
                    throw PGCloneError(
                        .invalidConfiguration,
                        """
                        pg_dump \(major.map(String.init) ?? "(of unknown version)") cannot leave out an \
                        extension: --exclude-extension came with pg_dump 17; install PostgreSQL 17's client \
                        programs or newer, or set PGCLONE_PG_BIN_DIR to their bin directory
                        """
                    )
                }
                exclusions += dumpConfig.excludeExtensions.map { "--exclude-extension=\($0)" }
            }
            await source.close()
        } catch {
            await source.close()
            throw PGCloneError.from(error, step: "finding the partitions of the tables whose data is left out")
        }

        do {
            for path in try await storage.removeAbandonedPartials(database: database) {
                logger.info("removed \(path), left by a dump that was killed")
            }
        } catch {
            logger.warning("could not look for what killed dumps left: \(PGCloneError.from(error))")
        }
        if dumpConfig.noACL {
            logger.warning(
                """
                dumping without the source's privileges (--no-acl): its restores give every object PostgreSQL's \
                default ones, which let PUBLIC execute functions and use types and the public schema where the \
                source may not have
                """
            )
        }
        logger.info("dumping database \"\(database)\" to \(key) in \(storage.location)")
        let (archive, archiveSource) = metrics.stream(
            .dumpToCompress,
            capacity: budget.streamCapacity,
            from: .dumpStdout,
            to: .compress
        )
        // A storage that gathers parts of its own needs only a little room ahead of it.
        let uploadCapacity = storage.buffersWrites ? ByteCount(bytes: budget.readChunkSize * 2) : budget.streamCapacity
        let (compressed, compressedSource) = metrics.stream(
            .compressToUpload,
            capacity: uploadCapacity,
            from: .compress,
            to: .upload
        )
        metrics.setMemoryBudget(budget.dumpTerms)
        var dumper = PGDumpRunner(
            tools: tools,
            connection: connection.replacingDatabase(database).addingSessionSettings(
                englishMessages,
                environment: environment
            )
        )
        dumper.extraArguments =
            (dumpConfig.noOwner ? ["--no-owner"] : []) + (dumpConfig.noACL ? ["--no-acl"] : []) + exclusions
        let dumpStep = metrics.step(.dumpStdout)
        dumper.stdoutWaiting = { dumpStep.waiting($0, starving: true) }
        let encoder = DumpEncoder(settings: budget.compression)
        logger.debug(
            """
            zstd level \(budget.compression.level), workers: \(budget.compression.workers), planned \
            \(ByteCount.bytes(budget.compression.plannedMemory))
            """
        )
        let storage = self.storage
        let runner = dumper
        let metrics = self.metrics
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let (archiveBytes, _, storedBytes) = try await metrics.phase(.dump) {
                try await runStages(
                    source: { try await metrics.running(.dumpStdout) { try await runner.dump(into: archiveSource) } },
                    transform: {
                        try await metrics.running(.compress) {
                            try await encoder.encode(archive, into: compressedSource, metadata: metadata)
                        }
                    },
                    sink: { try await metrics.running(.upload) { try await storage.write(key, from: compressed) } }
                )
            }
            metrics.currentJob?.setObjectBytes(storedBytes)
            let elapsed = clock.now - start
            let zstdMemory = await encoder.peakContextMemory
            logger.info(
                """
                dumped a \(ByteCount(bytes: archiveBytes)) archive as \(ByteCount(bytes: storedBytes)) in \
                \(elapsed.formattedSeconds)
                """,
                metadata: ["zstd.memory": "\(zstdMemory)"]
            )
            return Outcome(dump: StoredDump(key: key, size: storedBytes), archiveBytes: archiveBytes)
        } catch {
            let failure = PGCloneError.from(error, dump: key)
            guard failure.code == .dumpFailed, failure.message.hasPrefix("pg_dump exited with status 1"),
                let (role, relation) = await unreadableRelation(database: database)
            else { throw failure }
            throw PGCloneError(
                .insufficientPrivilege,
                "\(failure.message); role \"\(role)\" may not read \(relation): \(PGDumpRunner.readEverything)"
            )
        }
    }

    /// After pg_dump failed, a table or sequence of `database` the role may not read (pg_dump
    /// reads and locks every one), found on the server: its refusal, in the server's language,
    /// is not always one pgclone reads. `nil` if there is none, or the server does not say.
    private func unreadableRelation(database: String) async -> (role: String, relation: String)? {
        guard let session = try? await PostgresConnection.connect(connection.replacingDatabase(database)) else {
            return nil
        }
        let row = try? await session.query(
            """
            SELECT current_user, CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END \
            || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
            FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'S', 'm', 'f') AND n.nspname <> 'information_schema' \
            AND n.nspname !~ '^pg_'
            AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d WHERE d.classid = 'pg_catalog.pg_class'::regclass \
            AND d.objid = c.oid AND d.deptype = 'e')
            AND NOT (pg_catalog.has_table_privilege(c.oid, 'SELECT') \
            AND pg_catalog.has_schema_privilege(n.oid, 'USAGE'))
            ORDER BY 2 LIMIT 1
            """
        ).first
        await session.close()
        guard let row, row.count == 2, let role = row[0], let relation = row[1] else { return nil }
        return (role, relation)
    }
}
