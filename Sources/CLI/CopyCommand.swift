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
    @OptionGroup var common: CommonOptions

    func execute(_ context: RunContext) async throws {
        let logger = context.logger
        guard name.hasPrefix(":"), name.count > 1 else {
            throw PGCloneError(.invalidConfiguration, "the snapshot's name starts with a colon: pgclone copy :NAME")
        }
        let snapshot = String(name.dropFirst())
        let settings = try Settings(options: common, database: connection.database)
        guard settings.allowCopy.value else {
            throw PGCloneError(.refused, "copies are disabled here (\(settings.allowCopy.origin)); nothing was done")
        }
        guard let source = await PostgresConnection.resolveDatabaseName(settings.connection) else {
            throw PGCloneError(.invalidConfiguration, "cannot tell which database to copy; pass --database")
        }
        let names = try DatabaseNames(target: source)
        await context.startJob(.copy, database: source, config: "default", settings: settings)
        let admin = try await PostgresConnection.connectMaintenance(settings.connection, databases: ["postgres", "template1"], avoiding: source)
        do {
            try await admin.apply(settings.sessionSettings)
            let swap = DatabaseSwap(admin: admin, names: names)
            guard try await !swap.exists(snapshot) else {
                throw PGCloneError(.databaseError, "a database named \"\(snapshot)\" already exists; choose another name, or drop it first")
            }
            logger.info("copying \"\(source)\" as \"\(snapshot)\"")
            try await swap.copy(source, to: snapshot)
            await admin.close()
        } catch {
            await admin.close()
            throw PGCloneError.from(error)
        }
        print(name)
    }
}
