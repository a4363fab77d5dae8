import ArgumentParser
import Logging
import PGCloneActors
import PGCloneMetrics

struct CopyCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Snapshot the database as a local database, restorable with `restore :NAME`.",
        discussion: "CREATE DATABASE NAME TEMPLATE DB: the database's sessions are ended for the copy."
    )

    @Argument(help: ArgumentHelp("The snapshot's name, after a colon.", valueName: ":name"))
    var name: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var maintenance: MaintenanceOptions
    @OptionGroup var common: CommonOptions

    func execute(_ context: RunContext) async throws {
        guard name.hasPrefix(":"), name.count > 1 else {
            throw PGCloneError(.invalidConfiguration, "the snapshot's name starts with a colon: pgclone copy :NAME")
        }
        let settings = try Settings(
            options: common,
            database: connection.database,
            maintenanceDatabase: maintenance.maintenanceDatabase
        )
        // The location is not used here, but one that cannot be used is refused as elsewhere.
        _ = try settings.storage(logger: context.logger, metrics: context.metrics)
        guard settings.allowCopy.value else {
            throw PGCloneError(.refused, "copies are disabled here (\(settings.allowCopy.origin)); nothing was done")
        }
        if let source = await PostgresConnection.resolveDatabaseName(settings.connection) {
            await context.startJob(.copy, database: source, config: "default", settings: settings)
        }
        var pipeline = CopyPipeline(connection: settings.connection, logger: context.logger)
        pipeline.sessionSettings = settings.sessionSettings
        pipeline.maintenance = settings.maintenance
        _ = try await pipeline.run(snapshot: String(name.dropFirst()))
        print(name)
    }
}
