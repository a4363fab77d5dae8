import NIOCore
package import PGCloneStreams
import Subprocess

/// The pg_restore stage: the archive streamed into pg_restore's stdin while its stderr is read
/// concurrently; errors are counted and kept with their statements, and the exit status checked.
///
/// Streaming means one job: pg_restore cannot restore in parallel from stdin. `restore --jobs N`
/// spools the archive to a file first and runs `pg_restore -j N` on it.
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
    func arguments(jobs: Int? = nil, file: String? = nil) -> [String] {
        let target = connection.map { "--dbname=\($0.childConnectionString)" } ?? "--file=/dev/null"
        return ["--no-owner", "--no-acl", "--no-password", "--verbose", target] + (jobs.map { ["--jobs=\($0)"] } ?? [])
            + (file.map { [$0] } ?? [])
    }

    /// Restores the archive in `input`. Throws `.restoreFailed` if pg_restore exits with a failure
    /// status — unless `ignoreErrors` is set and all it reported were errors on single statements
    /// ("errors ignored on restore"), in which case the report lists them. A failure of `input`
    /// (a corrupt dump, a storage error) is rethrown as is, and pg_restore is stopped.
    package func restore(from input: ByteStream, ignoreErrors: Bool) async throws -> Report {
        let stdinWaiting = self.stdinWaiting
        let result = try await Subprocess.run(
            ChildProcess.executable(tools.pgRestore),
            arguments: Arguments(arguments()),
            environment: connection.map(ChildProcess.environment) ?? .inherit,
            platformOptions: try ChildProcess.platformOptions(),
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
        return try judge(result.terminationStatus, log, bytesWritten: written, stoppedReading: stoppedReading, ignoreErrors: ignoreErrors)
    }

    /// Restores the archive file at `path` with `jobs` parallel jobs (`pg_restore -j`, which needs
    /// a file it can seek in). Errors are judged as for a streamed restore.
    package func restore(file path: String, jobs: Int, ignoreErrors: Bool) async throws -> Report {
        let result = try await Subprocess.run(
            ChildProcess.executable(tools.pgRestore),
            arguments: Arguments(arguments(jobs: jobs, file: path)),
            environment: connection.map(ChildProcess.environment) ?? .inherit,
            platformOptions: try ChildProcess.platformOptions(),
            input: .none,
            output: .discarded,
            error: .sequence
        ) { execution in
            try await ChildProcess.collect(execution.standardError, program: "pg_restore")
        }
        try Task.checkCancellation()
        return try judge(result.terminationStatus, result.closureResult, bytesWritten: 0, stoppedReading: false, ignoreErrors: ignoreErrors)
    }

    /// The report of a pg_restore that ended with `status`, or the failure it amounts to.
    private func judge(
        _ status: TerminationStatus,
        _ log: ChildStderr,
        bytesWritten: Int,
        stoppedReading: Bool,
        ignoreErrors: Bool
    ) throws -> Report {
        // The error lines, counted as they come: pg_restore's own "errors ignored on restore: N"
        // counts each error twice with --jobs (the worker's and the leader's tally, PostgreSQL 15).
        let count = log.errorCount > 0 ? log.errorCount : log.ignoredErrorCount ?? 0
        let report = Report(errorCount: count, errors: log.entries, bytesWritten: bytesWritten)
        let statementErrorsOnly = log.ignoredErrorCount != nil && !stoppedReading
        if status.isSuccess && !stoppedReading {
            return report
        }
        if status == .exited(1) && statementErrorsOnly && ignoreErrors {
            return report
        }
        let what: String
        if statementErrorsOnly {
            let count = report.errorCount
            what = "pg_restore reported \(count) error\(count == 1 ? "" : "s") (first: \(log.summary ?? "?"))"
        } else if status.isSuccess {
            what = "pg_restore stopped reading the archive before its end"
        } else {
            what = "pg_restore \(ChildProcess.describe(status)): \(log.summary ?? "it printed no message")"
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
    /// The first error's TOC entry, DETAIL, HINT, CONTEXT and statement.
    package var details: [PGCloneError.Detail] { report.errors.first?.details ?? [] }
}
