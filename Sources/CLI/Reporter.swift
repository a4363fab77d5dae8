import Logging
import PGCloneActors

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
            Main.report("\(detail.label): \(detail.text.escapingControlCharacters)")
        }
    }

    func callAsFunction(_ level: Logger.Level, _ message: String) {
        if let logger {
            logger.log(level: level, "\(message)")
        } else if let status, level != .error {
            status.log("pgclone: \(message)")
        } else {
            status?.close()
            Main.report(level == .error ? "error: \(message)" : message)
        }
    }
}
