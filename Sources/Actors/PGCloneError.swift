package import PGCloneMetrics
import PGCloneStreams

/// An error pgclone reports to its user: what kind of failure (``Code``, which decides the exit
/// code and the job's outcome), one line saying what happened and how to fix it, the state of the
/// database it was about, and the server's or pg_restore's details (DETAIL, HINT, CONTEXT, the
/// statement) that psql would print under it.
///
/// `message` never contains secrets: connection strings are shown without passwords, and libpq's
/// messages never include one.
package struct PGCloneError: Error, Sendable, CustomStringConvertible {
    package var code: Code
    package var message: String
    /// What state the database being restored (or copied) is in after the failure.
    package var target: TargetState?
    /// Lines shown under the error: `detail`, `hint`, `context`, `statement`.
    package var details: [Detail]
    /// The lower-level error, shown with `--log-level debug`.
    package var cause: (any Error & Sendable)?

    package init(
        _ code: Code,
        _ message: String,
        target: TargetState? = nil,
        details: [Detail] = [],
        cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.cause = cause
    }

    /// The one line the user sees: the message and the target's state, control characters escaped.
    package var description: String {
        (message + (target.map { "; \($0.sentence)" } ?? "")).escapingControlCharacters
    }

    /// One line under the error, as psql labels them.
    package struct Detail: Sendable, Hashable, Codable {
        /// `detail`, `hint`, `context`, `statement`.
        package var label: String
        package var text: String

        package init(_ label: String, _ text: String) {
            self.label = label
            self.text = text
        }
    }

    /// The state of the database an operation was about, as pgclone found it after the failure
    /// (never assumed).
    package enum TargetState: Sendable, Equatable {
        /// It is as it was before the command.
        case unchanged(String)
        /// The restored database is in place (the failure came after the swap).
        case replaced(String)
        /// It still refuses connections (a swap was interrupted and could not be undone): `advice`
        /// says what to do.
        case refusingConnections(String, advice: String)
        /// pgclone could not find out (the server was unreachable).
        case unknown(String, advice: String)

        package var sentence: String {
            switch self {
            case .unchanged(let name): "\"\(name)\" is unchanged"
            case .replaced(let name): "\"\(name)\" holds the restored database"
            case .refusingConnections(let name, let advice): "\"\(name)\" refuses connections: \(advice)"
            case .unknown(let name, let advice): "the state of \"\(name)\" is unknown: \(advice)"
            }
        }

        /// The database it is about.
        package var database: String {
            switch self {
            case .unchanged(let name), .replaced(let name), .refusingConnections(let name, _), .unknown(let name, _):
                name
            }
        }

        /// `unchanged`, `replaced`, `refusing_connections`, `unknown`, for `--json`.
        package var name: String {
            switch self {
            case .unchanged: "unchanged"
            case .replaced: "replaced"
            case .refusingConnections: "refusing_connections"
            case .unknown: "unknown"
            }
        }
    }

    /// What kind of failure; bounded, so it can label metrics and map to exit codes.
    package enum Code: String, CaseIterable, Sendable, CustomStringConvertible {
        /// Bad flags, settings, names or input: nothing was done.
        case invalidConfiguration = "invalid_configuration"
        /// The role lacks a privilege the command needs (found before anything was done).
        case insufficientPrivilege = "insufficient_privilege"
        /// A guard (`allow_dump`, `allow_restore`, `allow_copy`) refused the command.
        case refused
        /// Another restore of the same database holds its lock.
        case lockHeld = "lock_held"
        /// No connection to PostgreSQL could be made, or it was lost.
        case databaseUnavailable = "database_unavailable"
        /// A statement failed.
        case databaseError = "database_error"
        /// The dump key or database name matches nothing in storage or on the server.
        case objectNotFound = "object_not_found"
        /// Reading or writing the storage location failed.
        case storageFailed = "storage_failed"
        /// pg_dump (or compression) failed.
        case dumpFailed = "dump_failed"
        /// The stored object is not a dump, or is truncated or corrupt.
        case corruptDump = "corrupt_dump"
        /// pg_restore failed or reported errors.
        case restoreFailed = "restore_failed"
        /// The swap could not be made.
        case swapFailed = "swap_failed"
        /// A pre-dump or pre-swap hook exited with a failure.
        case hookFailed = "hook_failed"
        /// Interrupted by SIGINT, SIGTERM or SIGHUP.
        case cancelled
        /// Something pgclone did not expect: a bug.
        case internalError = "internal_error"

        package var description: String { rawValue }

        /// What a command that failed with this code reports: its exit status (DESIGN.md's: 1
        /// failed, 2 usage, configuration or privileges, 3 refused by a guard, 4 locked, 128+N
        /// interrupted by signal N) and the job summary's outcome. The one place that decides both.
        package func disposition(signal: Int32?) -> (exitCode: Int32, outcome: Outcome) {
            switch self {
            case .invalidConfiguration: (2, .invalidConfiguration)
            case .insufficientPrivilege: (2, .invalidConfiguration)
            case .refused: (3, .invalidConfiguration)
            case .lockHeld: (4, .lockBusy)
            case .databaseUnavailable: (1, .databaseError)
            case .databaseError: (1, .databaseError)
            case .objectNotFound: (1, .storageError)
            case .storageFailed: (1, .storageError)
            case .dumpFailed: (1, .databaseError)
            case .corruptDump: (1, .storageError)
            case .restoreFailed: (1, .restoreErrors)
            case .swapFailed: (1, .databaseError)
            case .hookFailed: (1, .hookFailed)
            case .cancelled: (128 + (signal ?? 2), .aborted)
            case .internalError: (1, .internalError)
            }
        }
    }
}

extension PGCloneError {
    /// A storage error naming the system call's failure: `what: No space left on device` (`errno`
    /// at the time of the call).
    package static func storageFailed(_ what: String, hint: String = "") -> PGCloneError {
        PGCloneError(.storageFailed, "\(what): \(systemErrorMessage)\(hint.isEmpty ? "" : "; " + hint)")
    }
}

extension String {
    /// Folds a multi-line message (libpq's, pg_restore's) into one line.
    package var singleLine: String {
        split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// Control characters (a newline in a key, an escape sequence in a name) written as `\n`,
    /// `\u{1B}`…, so that what pgclone prints stays one line and cannot drive a terminal; a tab
    /// stays a tab (a hook's columns).
    package var escapingControlCharacters: String {
        guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
        var escaped = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\t"
            case _ where scalar.properties.generalCategory == .control:
                escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
