import PGCloneS3
import PGCloneStreams
import Subprocess

extension PGCloneError {
    /// `error` as the error the user sees: the one funnel every lower-level error goes through.
    /// - Parameters:
    ///   - step: what pgclone was doing (`restoring into "shop__temp"`), put before messages that
    ///     do not say it themselves (libpq's, a child's).
    ///   - dump: the stored object, for errors about its content.
    ///   - target: the state of the database being restored, when the caller knows it (an error
    ///     that already carries one keeps it).
    package static func from(
        _ error: any Error,
        step: String? = nil,
        dump: DumpKey? = nil,
        target: TargetState? = nil
    ) -> PGCloneError {
        let prefix = step.map { "\($0): " } ?? ""
        var result: PGCloneError
        switch error {
        case let error as PGCloneError:
            result = error
        case let error as DumpFormatError:
            let object = dump.map { "the dump \($0)" } ?? "the dump"
            result = PGCloneError(.corruptDump, "\(object) \(error)", cause: error)
        case let error as PieceFailure:
            let object = dump.map { "the dump \($0)" } ?? "the dump"
            result = PGCloneError(.corruptDump, "\(object) \(error)", cause: error)
        case let error as RestoreFailure:
            result = PGCloneError(.restoreFailed, error.message, details: error.details, cause: error)
        case let error as LibPQError:
            result = PGCloneError(
                error.connectionLost ? .databaseUnavailable : .databaseError,
                prefix
                    + (error.connectionLost
                        ? "the connection to PostgreSQL was lost (\(error.message))" : error.message),
                details: error.details,
                cause: error
            )
        case let error as SubprocessError:
            if error.code == .executableNotFound {
                result = PGCloneError(
                    .invalidConfiguration,
                    """
                    \(error): install the PostgreSQL client programs of the server's version, or set \
                    PGCLONE_PG_BIN_DIR
                    """,
                    cause: error
                )
            } else {
                result = PGCloneError(.databaseError, prefix + "\(error)", cause: error)
            }
        case let error as S3ClientError:
            result = PGCloneError(
                error.kind == .configuration ? .invalidConfiguration : .storageFailed,
                error.message,
                cause: error.cause
            )
        case is CancellationError:
            result = PGCloneError(.cancelled, "interrupted")
        case let error as ZstdError:
            result = PGCloneError(.dumpFailed, "compression failed: \(error)", cause: error)
        default:
            result = PGCloneError(.internalError, prefix + "\(error)", cause: error as? any Error & Sendable)
        }
        if result.target == nil { result.target = target }
        return result
    }

    /// The chain of underlying errors, outermost first, for `--log-level debug`.
    package var causes: [String] {
        var chain: [String] = []
        var next = cause
        while let error = next, chain.count < 8 {
            chain.append("\(type(of: error)): \(error)")
            next = (error as? PGCloneError)?.cause
        }
        return chain
    }
}

extension LibPQError {
    /// DETAIL, HINT, CONTEXT and the statement, as lines under the error.
    package var details: [PGCloneError.Detail] {
        [("detail", detail), ("hint", hint), ("context", context), ("statement", statement)].compactMap { label, text in
            text.map { PGCloneError.Detail(label, $0) }
        }
    }
}
