import ArgumentParser
import PGCloneActors

struct RestoreCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a dump into the database, then swap it into place; prints the restored key.",
        discussion: """
            The dump is restored into DB__temp; only when that succeeded is it swapped in for DB, in one \
            transaction. Until then DB is untouched, and any failure leaves it as it was.
            """
    )

    @Argument(help: ArgumentHelp("A dump key, or a database name (its newest dump).", valueName: "key-or-db-name"))
    var source: String

    @Flag(help: "Swap the database in even if pg_restore reported errors on single statements.")
    var ignoreRestoreErrors = false

    @Flag(help: "Wait for another restore of the same database to finish instead of failing.")
    var wait = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var common: CommonOptions

    func execute() async throws {
        let logger = try common.makeLogger()
        defer { logger.logPeakMemory() }
        let restoreSource = try parseSource()
        let settings = try Settings(options: common, database: connection.database)
        guard settings.allowRestore.value else {
            throw PGCloneError(.refused, "restores are disabled here (\(settings.allowRestore.origin)); nothing was done")
        }
        var pipeline = RestorePipeline(
            storage: try settings.storage(logger: logger),
            connection: settings.connection,
            budget: settings.budget,
            logger: logger
        )
        pipeline.ignoreRestoreErrors = ignoreRestoreErrors
        pipeline.waitForLock = wait
        pipeline.environment = settings.environment
        let outcome = try await pipeline.run(restoreSource)
        print(outcome.dump.key)
    }

    private func parseSource() throws(PGCloneError) -> RestoreSource {
        if source.hasPrefix(":") {
            throw PGCloneError(
                .invalidConfiguration,
                "restoring a local database (\(source)) is not supported by this version of pgclone yet"
            )
        }
        if source.contains("/") {
            guard let key = DumpKey(parsing: source) else {
                throw PGCloneError(
                    .invalidConfiguration,
                    "\"\(source)\" is not a dump key; keys look like mydb/20261126T075200.123456Z.default.dump (see `pgclone ls`)"
                )
            }
            return .key(key)
        }
        guard !source.isEmpty else {
            throw PGCloneError(.invalidConfiguration, "give a dump key or a database name to restore")
        }
        return .database(source)
    }
}
