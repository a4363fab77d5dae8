import ArgumentParser
import CPGCloneSystem
import Foundation
import PGCloneActors
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

    /// Runs `command` until it ends or a signal arrives; returns the exit code.
    private static func run(_ command: any PGCloneSubcommand) async -> Int32 {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
        enum Event: Sendable {
            case finished((any Error & Sendable)?)
            case signal(UnixSignal)
        }
        return await withTaskGroup(of: Event?.self) { group in
            group.addTask {
                do {
                    try await command.execute()
                    return .finished(nil)
                } catch let error as PGCloneCLIError {
                    return .finished(PGCloneError(.invalidConfiguration, error.message))
                } catch {
                    return .finished(PGCloneError.from(error))
                }
            }
            group.addTask {
                for await signal in signals { return .signal(signal) }
                return nil
            }
            var received: UnixSignal?
            while let event = await group.next() {
                switch event {
                case .signal(let signal):
                    received = signal
                    report("received \(signal); stopping and cleaning up")
                    group.cancelAll()
                case .finished(let error):
                    group.cancelAll()
                    if let received {
                        if let error { report("error: \(error)") }
                        return 128 + received.rawValue
                    }
                    guard let error = error as? PGCloneError else { return 0 }
                    report("error: \(error.message)")
                    return exitCode(for: error.code)
                case nil:
                    continue
                }
            }
            return 1
        }
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
