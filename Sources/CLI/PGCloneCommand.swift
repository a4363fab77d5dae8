import ArgumentParser
import PGCloneActors

/// `pgclone`: dump PostgreSQL databases to local disk, list the dumps, restore one behind the
/// application's back and swap it into place.
struct PGCloneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgclone",
        abstract: "Dump PostgreSQL databases, list the dumps, and restore one with an atomic swap.",
        discussion: """
            Examples:
              pgclone dump --database postgresql://app@db.internal/app
                  dump app to .pgclone/ (or to storage_location); prints the key
              pgclone ls app --json
                  app's dumps, newest first, with sizes
              pgclone restore app --database postgresql://app@localhost/app
                  restore app's newest dump there and swap it in
              pgclone restore app --reversible --pre-swap-hook 'python manage.py migrate'
                  migrate before the swap; keep the old database for undo
              pgclone restore :previous --reversible
                  undo that restore, keeping both snapshots (:current redoes it)
              pgclone verify app
                  check app's newest dump end to end without restoring it
              pgclone prune --keep-last 7 --keep-weekly 4 --confirm
                  keep the newest 7 dumps and one a week for 4 weeks; delete the rest

            Settings come from flags, then PGCLONE_* variables and DATABASE_URL, then ./pgclone.yaml, \
            then defaults (libpq's PG* variables for the database); see the README.

            Exit codes: 0 success; 1 the operation failed (the message says which step); 2 usage or \
            configuration error; 3 refused by allow_dump, allow_restore or allow_copy; 4 another restore of the same \
            database holds the lock; 128+N interrupted by signal N.
            """,
        version: "pgclone \(pgcloneVersion)",
        subcommands: [
            DumpCommand.self, ListCommand.self, RestoreCommand.self, CopyCommand.self, VerifyCommand.self,
            PruneCommand.self,
        ]
    )
}

/// A subcommand: parsed by ArgumentParser, run by pgclone's own entry point (which owns exit codes,
/// signals and metrics delivery).
protocol PGCloneSubcommand: ParsableCommand, Sendable {
    var common: CommonOptions { get }

    /// Runs the command; what it prints on stdout is its result.
    func execute(_ context: RunContext) async throws

    /// Whether a terminal shows its progress (dump and restore).
    var showsProgress: Bool { get }

    /// `--json`: the result, or the error, as one JSON document on stdout.
    var printsJSON: Bool { get }
}

extension PGCloneSubcommand {
    var showsProgress: Bool { false }
    var printsJSON: Bool { false }
}
