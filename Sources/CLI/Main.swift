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
            fail(PGCloneCommand.message(for: error) + " (see pgclone --help)", code: 2)
        }
        exit(await runWithMetrics(command))
    }

    /// Sets up metrics and their delivery around the command, and ends the job summary with the
    /// command's outcome.
    private static func runWithMetrics(_ command: any PGCloneSubcommand) async -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        let logger: Logger
        var linger = Duration.zero
        let address: (host: String, port: Int)?
        // Progress only for a person watching: stderr a terminal, and not --quiet.
        let status = isatty(STDERR_FILENO) == 1 && !command.common.quiet && command.showsProgress
            && command.common.logFormat?.lowercased() != "json" ? StatusLine() : nil
        do {
            logger = try command.common.makeLogger(status: status)
            address = try Settings.metricsAddress(command.common, environment: environment)
            if let text = command.common.metricsLinger {
                guard let duration = parseDuration(text) else {
                    throw PGCloneError(.invalidConfiguration, "--metrics-linger takes a duration like 15s or 2m (it is \"\(text)\")")
                }
                linger = duration
            }
        } catch let error as PGCloneCLIError {
            fail(error.message, code: 2)
        } catch {
            fail(PGCloneError.from(error).message, code: 2)
        }
        let metrics = PGCloneMetrics(build: buildInfo)
        var server: MetricsServer?
        if let address {
            do {
                server = try await MetricsServer.start(host: address.host, port: address.port, metrics: metrics)
                logger.debug("serving metrics on http://\(address.host):\(server!.port)/metrics")
            } catch {
                fail("cannot serve metrics on \(address.host):\(address.port): \(error)", code: 2)
            }
        }
        let delivery = MetricsDelivery(
            pushgateway: command.common.pushgateway,
            textfileDirectory: command.common.metricsTextfile,
            metrics: metrics,
            logger: logger
        )
        let context = RunContext(logger: logger, metrics: metrics, delivery: delivery, status: status)
        let say = Reporter(logger: command.common.logFormat?.lowercased() == "json" ? logger : nil, status: status)
        let progress = status.map { status in Task { await ProgressReporter(metrics: metrics, status: status).run() } }
        let (error, signal) = await run(command, context: context, say: say)
        progress?.cancel()
        await progress?.value
        status?.close()
        // The one funnel: the error's code decides the exit status, the job's outcome and what is
        // said; a signal that stopped the command makes it an interruption.
        var failure = error.map { PGCloneError.from($0) }
        if signal != nil { failure?.code = .cancelled }
        let disposition = failure?.code.disposition(signal: signal?.rawValue) ?? (0, .success)
        if let job = metrics.currentJob {
            job.finish(disposition.outcome)
            await delivery.finished(job, success: failure == nil)
        }
        if let server {
            if signal == nil && linger > .zero {
                logger.debug("serving the final metrics for \(linger.formattedSeconds)")
                try? await Task.sleep(for: linger)
            }
            await server.shutdown()
        }
        guard let failure else {
            if let signal {
                let name = type(of: command).configuration.commandName ?? "the command"
                say(.warning, "\(name) had committed when \(signal) arrived: it succeeded")
            }
            return 0
        }
        report(failure, exitCode: disposition.exitCode, command: command, logger: logger, say: say)
        return disposition.exitCode
    }

    /// Says how the command failed: the error line, the lines under it (DETAIL, HINT…), the
    /// causes at `--log-level debug`, and with `--json` the same as a JSON document on stdout.
    private static func report(_ failure: PGCloneError, exitCode: Int32, command: any PGCloneSubcommand, logger: Logger, say: Reporter) {
        say.error(failure.description, details: failure.details)
        for cause in failure.causes {
            logger.debug("caused by \(cause.escapingControlCharacters)")
        }
        guard command.printsJSON else { return }
        try? JSONOutput.print(
            JSONOutput.Failure(
                error: .init(
                    code: failure.code.rawValue,
                    message: failure.description,
                    exitCode: exitCode,
                    database: failure.target?.database,
                    databaseState: failure.target?.name,
                    details: Dictionary(failure.details.map { ($0.label, $0.text) }, uniquingKeysWith: { first, _ in first })
                )
            )
        )
    }

    static var buildInfo: PGCloneMetrics.BuildInfo {
        PGCloneMetrics.BuildInfo(
            version: pgcloneVersion,
            libraries: [("swift", swiftVersion), ("libpq", libpqVersion), ("libzstd", zstdVersion), ("libcurl", curlVersion)]
        )
    }

    static var swiftVersion: String {
        #if compiler(>=6.4)
        "6.4"
        #elseif compiler(>=6.3)
        "6.3"
        #else
        "6.2"
        #endif
    }

    /// The command line, with `--wait=DURATION` spelled as ArgumentParser reads it (a flag whose
    /// value is optional is not something it can declare).
    static func arguments() -> [String] {
        CommandLine.arguments.dropFirst().flatMap { argument -> [String] in
            // `=` keeps a value that starts with "-" a value.
            argument.hasPrefix("--wait=") ? ["--wait", "--wait-timeout=" + argument.dropFirst("--wait=".count)] : [argument]
        }
    }

    /// Runs `command`; the first SIGINT, SIGTERM or SIGHUP (a closed terminal) cancels it (it then cleans up), later ones are
    /// only acknowledged, so clean-up is never cut short. Returns its error and the signal, if any.
    private static func run(_ command: any PGCloneSubcommand, context: RunContext, say: Reporter) async -> ((any Error & Sendable)?, UnixSignal?) {
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
                    say(.warning, "received \(signal) after the swap had committed; the restore has succeeded and finishes its clean-up")
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

    /// Says how the command ends: `pgclone: error: …` lines, or, with `--log-format json`, records
    /// from the logger, so a log shipper reads every line of the run the same way.
    struct Reporter: Sendable {
        let logger: Logger?
        /// Kept above these lines while the command runs; gone for the last error.
        let status: StatusLine?

        /// The error line and the lines under it; with `--log-format json`, one record whose
        /// metadata holds them.
        func error(_ message: String, details: [PGCloneError.Detail]) {
            if let logger {
                var metadata: Logger.Metadata = [:]
                for detail in details { metadata[detail.label] = .string(detail.text) }
                logger.error("\(message)", metadata: metadata)
                return
            }
            self(.error, message)
            for detail in details {
                report("\(detail.label): \(detail.text.escapingControlCharacters)")
            }
        }

        func callAsFunction(_ level: Logger.Level, _ message: String) {
            if let logger {
                logger.log(level: level, "\(message)")
            } else if let status, level != .error {
                status.log("pgclone: \(message)")
            } else {
                status?.close()
                report(level == .error ? "error: \(message)" : message)
            }
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
