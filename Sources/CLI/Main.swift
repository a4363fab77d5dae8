import ArgumentParser
import CPGCloneSystem
import Foundation
import Logging
import PGCloneActors
import PGCloneMetrics
import PGCloneS3
import PGCloneStreams
import Synchronization
import UnixSignals

/// pgclone's entry point. It owns what ArgumentParser's default `main` would decide: exit codes
/// (DESIGN.md's, not EX_USAGE), the one-line error format, and SIGINT/SIGTERM, which cancel the
/// running command so that it cleans up (drops the temporary database, removes a partial dump).
@main
enum Main {
    static func main() async {
        // A child that exits while pgclone writes to its stdin must not kill pgclone silently
        // (PLATFORM.md §0): the write fails instead, and the child's exit status says why.
        signal(SIGPIPE, SIG_IGN)
        CPGCloneSystem_tune_malloc()
        ChildWatchdog.markEnvironment()
        let command: any PGCloneSubcommand
        do {
            var parsed = try PGCloneCommand.parseAsRoot(Self.arguments())
            guard let subcommand = parsed as? any PGCloneSubcommand else {
                // `--help`, `help dump` or no subcommand: ArgumentParser's own commands, whose
                // run() throws the request for the help of the command asked about.
                try parsed.run()
                exit(0)
            }
            command = subcommand
        } catch {
            let code = PGCloneCommand.exitCode(for: error)
            if code == .success {
                print(PGCloneCommand.fullMessage(for: error))
                exit(0)
            }
            // ArgumentParser quotes what it could not read, which may be a URL with its password.
            let message = URLPassword.redactingAll(in: PGCloneCommand.message(for: error)) + " (see pgclone --help)"
            // `--json` promises a document on stdout, which a wrong command line owes too.
            failUsage(message, printingJSON: Self.arguments().prefix(while: { $0 != "--" }).contains("--json"))
        }
        exit(await runWithMetrics(command))
    }

    /// The command line, with `--wait=DURATION` spelled as ArgumentParser reads it (a flag whose
    /// value is optional is not something it can declare).
    static func arguments() -> [String] {
        CommandLine.arguments.dropFirst().flatMap { argument -> [String] in
            // `=` keeps a value that starts with "-" a value.
            argument.hasPrefix("--wait=")
                ? ["--wait", "--wait-timeout=" + argument.dropFirst("--wait=".count)] : [argument]
        }
    }

    static func report(_ line: String) {
        try? FileHandle.standardError.write(contentsOf: Data("pgclone: \(line)\n".utf8))
    }

    static func fail(_ message: String, code: Int32) -> Never {
        report("error: \(message)")
        exit(code)
    }

    /// Fails with exit code 2 before the command ran (a wrong command line or setting), with the
    /// JSON document `--json` promises on stdout.
    static func failUsage(_ message: String, printingJSON: Bool) -> Never {
        if printingJSON {
            try? JSONOutput.print(
                JSONOutput.Failure(
                    error: .init(
                        code: PGCloneError.Code.invalidConfiguration.rawValue,
                        message: message,
                        exitCode: 2,
                        details: [:]
                    )
                )
            )
        }
        fail(message, code: 2)
    }
}
