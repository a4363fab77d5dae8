/// An error pgclone reports to its user: what kind of failure (``Code``, which decides the exit
/// code) and one line saying what happened and how to fix it.
///
/// `message` never contains secrets: connection strings are shown without passwords, and libpq's
/// messages never include one.
package struct PGCloneError: Error, Sendable, CustomStringConvertible {
    package var code: Code
    package var message: String
    /// The lower-level error, kept for `--log-level debug`.
    package var cause: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    package var description: String { message }

    /// What kind of failure; bounded, so it can label metrics and map to exit codes.
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String {
            case invalidConfiguration = "invalid_configuration"
            case refused
            case lockHeld = "lock_held"
            case databaseUnavailable = "database_unavailable"
            case databaseError = "database_error"
            case objectNotFound = "object_not_found"
            case storageFailed = "storage_failed"
            case dumpFailed = "dump_failed"
            case corruptDump = "corrupt_dump"
            case restoreFailed = "restore_failed"
            case swapFailed = "swap_failed"
            case hookFailed = "hook_failed"
            case cancelled
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        package var description: String { wrapped.rawValue }

        /// Bad flags, settings or names: nothing was done.
        package static let invalidConfiguration = Code(.invalidConfiguration)
        /// A guard (`allow_dump`, `allow_restore`) refused the command.
        package static let refused = Code(.refused)
        /// Another restore of the same database holds its lock.
        package static let lockHeld = Code(.lockHeld)
        /// No connection to PostgreSQL could be made.
        package static let databaseUnavailable = Code(.databaseUnavailable)
        /// A statement failed.
        package static let databaseError = Code(.databaseError)
        /// The dump key or database name matches nothing in storage.
        package static let objectNotFound = Code(.objectNotFound)
        /// Reading or writing the storage location failed.
        package static let storageFailed = Code(.storageFailed)
        /// pg_dump failed.
        package static let dumpFailed = Code(.dumpFailed)
        /// The stored object is not a dump, or is truncated or corrupt.
        package static let corruptDump = Code(.corruptDump)
        /// pg_restore failed or reported errors.
        package static let restoreFailed = Code(.restoreFailed)
        /// The swap could not be made; the target is as it was.
        package static let swapFailed = Code(.swapFailed)
        /// A pre-dump or pre-swap hook exited with a failure.
        package static let hookFailed = Code(.hookFailed)
        /// Interrupted by SIGINT, SIGTERM or SIGHUP.
        package static let cancelled = Code(.cancelled)
    }
}

extension String {
    /// Folds a multi-line message (libpq's, pg_restore's) into one line.
    package var singleLine: String {
        split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
