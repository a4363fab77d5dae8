import Logging
import PGCloneActors

extension Main {
    /// Says how the command failed: the error line, the lines under it (DETAIL, HINT…), the
    /// causes at `--log-level debug`, and with `--json` the same as a JSON document on stdout,
    /// with what the command had done before it failed (`partialResult`), if it says.
    static func report(
        _ failure: PGCloneError,
        exitCode: Int32,
        command: any PGCloneSubcommand,
        partialResult: (any Encodable & Sendable)? = nil,
        logger: Logger,
        say: Reporter
    ) {
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
                    details: Dictionary(
                        failure.details.map { ($0.label, $0.text) },
                        uniquingKeysWith: { first, _ in first }
                    )
                ),
                result: partialResult
            )
        )
    }
}
