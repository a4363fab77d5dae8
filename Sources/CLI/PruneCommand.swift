import ArgumentParser
import Foundation
import Logging
import PGCloneActors
import PGCloneStreams

struct PruneCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete old dumps, keeping what the --keep options say; a dry run unless --confirm.",
        discussion: """
            Per series — the dumps of one database made with one dump config: --keep-last, --keep-daily \
            and --keep-weekly each keep dumps (the newest of each day or ISO week, UTC), and everything \
            they do not keep is deleted — only what is older than --older-than, if given. The newest dump of \
            a series is kept unless --keep-last says otherwise (--keep-last 0). Only pgclone's \
            own dumps are considered (django-pgclone's too with --include-django-pgclone); other objects \
            under the storage location are left alone.
            """
    )

    @Argument(help: ArgumentHelp("Only this database's dumps.", valueName: "db-name"))
    var databaseName: String?

    @Option(help: ArgumentHelp("Only the series of this dump config.", valueName: "name"))
    var dumpConfig: String?

    @Flag(help: "Prune the dumps django-pgclone wrote under the storage location too (they are left alone without it).")
    var includeDjangoPgclone = false

    // `.unconditional`, here and below: `--keep-last -1` is a wrong value, not a missing one.
    @Option(parsing: .unconditional, help: ArgumentHelp("Keep the newest N dumps of each series.", valueName: "n"))
    var keepLast: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Keep the newest dump of each of the last N days with dumps, per series.", valueName: "n")
    )
    var keepDaily: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Keep the newest dump of each of the last N ISO weeks with dumps, per series.",
            valueName: "n"
        )
    )
    var keepWeekly: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Delete only dumps older than this, with its unit: 30d, 12h, 90m.", valueName: "duration")
    )
    var olderThan: String?

    @Flag(help: "Delete; without it, only print what would be deleted.")
    var confirm = false

    @Flag(help: "Print the result as JSON: kept and deleted keys.")
    var json = false

    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    func validate() throws {
        if databaseName?.isEmpty == true {
            throw ValidationError("the database name is empty; give one, or none for every database")
        }
        if dumpConfig?.isEmpty == true { throw ValidationError("--dump-config takes the name of a dump config") }
    }

    func execute(_ context: RunContext) async throws {
        let policy = try makePolicy()
        let settings = try Settings(options: common, database: nil)
        let storage = try settings.storage(logger: context.logger, metrics: context.metrics)
        let considered = try await DumpCatalog(storage: storage, logger: context.logger)
            .prunable(of: databaseName, config: dumpConfig)
        let dumps = considered.dumps.filter { includeDjangoPgclone || $0.key.layout == .pgclone }
        for (dump, reason) in considered.leftAlone where includeDjangoPgclone || dump.key.layout == .pgclone {
            context.logger.warning("left \(dump.key) alone: \(reason)")
        }
        // What killed dumps left goes too, but not in a dry run.
        for path in confirm ? try await storage.removeAbandonedPartials(database: databaseName) : [] {
            context.logger.info("removed \(path), left by a dump that was killed")
        }
        var kept: [StoredDump] = []
        var deleted: [StoredDump] = []
        for series in Set(dumps.map(\.series)).sorted() {
            let (keep, delete) = policy.apply(to: dumps.filter { $0.series == series }, now: Date())
            kept += keep
            deleted += delete
        }
        for (index, dump) in deleted.enumerated() {
            if confirm {
                do {
                    try await storage.delete(dump.key)
                } catch {
                    // Kept: what was not deleted, whatever the policy said.
                    context.partialResult = Result(
                        kept: (kept + deleted[index...]).map { "\($0.key)" },
                        deleted: deleted[..<index].map { "\($0.key)" },
                        dryRun: false
                    )
                    throw error
                }
                if !json { print("deleted \(dump.key)") }
            } else if !json {
                print("would delete \(dump.key)")
            }
        }
        context.logger.info(
            """
            \(counted(kept.count, "dump")) kept, \(deleted.count) \
            \(confirm ? "deleted" : "to delete (dry run; --confirm deletes)")
            """
        )
        if json {
            try JSONOutput.print(
                Result(kept: kept.map { "\($0.key)" }, deleted: deleted.map { "\($0.key)" }, dryRun: !confirm)
            )
        }
    }

    private struct Result: Encodable {
        var kept: [String]
        var deleted: [String]
        var dryRun: Bool
    }

    private func makePolicy() throws(PGCloneError) -> PrunePolicy {
        for (name, value) in [("--keep-last", keepLast), ("--keep-daily", keepDaily), ("--keep-weekly", keepWeekly)] {
            if let value, value < 0 {
                throw PGCloneError(.invalidConfiguration, "\(name) takes a number of dumps (it is \(value))")
            }
        }
        var policy = PrunePolicy(keepLast: keepLast, keepDaily: keepDaily, keepWeekly: keepWeekly)
        if let olderThan {
            // A bare number would be seconds, which a cron line meaning days deletes everything by.
            if let number = Int(olderThan) {
                throw PGCloneError(
                    .invalidConfiguration,
                    """
                    --older-than \(olderThan) has no unit: write \(number)d for days (or \(number)h, \(number)m, \
                    \(number)s)
                    """
                )
            }
            guard let duration = parseDuration(olderThan) else {
                throw PGCloneError(
                    .invalidConfiguration,
                    "--older-than takes a duration like 30d, 12h or 90m (it is \"\(olderThan)\")"
                )
            }
            policy.olderThan = duration
        }
        guard !policy.isEmpty else {
            throw PGCloneError(
                .invalidConfiguration,
                "say what to keep: --keep-last, --keep-daily, --keep-weekly and/or --older-than; nothing was deleted"
            )
        }
        return policy
    }
}
