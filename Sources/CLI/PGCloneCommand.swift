import ArgumentParser

/// `pgclone`: dump PostgreSQL databases to local disk, list the dumps, restore one behind the
/// application's back and swap it into place.
struct PGCloneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pgclone",
        abstract: "Dump PostgreSQL databases, list the dumps, and restore one with an atomic swap.",
        discussion: """
            Exit codes: 0 success; 1 the operation failed (the message says which step); 2 usage or \
            configuration error; 3 refused by allow_dump, allow_restore or allow_copy; 4 another restore of the same \
            database holds the lock; 128+N interrupted by signal N.
            """,
        version: "pgclone 0.1.0",
        subcommands: [DumpCommand.self, ListCommand.self, RestoreCommand.self, CopyCommand.self, VerifyCommand.self, PruneCommand.self]
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
}

extension PGCloneSubcommand {
    var showsProgress: Bool { false }
}
