import Logging
import PGCloneActors
import Synchronization
import UnixSignals

extension Main {
    /// Runs `command`; the first SIGINT, SIGTERM or SIGHUP (a closed terminal) cancels it (it then
    /// cleans up), later ones are only acknowledged, so clean-up is never cut short. Returns its
    /// error and the signal, if any.
    static func run(
        _ command: any PGCloneSubcommand,
        context: RunContext,
        say: Reporter
    ) async -> ((any Error & Sendable)?, UnixSignal?) {
        let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm, .sighup)
        let received = Mutex<UnixSignal?>(nil)
        // Both tasks end within this function: the command is awaited, the listener cancelled.
        let execution = Task { () -> (any Error & Sendable)? in
            do {
                try await command.execute(context)
                return nil
            } catch let error as PGCloneCLIError {
                return PGCloneError(.invalidConfiguration, error.message)
            } catch {
                return PGCloneError.from(error)
            }
        }
        let listener = Task {
            for await signal in signals {
                if let first = received.withLock({ $0 }) {
                    say(.warning, "received \(signal) while cleaning up after \(first); still cleaning up")
                } else if context.isCommitted {
                    // Past the point of no return (the swap committed): the command has succeeded
                    // and only cleans up; stopping it now would only leave more behind.
                    say(
                        .warning,
                        """
                        received \(signal) after the swap had committed; the restore has succeeded and finishes its \
                        clean-up
                        """
                    )
                } else {
                    received.withLock { $0 = signal }
                    say(.warning, "received \(signal); stopping and cleaning up")
                    execution.cancel()
                }
            }
        }
        let error = await execution.value
        listener.cancel()
        return (error, received.withLock { $0 })
    }
}
