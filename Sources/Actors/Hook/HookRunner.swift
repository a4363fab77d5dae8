import Foundation
import Glibc
package import Logging
package import PGCloneMetrics
import PGCloneStreams
import Subprocess
import SystemPackage

/// The Hook stage: runs hooks, shell commands (`/bin/sh -c`), in order, each with its database in
/// the environment (`DATABASE_URL`, `PGDATABASE` and the other `PG*` variables), so `python
/// manage.py migrate` or `psql -f anonymise.sql` work unchanged. Their output goes to the log, line
/// by line, prefixed with the hook; the first that fails stops the operation.
///
/// An actor: it owns the running hook (its process, in the watchdog's process group, which an
/// interrupt signals) and the hook metrics of its job; one hook runs at a time. It makes no
/// blocking call (the child's output is read asynchronously), so it runs on the shared pool.
package actor HookRunner {
    package enum Phase: String, Sendable {
        case preDump = "pre-dump"
        case preSwap = "pre-swap"
    }

    private let metrics: PGCloneMetrics
    private let logger: Logger

    package init(metrics: PGCloneMetrics, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    /// Runs `commands` against the database `environment` describes. Throws `.hookFailed` with the
    /// hook's exit status and last lines of output.
    package func run(_ commands: [String], phase: Phase, environment: [String: String?]) async throws {
        for (index, command) in commands.enumerated() {
            let label = "\(phase.rawValue) hook \(index + 1)"
            let started = ContinuousClock.now
            // What the hook is given or inherits that is secret (the database's password as
            // PGPASSWORD, AWS keys) is shown in none of its lines.
            let given =
                URLPassword.secretValues(of: environment)
                + URLPassword.secretValues(of: ProcessInfo.processInfo.environment.mapValues { Optional($0) })
            // As they are, and as shown once their control characters are escaped.
            let secrets = Array(Set(given + given.map(\.escapingControlCharacters)))
            // A hook's command may hold a connection string: its password is not shown.
            let shown = URLPassword.redactingAll(in: URLPassword.masking(secrets, in: command))
            logger.info("running \(label): \(shown)")
            var updates: [Environment.Key: String?] = [:]
            for (name, value) in environment { updates[Environment.Key(stringLiteral: name)] = .some(value) }
            updates["PGCLONE_HOOK_PHASE"] = phase.rawValue
            // In the watchdog's process group, so that it dies with pgclone. On SIGINT or SIGTERM
            // the whole tree the hook started gets SIGTERM (the group's: the child does not lead
            // it), the shell SIGKILL 5 s later.
            var options = try ChildProcess.platformOptions()
            options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: .seconds(5))]
            let result = try await withTaskCancellationHandler {
                try await runHook(command, label: label, secrets: secrets, updates: updates, options: options)
            } onCancel: {
                ChildWatchdog.shared.signalGroup(SIGTERM)
            }
            let succeeded = result.terminationStatus.isSuccess
            metrics.recordHook(phase.metricsPhase, duration: .now - started, outcome: succeeded ? .success : .failure)
            // Stopped because pgclone was interrupted: that, not the child's status, is the news.
            try Task.checkCancellation()
            guard succeeded else {
                let tail = result.closureResult.suffix(3).joined(separator: " / ")
                throw PGCloneError(
                    .hookFailed,
                    """
                    \(label) (\(shown)) \
                    \(ChildProcess.describe(result.terminationStatus))\(tail.isEmpty ? "" : ": \(tail)")
                    """
                )
            }
        }
    }

    /// `/bin/sh -c command`, its output logged line by line; returns its last lines.
    private func runHook(
        _ command: String,
        label: String,
        secrets: [String],
        updates: [Environment.Key: String?],
        options: PlatformOptions
    ) async throws -> ExecutionResult<[String], SequenceOutput, Subprocess.CombinedErrorOutput> {
        let logger = self.logger
        return try await Subprocess.run(
            .path(FilePath("/bin/sh")),
            arguments: ["-c", command],
            environment: .inherit.updating(updates),
            platformOptions: options,
            input: .none,
            output: .sequence,
            error: .combinedWithOutput
        ) { execution in
            var output = HookOutput(label: label, secrets: secrets, logger: logger)
            for try await buffer in execution.standardOutput {
                buffer.withUnsafeBytes { output.append($0) }
            }
            output.finish()
            return output.tail
        }
    }
}

extension HookRunner.Phase {
    var metricsPhase: HookPhase { self == .preDump ? .preDump : .preSwap }
}

/// A hook's output, logged line by line; the last lines are kept for the error message.
private struct HookOutput {
    let label: String
    /// Values shown as `****` wherever they appear.
    let secrets: [String]
    let logger: Logger
    var line: [UInt8] = []
    var tail: [String] = []
    /// What the lines so far say of the next (a secret's YAML block, an `env` item's value).
    var multiline = MultilineSecrets()

    /// The longest line shown, in characters.
    static let lineLimit = 2000

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        // Kept a secret's length past the limit, so that one that straddles it is masked whole.
        let kept = Self.lineLimit + URLPassword.longestForm(of: secrets)
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                emit()
            } else if line.count < kept {
                line.append(byte)
            }
        }
    }

    mutating func finish() {
        if !line.isEmpty { emit() }
    }

    private mutating func emit() {
        // A hook's output may repeat its command's secrets (psql: "unrecognized option '--token=…'").
        // As shown (control characters escaped: `echo` may have turned a password's `\r` into one),
        // each secret masked in every form it may take, or the whole line hidden.
        let shown = URLPassword.masking(secrets, in: String(decoding: line, as: UTF8.self).escapingControlCharacters)
        let masked =
            URLPassword.stillShows(secrets, in: shown)
            ? "**** (a line that shows a secret in a form pgclone does not mask part by part)"
            : multiline.redacting(shown)
        let text = String(masked.prefix(Self.lineLimit))
        line.removeAll(keepingCapacity: true)
        logger.info("\(label): \(text)")
        tail.append(text)
        if tail.count > 10 { tail.removeFirst() }
    }
}
