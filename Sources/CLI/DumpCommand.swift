import ArgumentParser
import PGCloneActors

struct DumpCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Dump the database to the storage location; prints the new key.",
        discussion: "The key is {database_name}/{timestamp}.{config_name}.dump, the timestamp in UTC."
    )

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var common: CommonOptions

    func execute() async throws {
        let logger = try common.makeLogger()
        defer { logger.logPeakMemory() }
        let settings = try Settings(options: common, database: connection.database)
        guard settings.allowDump.value else {
            throw PGCloneError(.refused, "dumps are disabled here (\(settings.allowDump.origin)); nothing was done")
        }
        var pipeline = DumpPipeline(
            storage: try settings.storage(logger: logger),
            connection: settings.connection,
            budget: settings.budget,
            logger: logger
        )
        pipeline.environment = settings.environment
        let dump = try await pipeline.run()
        print(dump.key)
    }
}
