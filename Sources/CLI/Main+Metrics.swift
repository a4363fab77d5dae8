import ArgumentParser
import Foundation
import Logging
import NIOCore
import PGCloneActors
import PGCloneMetrics
import PGCloneS3
import PGCloneStreams
import UnixSignals

extension Main {
    /// Sets up metrics and their delivery around the command, and ends the job summary with the
    /// command's outcome.
    static func runWithMetrics(_ command: any PGCloneSubcommand) async -> Int32 {
        let environment = ProcessInfo.processInfo.environment
        let logger: Logger
        var linger = Duration.zero
        let address: (host: String, port: Int)?
        let pushgateway: String?
        let textfileDirectory: String?
        // Progress only for a person watching: stderr a terminal, and not --quiet.
        let status =
            isatty(STDERR_FILENO) == 1 && !command.common.quiet && command.showsProgress
                && command.common.logFormat?.lowercased() != "json" ? StatusLine() : nil
        do {
            logger = try command.common.makeLogger(status: status)
            address = try Settings.metricsAddress(command.common, environment: environment)
            pushgateway = try Settings.pushgateway(command.common)
            textfileDirectory = try Settings.metricsTextfile(command.common)
            if let text = command.common.metricsLinger {
                guard let duration = parseDuration(text) else {
                    throw PGCloneError(
                        .invalidConfiguration,
                        "--metrics-linger takes a duration like 15s or 2m (it is \"\(text)\")"
                    )
                }
                linger = duration
            }
        } catch let error as PGCloneCLIError {
            failUsage(error.message, printingJSON: command.printsJSON)
        } catch {
            failUsage(PGCloneError.from(error).message, printingJSON: command.printsJSON)
        }
        let metrics = PGCloneMetrics(build: buildInfo)
        var server: MetricsServer?
        if let address {
            do {
                server = try await MetricsServer.start(host: address.host, port: address.port, metrics: metrics)
                logger.debug("serving metrics on http://\(address.host):\(server!.port)/metrics")
            } catch {
                // NIO's IOError names the system call it wrapped: the reason alone is the news.
                let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
                failUsage(
                    "cannot serve metrics on \(address.host):\(address.port): \(reason)",
                    printingJSON: command.printsJSON
                )
            }
        }
        let delivery = MetricsDelivery(
            pushgateway: pushgateway,
            textfileDirectory: textfileDirectory,
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
        report(
            failure,
            exitCode: disposition.exitCode,
            command: command,
            partialResult: context.partialResult,
            logger: logger,
            say: say
        )
        return disposition.exitCode
    }

    static var buildInfo: PGCloneMetrics.BuildInfo {
        PGCloneMetrics.BuildInfo(
            version: pgcloneVersion,
            libraries: [
                ("swift", swiftVersion), ("libpq", libpqVersion), ("libzstd", zstdVersion), ("libcurl", curlVersion),
            ]
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
}
