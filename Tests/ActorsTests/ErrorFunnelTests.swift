import PGCloneActors
import PGCloneMetrics
import PGCloneStreams
import Testing

/// Every error reaches the user through one funnel: its code decides the exit status and the job's
/// outcome, its message is one line, and what libpq and pg_restore said under it stays with it.
@Suite struct ErrorFunnelTests {
    /// DESIGN.md's exit codes and METRICS.md's outcomes, code by code.
    static let expected: [PGCloneError.Code: (exitCode: Int32, outcome: Outcome)] = [
        .invalidConfiguration: (2, .invalidConfiguration),
        .insufficientPrivilege: (2, .invalidConfiguration),
        .refused: (3, .invalidConfiguration),
        .lockHeld: (4, .lockBusy),
        .databaseUnavailable: (1, .databaseError),
        .databaseError: (1, .databaseError),
        .objectNotFound: (1, .storageError),
        .storageFailed: (1, .storageError),
        .dumpFailed: (1, .databaseError),
        .corruptDump: (1, .storageError),
        .restoreFailed: (1, .restoreErrors),
        .swapFailed: (1, .databaseError),
        .hookFailed: (1, .hookFailed),
        .cancelled: (130, .aborted),
        .internalError: (1, .internalError),
    ]

    @Test(arguments: PGCloneError.Code.allCases)
    func everyCodeHasItsExitCodeAndOutcome(code: PGCloneError.Code) throws {
        let expected = try #require(Self.expected[code], "no expectation for \(code)")
        let disposition = code.disposition(signal: nil)
        #expect(disposition.exitCode == expected.exitCode)
        #expect(disposition.outcome == expected.outcome)
    }

    @Test func theTableCoversEveryCodeAndSignalsGive128PlusN() {
        #expect(Set(Self.expected.keys) == Set(PGCloneError.Code.allCases))
        #expect(PGCloneError.Code.cancelled.disposition(signal: 15).exitCode == 143)
        #expect(PGCloneError.Code.cancelled.disposition(signal: 1).exitCode == 129)
    }

    @Test func libpqErrorsNameTheStepAndKeepTheirFields() {
        let lost = PGCloneError.from(
            LibPQError(sqlState: "57P01", message: "terminating connection due to administrator command", connectionLost: true),
            step: "restoring into \"d__temp\"",
            target: .unchanged("d")
        )
        #expect(lost.code == .databaseUnavailable)
        #expect(lost.description == "restoring into \"d__temp\": the connection to PostgreSQL was lost (terminating connection due to administrator command); \"d\" is unchanged")
        let failed = PGCloneError.from(
            LibPQError(sqlState: "42501", message: "permission denied", detail: "the detail", hint: "the hint", statement: "DROP DATABASE \"x\""),
            step: "cleaning up"
        )
        #expect(failed.code == .databaseError)
        #expect(failed.description == "cleaning up: permission denied")
        #expect(failed.details == [.init("detail", "the detail"), .init("hint", "the hint"), .init("statement", "DROP DATABASE \"x\"")])
        #expect(failed.causes.first?.hasPrefix("LibPQError: permission denied") == true)
        // An error that already names its state keeps it; one that does not gets the caller's.
        let refused = PGCloneError(.insufficientPrivilege, "no", target: .refusingConnections("d", advice: "a"))
        #expect(PGCloneError.from(refused, target: .unchanged("d")).target == .refusingConnections("d", advice: "a"))
        #expect(PGCloneError.from(CancellationError(), target: .unchanged("d")).description == "interrupted; \"d\" is unchanged")
    }

    @Test func controlCharactersInAMessageStayOnOneLine() {
        let error = PGCloneError(.objectNotFound, "no dump shop/20261126T075200.123456Z.de\nfault.dump\u{1B}[2J in .pgclone/")
        #expect(error.description == "no dump shop/20261126T075200.123456Z.de\\nfault.dump\\u{1B}[2J in .pgclone/")
        #expect(!error.description.contains("\n"))
    }
}
