import ArgumentParser
import Logging
import PGCloneActors
import PGCloneStreams

struct VerifyCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a dump end to end without restoring it.",
        discussion: """
            Streams the dump as a restore would — every zstd frame decoded and its checksum checked — \
            into pg_restore writing to /dev/null, which must read the archive to its end. Prints what \
            the dump is; exits 1 on any damage.
            """
    )

    @Argument(help: ArgumentHelp("A dump key, or a database name (its newest dump).", valueName: "key-or-db-name"))
    var source: String

    @Option(help: ArgumentHelp("With a database name: the newest dump made with this dump config.", valueName: "name"))
    var dumpConfig: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    func validate() throws {
        if let dumpConfig {
            if dumpConfig.isEmpty { throw ValidationError("--dump-config takes the name of a dump config") }
            if case .key = try? RestoreSource.parse(source) {
                throw ValidationError("--dump-config picks among a database's dumps; \(source) is a dump key")
            }
        }
    }

    func execute(_ context: RunContext) async throws {
        let settings = try Settings(options: common, database: nil)
        let storage = try settings.storage(logger: context.logger, metrics: context.metrics)
        let catalog = DumpCatalog(storage: storage, logger: context.logger)
        let parsed = try RestoreSource.parse(source)
        if case .local = parsed {
            throw PGCloneError(
                .invalidConfiguration,
                "verify checks dumps in storage; \(source) is a database on the server"
            )
        }
        let dump = try await catalog.dump(for: parsed, config: dumpConfig)
        var pipeline = VerifyPipeline(
            storage: storage,
            budget: settings.budget,
            metrics: context.metrics,
            logger: context.logger
        )
        pipeline.environment = settings.environment
        let verified = try await pipeline.run(dump)
        // What the dump says, over what its key says (a dump copied under another database's key).
        var resolved = dump
        if let database = verified.metadata?.database {
            resolved.database = database
            resolved.databaseKnown = true
        }
        if resolved.contradictsKey {
            context.logger.warning(
                "\(dump.key) is named for \"\(dump.key.database)\" but is a dump of \"\(resolved.database)\""
            )
        }
        let format = verified.format == .archive ? "custom-format archive" : "zstd"
        if json {
            try JSONOutput.print(
                Result(
                    key: "\(dump.key)",
                    database: resolved.database,
                    config: dump.config,
                    storedBytes: dump.size,
                    archiveBytes: verified.archiveBytes,
                    format: verified.format == .archive ? "archive" : "zstd",
                    pgcloneVersion: verified.metadata?.pgcloneVersion,
                    serverVersion: verified.metadata?.serverVersion,
                    indexedPieces: verified.indexedFrames
                )
            )
        } else {
            var facts = [
                "\(format)", "\(ByteCount(bytes: dump.size)) stored",
                "\(ByteCount(bytes: verified.archiveBytes)) archive",
            ]
            if let metadata = verified.metadata {
                facts += [
                    "pgclone \(metadata.pgcloneVersion)",
                    "PostgreSQL \(metadata.serverVersion.split(separator: " ").first ?? "")",
                ]
            }
            if let frames = verified.indexedFrames { facts.append("\(frames) pieces indexed") }
            print("\(dump.key): OK (\(facts.joined(separator: ", ")))")
        }
    }

    private struct Result: Encodable {
        var key: String
        var database: String
        var config: String
        var storedBytes: Int
        var archiveBytes: Int
        var format: String
        var pgcloneVersion: String?
        var serverVersion: String?
        /// The pieces the dump's index lists (each checked), for a dump that can be read in pieces.
        var indexedPieces: Int?
    }
}
