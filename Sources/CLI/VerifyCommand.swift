import ArgumentParser
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

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    func execute(_ context: RunContext) async throws {
        let settings = try Settings(options: common, database: nil)
        let storage = try settings.storage(logger: context.logger, metrics: context.metrics)
        let dump = try await find(in: storage)
        var pipeline = VerifyPipeline(storage: storage, budget: settings.budget, metrics: context.metrics, logger: context.logger)
        pipeline.environment = settings.environment
        let verified = try await pipeline.run(dump)
        let format = verified.format == .archive ? "custom-format archive" : "zstd"
        if json {
            try JSONOutput.print(
                Result(
                    key: "\(dump.key)",
                    storedBytes: dump.size,
                    archiveBytes: verified.archiveBytes,
                    format: verified.format == .archive ? "archive" : "zstd",
                    pgcloneVersion: verified.metadata?.pgcloneVersion,
                    serverVersion: verified.metadata?.serverVersion
                )
            )
        } else {
            var facts = ["\(format)", "\(ByteCount(bytes: dump.size)) stored", "\(ByteCount(bytes: verified.archiveBytes)) archive"]
            if let metadata = verified.metadata {
                facts += ["pgclone \(metadata.pgcloneVersion)", "PostgreSQL \(metadata.serverVersion.split(separator: " ").first ?? "")"]
            }
            print("\(dump.key): OK (\(facts.joined(separator: ", ")))")
        }
    }

    private struct Result: Encodable {
        var key: String
        var storedBytes: Int
        var archiveBytes: Int
        var format: String
        var pgcloneVersion: String?
        var serverVersion: String?
    }

    private func find(in storage: any StorageBackend) async throws -> StoredDump {
        if source.contains("/") {
            guard let key = DumpKey(parsing: source) else {
                throw PGCloneError(.invalidConfiguration, "\"\(source)\" is not a dump key; `pgclone ls` lists them")
            }
            guard let dump = try await storage.find(key) else {
                throw PGCloneError(.objectNotFound, "no dump \(key) in \(storage.location); `pgclone ls` lists them")
            }
            return dump
        }
        guard let newest = try await storage.list(database: DumpKey.sanitize(source)).first else {
            throw PGCloneError(.objectNotFound, "no dumps of database \"\(source)\" in \(storage.location)")
        }
        return newest
    }
}
