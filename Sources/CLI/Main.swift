import ArgumentParser
import CPGCloneSystem
import Foundation
import PGCloneActors
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
        let command: any PGCloneSubcommand
        do {
            let parsed = try PGCloneCommand.parseAsRoot(Self.arguments())
            guard let subcommand = parsed as? any PGCloneSubcommand else {
                print(PGCloneCommand.helpMessage())
                exit(0)
            }
            command = subcommand
        } catch {
            let code = PGCloneCommand.exitCode(for: error)
            if code == .success {
                print(PGCloneCommand.fullMessage(for: error))
                exit(0)
            }
            fail(PGCloneCommand.message(for: error) + " (see pgclone --help)", code: 2)
        }
        exit(await run(command))
    }

    /// The command line, with `--wait=DURATION` spelled as ArgumentParser reads it (a flag whose
    /// value is optional is not something it can declare).
    static func arguments() -> [String] {
        CommandLine.arguments.dropFirst().flatMap { argument -> [String] in
            argument.hasPrefix("--wait=") ? ["--wait", "--wait-timeout", String(argument.dropFirst("--wait=".count))] : [argument]
        }
    }

    /// Runs `command`; the first SIGINT or SIGTERM cancels it (it then cleans up), later ones are
    /// only acknowledged, so clean-up is never cut short. Returns the exit code.
    private static func run(_ command: any PGCloneSubcommand) async -> Int32 {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        let received = Mutex<UnixSignal?>(nil)
        // Both tasks end within this function: the command is awaited, the listener cancelled.
        let execution = Task { () -> (any Error & Sendable)? in
            do {
                try await command.execute()
                return nil
            } catch let error as PGCloneCLIError {
                return PGCloneError(.invalidConfiguration, error.message)
            } catch {
                return PGCloneError.from(error)
            }
        }
        let listener = Task {
            for await signal in signals {
                if let first = received.withLock({ value -> UnixSignal? in
                    defer { if value == nil { value = signal } }
                    return value
                }) {
                    report("received \(signal) while cleaning up after \(first); still cleaning up")
                } else {
                    report("received \(signal); stopping and cleaning up")
                    execution.cancel()
                }
            }
        }
        let error = await execution.value
        listener.cancel()
        if let signal = received.withLock({ $0 }) {
            if let error { report("error: \(error)") }
            return 128 + signal.rawValue
        }
        guard let error = error as? PGCloneError else { return 0 }
        report("error: \(error.message)")
        return exitCode(for: error.code)
    }

    static func exitCode(for code: PGCloneError.Code) -> Int32 {
        switch code {
        case .invalidConfiguration: 2
        case .refused: 3
        case .lockHeld: 4
        default: 1
        }
    }

    static func report(_ line: String) {
        FileHandle.standardError.write(Data("pgclone: \(line)\n".utf8))
    }

    static func fail(_ message: String, code: Int32) -> Never {
        report("error: \(message)")
        exit(code)
    }
}
