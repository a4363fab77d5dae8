import ArgumentParser
import Logging
import PGCloneActors
import PGCloneMetrics

struct RestoreCommand: PGCloneSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a dump or a local database, then swap it into place; prints what was restored.",
        discussion: """
            The source is a dump key, a database name (its newest dump), or :NAME, a database on the \
            server (:previous and :current are the snapshots --reversible keeps). It is restored into \
            DB__temp, goes through the pre-swap hooks, and only then is swapped in for DB, in one \
            transaction. Until then DB is untouched, and any failure leaves it as it was.
            """
    )

    @Argument(help: ArgumentHelp("A dump key, a database name (its newest dump) or :NAME.", valueName: "source"))
    var source: String

    @Option(help: ArgumentHelp("A restore config of the config file's restore_configs.", valueName: "name"))
    var config: String?

    @Option(
        help: ArgumentHelp(
            """
            With a database name: the newest dump made with this dump config (default: the restore config's \
            dump_config, else any).
            """,
            valueName: "name"
        )
    )
    var dumpConfig: String?

    @Flag(
        inversion: .prefixedNo,
        help: """
            Keep DB__previous (the database replaced) and DB__current (the restore, before hooks), or \
            with --no-reversible do not (default: the restore config's reversible, else not).
            """
    )
    var reversible: Bool?

    @Option(
        help: ArgumentHelp("A shell command run against DB__temp before the swap; repeatable.", valueName: "command")
    )
    var preSwapHook: [String] = []

    @Flag(help: "Leave the dump's owners out: every object belongs to the restoring role (pg_restore's --no-owner).")
    var noOwner = false

    @Flag(help: "Leave the dump's privileges out: no GRANTs, REVOKEs or default privileges (pg_restore's --no-acl).")
    var noAcl = false

    @Option(
        help: ArgumentHelp(
            """
            SET ROLE to this role before restoring, as pg_restore's --role: it creates every object and owns those \
            whose owner cannot be given to them.
            """,
            valueName: "role"
        )
    )
    var role: String?

    @Flag(help: "Swap the database in even if pg_restore reported errors on single statements.")
    var ignoreRestoreErrors = false

    // `.unconditional`: `--jobs -1` is a wrong value, not a missing one. `-j4` as pg_restore takes it.
    @Option(
        name: [.customShort("j", allowingJoined: true), .long],
        parsing: .unconditional,
        help: ArgumentHelp(
            """
            Restore with N sessions at once: a dump made by this pgclone loads its tables' data in pieces, read \
            from storage as they load, then builds indexes N at a time; a dump without an index of its pieces \
            is spooled to TMPDIR for pg_restore -j N. Without it the dump streams into one pg_restore.
            """,
            valueName: "n"
        )
    )
    var jobs: Int?

    @Flag(help: "Wait for another restore of the same database to finish (--wait=DURATION: at most that long).")
    var wait = false

    @Option(name: .customLong("wait-timeout"), help: .hidden)
    var waitTimeout: String?

    @Flag(help: "Print the result as JSON: source, sizes, pg_restore errors, the swap, durations per phase.")
    var json = false

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var maintenance: MaintenanceOptions
    @OptionGroup var common: CommonOptions

    var printsJSON: Bool { json }

    var showsProgress: Bool { true }

    func validate() throws {
        if let jobs, jobs < 1 {
            throw ValidationError("--jobs takes a number of parallel sessions, 1 or more (it is \(jobs))")
        }
        if let dumpConfig {
            if dumpConfig.isEmpty { throw ValidationError("--dump-config takes the name of a dump config") }
            switch try? RestoreSource.parse(source) {
            case .local:
                throw ValidationError(
                    "--dump-config picks among a database's dumps; \(source) is a database on the server"
                )
            case .key: throw ValidationError("--dump-config picks among a database's dumps; \(source) is a dump key")
            default: break
            }
        }
        if role?.isEmpty == true { throw ValidationError("--role takes the name of a role") }
        if source.hasPrefix(":"),
            let flag = [(noOwner, "--no-owner"), (noAcl, "--no-acl"), (role != nil, "--role")].first(where: \.0)?.1
        {
            throw ValidationError(
                """
                \(flag) applies to restoring a dump; \(source) is a database on the server, copied with its owners \
                and privileges
                """
            )
        }
        if jobs != nil, source.hasPrefix(":") {
            throw ValidationError(
                "--jobs restores a dump; \(source) is a database on the server, copied without pg_restore"
            )
        }
    }

    func execute(_ context: RunContext) async throws {
        let logger = context.logger
        defer { logger.logRunSummary(context.metrics) }
        let restoreSource = try parseSource()
        let settings = try Settings(
            options: common,
            database: connection.database,
            maintenanceDatabase: maintenance.maintenanceDatabase
        )
        guard settings.allowRestore.value else {
            throw PGCloneError(
                .refused,
                "restores are disabled here (\(settings.allowRestore.origin)); nothing was done"
            )
        }
        var restoreConfig = try settings.restoreConfig(config)
        if !preSwapHook.isEmpty { restoreConfig.preSwapHooks = preSwapHook }
        if let reversible { restoreConfig.reversible = reversible }
        if let dumpConfig { restoreConfig.dumpConfig = dumpConfig }
        if noOwner { restoreConfig.noOwner = true }
        if noAcl { restoreConfig.noACL = true }
        if let role { restoreConfig.role = role }
        // A key whose config is another than the restore config's: said, as it is not what the
        // config picks. (A database on the server, `:NAME`, was made with no dump config.)
        if let chosen = restoreConfig.dumpConfig, dumpConfig == nil, case .key(let key) = restoreSource,
            key.config != chosen && key.config != KeySegment.sanitized(chosen)
        {
            logger.warning(
                """
                restore config \"\(config ?? "default")\" picks dumps made with dump config \"\(chosen)\" \
                among a database's dumps; \(source) was made with \"\(key.config)\", and is restored as named
                """
            )
        }
        var pipeline = RestorePipeline(
            storage: try settings.storage(logger: logger, metrics: context.metrics),
            connection: settings.connection,
            budget: settings.budget,
            metrics: context.metrics,
            logger: logger
        )
        if let database = await PostgresConnection.resolveDatabaseName(settings.connection) {
            await context.startJob(.restore, database: database, config: config ?? "default", settings: settings)
        }
        pipeline.ignoreRestoreErrors = ignoreRestoreErrors
        pipeline.jobs = jobs
        pipeline.restoreConfig = restoreConfig
        pipeline.sessionSettings = settings.sessionSettings
        pipeline.maintenance = settings.maintenance
        pipeline.environment = settings.environment
        pipeline.onSwapCommitted = context.markCommitted
        if let waitTimeout {
            guard let duration = parseDuration(waitTimeout) else {
                throw PGCloneError(
                    .invalidConfiguration,
                    "--wait takes a duration like 30s, 10m or 2h (it is \"\(waitTimeout)\")"
                )
            }
            pipeline.waitForLock = duration
        } else if wait {
            pipeline.waitForLock = .seconds(Int64.max / 2)
        }
        let outcome = try await pipeline.run(restoreSource)
        let restored = outcome.dump.map { "\($0.key)" } ?? source
        guard json else { return context.printResult(restored) }
        try context.printResult(
            JSONOutput.encode(
                JSONOutput.Restore(
                    source: restored,
                    database: outcome.target,
                    storedBytes: outcome.dump?.size,
                    archiveBytes: outcome.restore?.bytesWritten,
                    restoreErrors: outcome.restore?.errorCount ?? 0,
                    errors: (outcome.restore?.errors ?? []).map(JSONOutput.RestoreError.init),
                    ownersNotRestored: (outcome.restore?.privileges?.owners ?? []).map(JSONOutput.RoleTally.init),
                    privilegesNotRestored: (outcome.restore?.privileges?.privileges ?? []).map(
                        JSONOutput.RoleTally.init
                    ),
                    grantsMadeByOwners: (outcome.restore?.privileges?.grantors ?? []).map(JSONOutput.RoleTally.init),
                    databaseAccessNotRestored: outcome.swap.accessLeftOut,
                    revokesWithoutEffect: outcome.restore?.revokesWithoutEffect.objects ?? [],
                    revokesWithoutEffectCount: outcome.restore?.revokesWithoutEffect.count ?? 0,
                    settingsNotKept: outcome.settingsNotKept,
                    swap: .init(
                        replacedExisting: outcome.swap.replacedExisting,
                        unavailableSeconds: JSONOutput.seconds(outcome.swap.unavailable),
                        terminatedSessions: outcome.swap.terminatedSessions
                    ),
                    durationSeconds: JSONOutput.seconds(context.metrics),
                    phases: JSONOutput.phases(context.metrics)
                )
            )
        )
    }

    private func parseSource() throws(PGCloneError) -> RestoreSource {
        try RestoreSource.parse(source)
    }
}

/// `90`, `90s`, `5m`, `2h`, `1h30m`, `30d`; `nil` for anything else.
func parseDuration(_ text: String) -> Duration? {
    if let seconds = Int64(text), seconds >= 0 { return .seconds(seconds) }
    var total: Int64 = 0
    var number = ""
    for character in text {
        if character.isASCII && character.isNumber {
            number.append(character)
            continue
        }
        guard let value = Int64(number) else { return nil }
        switch character {
        case "s": total += value
        case "m": total += value * 60
        case "h": total += value * 3600
        case "d": total += value * 86_400
        default: return nil
        }
        number = ""
    }
    return number.isEmpty && !text.isEmpty ? .seconds(total) : nil
}
