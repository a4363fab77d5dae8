import NIOCore
package import PGCloneStreams
import Subprocess

/// The pg_restore stage: the archive streamed into pg_restore's stdin while its stderr is read
/// concurrently; errors are counted and kept with their statements, and the exit status checked.
///
/// Streaming means one job (`-j 1`): pg_restore cannot restore in parallel from stdin.
package struct RestoreRunner: Sendable {
    package var tools: PostgresTools
    /// Where to restore: the temporary database, or nowhere (`verify` reads the archive through
    /// pg_restore to its end, writing the script to /dev/null).
    package var connection: ConnectionSettings?

    /// Told when writing into pg_restore's stdin waits for the pipe (PostgreSQL is the limit).
    package var stdinWaiting: (@Sendable (Bool) -> Void)?

    package init(tools: PostgresTools, connection: ConnectionSettings?) {
        self.tools = tools
        self.connection = connection
    }

    /// What pg_restore did.
    package struct Report: Sendable {
        /// Errors pg_restore reported (it carries on after most of them).
        package var errorCount: Int
        /// The first errors, each with its statement.
        package var errors: [ChildStderr.Entry]
        /// Archive bytes written into pg_restore's stdin.
        package var bytesWritten: Int
    }

    /// `--verbose` makes pg_restore name the TOC entry each error belongs to.
    var arguments: [String] {
        let target = connection.map { "--dbname=\($0.childConnectionString)" } ?? "--file=/dev/null"
        return ["--no-owner", "--no-acl", "--no-password", "--verbose", target]
    }

    /// Restores the archive in `input`. Throws `.restoreFailed` if pg_restore exits with a failure
    /// status — unless `ignoreErrors` is set and all it reported were errors on single statements
    /// ("errors ignored on restore"), in which case the report lists them. A failure of `input`
    /// (a corrupt dump, a storage error) is rethrown as is, and pg_restore is stopped.
    package func restore(from input: ByteStream, ignoreErrors: Bool) async throws -> Report {
        let stdinWaiting = self.stdinWaiting
        let result = try await Subprocess.run(
            ChildProcess.executable(tools.pgRestore),
            arguments: Arguments(arguments),
            environment: connection.map(ChildProcess.environment) ?? .inherit,
            platformOptions: ChildProcess.platformOptions,
            input: .inputWriter,
            output: .discarded,
            error: .sequence
        ) { execution in
            async let log = ChildProcess.collect(execution.standardError, program: "pg_restore")
            let writer = execution.standardInputWriter
            var written = 0
            var stoppedReading = false
            for try await chunk in input {
                do {
                    stdinWaiting?(true)
                    defer { stdinWaiting?(false) }
                    _ = try await writer.write(chunk.readableBytesSpan)
                } catch {
                    // pg_restore exited (its exit status says why) or closed its stdin.
                    stoppedReading = true
                    input.cancel()
                    break
                }
                written += chunk.readableBytes
            }
            try? await writer.finish()
            return (written, stoppedReading, try await log)
        }
        // Stopped because pgclone was interrupted: that, not the child's status, is the news.
        try Task.checkCancellation()
        let (written, stoppedReading, log) = result.closureResult
        let report = Report(errorCount: log.ignoredErrorCount ?? log.errorCount, errors: log.entries, bytesWritten: written)
        let statementErrorsOnly = log.ignoredErrorCount != nil && !stoppedReading
        if result.terminationStatus.isSuccess && !stoppedReading {
            return report
        }
        if result.terminationStatus == .exited(1) && statementErrorsOnly && ignoreErrors {
            return report
        }
        let what: String
        if statementErrorsOnly {
            let count = report.errorCount
            what = "pg_restore reported \(count) error\(count == 1 ? "" : "s") (first: \(log.summary ?? "?"))"
        } else if result.terminationStatus.isSuccess {
            what = "pg_restore stopped reading the archive before its end"
        } else {
            what = "pg_restore \(ChildProcess.describe(result.terminationStatus)): \(log.summary ?? "it printed no message")"
        }
        throw RestoreFailure(message: what, report: report, acceptable: statementErrorsOnly)
    }
}

/// pg_restore failed; `report` has its errors.
package struct RestoreFailure: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var report: RestoreRunner.Report
    /// Only statement errors, which `--ignore-restore-errors` would accept.
    package var acceptable: Bool
    package var description: String { message }
}
