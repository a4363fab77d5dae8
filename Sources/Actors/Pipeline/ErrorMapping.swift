import PGCloneStreams
import Subprocess

/// pgclone's version, recorded in every dump's metadata.
package let pgcloneVersion = "0.1.0"

extension PGCloneError {
    /// `error` as the one line the user sees, with `dump` naming the stored object where it matters.
    package static func from(_ error: any Error, dump: DumpKey? = nil, target: String? = nil) -> PGCloneError {
        let unchanged = target.map { "; \"\($0)\" is unchanged" } ?? ""
        switch error {
        case var error as PGCloneError:
            if !unchanged.isEmpty && !error.message.hasSuffix(" is unchanged") {
                error.message += unchanged
            }
            return error
        case let error as DumpFormatError:
            let object = dump.map { "the dump \($0)" } ?? "the dump"
            return PGCloneError(.corruptDump, "\(object) \(error)\(unchanged)", cause: error)
        case let error as RestoreFailure:
            return PGCloneError(.restoreFailed, "\(error.message)\(unchanged)", cause: error)
        case let error as LibPQError:
            return PGCloneError(.databaseError, "\(error.message)\(unchanged)", cause: error)
        case let error as SubprocessError:
            if error.code == .executableNotFound {
                return PGCloneError(
                    .invalidConfiguration,
                    "\(error): install the PostgreSQL client programs of the server's version, or set PGCLONE_PG_BIN_DIR",
                    cause: error
                )
            }
            return PGCloneError(.databaseError, "\(error)\(unchanged)", cause: error)
        case is CancellationError:
            return PGCloneError(.cancelled, "interrupted\(unchanged)")
        case let error as ZstdError:
            return PGCloneError(.dumpFailed, "compression failed: \(error)", cause: error)
        default:
            return PGCloneError(.databaseError, "\(error)\(unchanged)")
        }
    }
}
