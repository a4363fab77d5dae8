import ArgumentParser
import PGCloneActors
import PGCloneMetrics

struct DumpCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Dump the database to the storage location; prints the new key.",
        discussion: """
            The key is {database_name}/{timestamp}.{config_name}.dump, the timestamp in UTC. The config \
            name is --config's, "default" without it, or "_custom" when flags change what is dumped.
            """
    )

    @Option(help: ArgumentHelp("A dump config of the config file's dump_configs.", valueName: "name"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "Leave out this table's data and its partitions' (a pg_dump pattern); repeatable.",
            valueName: "pattern"
        )
    )
    var excludeTableData: [String] = []

    @Option(
        help: ArgumentHelp(
            "Leave out a Django model's data and its partitions' (app.Model → table app_model); repeatable.",
            valueName: "app.Model"
        )
    )
    var excludeModel: [String] = []

    @Option(
        help: ArgumentHelp("A shell command run against the database before pg_dump; repeatable.", valueName: "command")
    )
    var preDumpHook: [String] = []

    @Option(
        help: ArgumentHelp(
            """
            Leave out this extension, one only a superuser may create where the dump is restored (pg_dump 17 and \
            newer); repeatable.
            """,
            valueName: "name"
        )
    )
    var excludeExtension: [String] = []

    @Flag(
        help:
            """
            Restores of this dump leave its owners out: every object belongs to the restoring role (pg_dump's \
            --no-owner).
            """
    )
    var noOwner = false

    @Flag(help: "Leave the source's privileges out: no GRANTs, REVOKEs or default privileges (pg_dump's --no-acl).")
    var noAcl = false

    @Option(
        help: ArgumentHelp(
            """
            zstd level, 1 to 19 (default 1: smaller and faster than 3 on pg_dump's output; higher levels need a \
            larger --memory-limit).
            """,
            valueName: "level"
        )
    )
    var compressionLevel: Int?

    @Flag(help: "Print the result as JSON: key, database, config, sizes, durations per phase.")
    var json = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    var showsProgress: Bool { true }

    func validate() throws {
        if let model = excludeModel.first(where: { DumpConfig.tableName(ofModel: $0) == nil }) {
            throw ValidationError("--exclude-model takes app.Model (it is \"\(model)\")")
        }
        if config?.isEmpty == true { throw ValidationError("--config takes the name of a dump config") }
    }

    func execute(_ context: RunContext) async throws {
        let logger = context.logger
        defer { logger.logRunSummary(context.metrics) }
        var settings = try Settings(options: common, database: connection.database, compressionLevel: compressionLevel)
        guard settings.allowDump.value else {
            throw PGCloneError(.refused, "dumps are disabled here (\(settings.allowDump.origin)); nothing was done")
        }
        try settings.applyCompressionLevel()
        var dumpConfig = try settings.dumpConfig(config)
        // Flags override the config's lists.
        if !excludeTableData.isEmpty { dumpConfig.excludeTables = excludeTableData }
        if !excludeModel.isEmpty { dumpConfig.excludeModels = excludeModel }
        if !excludeExtension.isEmpty { dumpConfig.excludeExtensions = excludeExtension }
        if !preDumpHook.isEmpty { dumpConfig.preDumpHooks = preDumpHook }
        if noOwner { dumpConfig.noOwner = true }
        if noAcl { dumpConfig.noACL = true }
        let custom =
            !excludeTableData.isEmpty || !excludeModel.isEmpty || !preDumpHook.isEmpty || !excludeExtension.isEmpty
            || noOwner || noAcl
        var pipeline = DumpPipeline(
            storage: try settings.storage(logger: logger, metrics: context.metrics),
            connection: settings.connection,
            budget: settings.budget,
            metrics: context.metrics,
            logger: logger
        )
        pipeline.config = config ?? (custom ? "_custom" : "default")
        // Its name goes into the key, encoded: up to 189 characters, which a file name holds.
        guard !pipeline.config.isEmpty, pipeline.config.utf8.count <= 63 else {
            throw PGCloneError(
                .invalidConfiguration,
                """
                the dump config name \"\(pipeline.config)\" is \
                \(pipeline.config.isEmpty ? "empty" : "longer than 63 bytes"); name it with 1 to 63 bytes, as \
                PostgreSQL names things
                """
            )
        }
        if let database = await PostgresConnection.resolveDatabaseName(settings.connection) {
            await context.startJob(.dump, database: database, config: pipeline.config, settings: settings)
        }
        pipeline.dumpConfig = dumpConfig
        pipeline.sessionSettings = settings.sessionSettings
        pipeline.environment = settings.environment
        let outcome = try await pipeline.run()
        guard json else { return context.printResult("\(outcome.dump.key)") }
        try context.printResult(
            JSONOutput.encode(
                JSONOutput.Dump(
                    key: "\(outcome.dump.key)",
                    database: outcome.dump.key.database,
                    config: outcome.dump.key.config,
                    storedBytes: outcome.dump.size,
                    archiveBytes: outcome.archiveBytes,
                    durationSeconds: JSONOutput.seconds(context.metrics),
                    phases: JSONOutput.phases(context.metrics)
                )
            )
        )
    }
}
