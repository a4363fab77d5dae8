import PGCloneActors
import PGCloneMetrics
import PGCloneS3
import PGCloneStreams
import Subprocess
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

    /// A signal that came while a command failed for another reason changes neither its exit
    /// status nor its outcome: only an interruption exits with 128 + N.
    @Test(arguments: PGCloneError.Code.allCases)
    func onlyCancellationTakesTheSignalsExitCode(code: PGCloneError.Code) throws {
        let expected = try #require(Self.expected[code])
        let signalled = code.disposition(signal: 15)
        #expect(signalled.exitCode == (code == .cancelled ? 143 : expected.exitCode))
        #expect(signalled.outcome == expected.outcome)
    }

    static let key = DumpKey(parsing: "shop/20261126T075200.123456Z.default.dump")!

    /// A dump that cannot be read is named, and its own words follow; the step is not put before
    /// them (the message says what was read).
    @Test func aDumpFormatErrorIsACorruptDumpThatNamesIt() {
        let named = PGCloneError.from(
            DumpFormatError.truncated,
            step: "restoring into \"shop__temp\"",
            dump: Self.key,
            target: .unchanged("shop")
        )
        #expect(named.code == .corruptDump)
        #expect(named.message == "the dump \(Self.key) is truncated: its zstd stream ends in the middle of a frame")
        #expect(named.message.hasPrefix("the dump shop/20261126T075200.123456Z.default.dump is truncated"))
        #expect(named.target == .unchanged("shop"))
        #expect(named.causes == ["DumpFormatError: is truncated: its zstd stream ends in the middle of a frame"])
        let unnamed = PGCloneError.from(DumpFormatError.unrecognized("it starts with \"PK\""))
        #expect(unnamed.code == .corruptDump)
        let notADump = "is not a pgclone dump or a pg_dump custom-format archive: it starts with \"PK\""
        #expect(unnamed.message == "the dump \(notADump)")
        #expect(unnamed.target == nil)
    }

    /// pg_restore's failure keeps its message (it says it is pg_restore's) and its first error's lines.
    @Test func aRestoreFailureKeepsItsMessageAndTheFirstErrorsLines() async throws {
        let log = await RestoreJudgementTests.log(RestoreJudgementTests.tableExists + RestoreJudgementTests.ignored(1))
        let failure = try #require(throws: RestoreFailure.self) { try RestoreJudgementTests.judge(.exited(1), log) }
        let error = PGCloneError.from(failure, step: "restoring into \"shop__temp\"", target: .unchanged("shop"))
        #expect(error.code == .restoreFailed)
        #expect(error.message == failure.message)
        #expect(error.message.hasPrefix("pg_restore reported 1 error (first: "))
        #expect(
            error.details == [
                .init("toc entry", "from TOC entry 215; 1259 16386 TABLE t app"),
                .init("statement", "CREATE TABLE public.t ("),
            ]
        )
        #expect(error.target == .unchanged("shop"))
        #expect(error.cause is RestoreFailure)
    }

    /// A missing pg_dump or pg_restore is a configuration problem, with what to do about it.
    @Test func aMissingProgramIsInvalidConfigurationWithTheHint() async throws {
        let missing = try await #require(throws: SubprocessError.self) {
            _ = try await Subprocess.run(.name("pgclone-test-no-such-program"), output: .discarded)
        }
        #expect(missing.code == .executableNotFound)
        let error = PGCloneError.from(missing, step: "dumping \"shop\"")
        #expect(error.code == .invalidConfiguration)
        #expect(error.message.hasPrefix("Executable \"pgclone-test-no-such-program\" is not found"), "\(error)")
        #expect(
            error.message.hasSuffix(
                ": install the PostgreSQL client programs of the server's version, or set PGCLONE_PG_BIN_DIR"
            )
        )
        #expect(error.code.disposition(signal: nil).exitCode == 2)

        // Any other failure of running it is the step's.
        let unstartable = try await #require(throws: SubprocessError.self) {
            _ = try await Subprocess.run(.name("echo"), arguments: ["more than a byte"], output: .string(limit: 1))
        }
        #expect(unstartable.code == .outputLimitExceeded)
        let other = PGCloneError.from(unstartable, step: "dumping \"shop\"", target: .unchanged("shop"))
        #expect(other.code == .databaseError)
        #expect(other.message == "dumping \"shop\": \(unstartable)")
        #expect(other.target == .unchanged("shop"))
    }

    /// The S3 module's own errors: a setting the user controls is a configuration error (exit 2,
    /// nothing done), anything else a storage failure; the message is the module's, unprefixed.
    @Test func s3ClientErrorsAreConfigurationOrStorage() {
        let setting = PGCloneError.from(
            S3ClientError(.configuration, "PGCLONE_S3_STALL_TIMEOUT must be a number of seconds (it is \"x\")"),
            step: "restoring into \"shop__temp\""
        )
        #expect(setting.code == .invalidConfiguration)
        #expect(setting.message == "PGCLONE_S3_STALL_TIMEOUT must be a number of seconds (it is \"x\")")
        #expect(setting.code.disposition(signal: nil).exitCode == 2)
        let spool = PGCloneError.from(S3ClientError(.unavailable, "cannot write an upload part to /tmp: No space left"))
        #expect(spool.code == .storageFailed)
        #expect(spool.message == "cannot write an upload part to /tmp: No space left")
    }

    @Test func cancellationIsAnInterruptionWhateverTheStep() {
        let error = PGCloneError.from(CancellationError(), step: "swapping \"shop\"", target: .replaced("shop"))
        #expect(error.code == .cancelled)
        #expect(error.message == "interrupted")
        #expect(error.description == "interrupted; \"shop\" holds the restored database")
    }

    @Test func aCompressionErrorIsADumpFailure() {
        let zstd = ZstdError(code: -64, name: "Allocation error : not enough memory")
        let error = PGCloneError.from(zstd, step: "dumping \"shop\"")
        #expect(error.code == .dumpFailed)
        #expect(error.message == "compression failed: zstd: Allocation error : not enough memory")
        #expect(error.cause as? ZstdError == zstd)
    }

    /// What pgclone did not expect is a bug, said with the step, its cause kept for debug.
    @Test func anUnexpectedErrorIsInternalWithTheStep() {
        struct Unexpected: Error, CustomStringConvertible {
            var description: String { "something odd" }
        }
        let error = PGCloneError.from(
            Unexpected(),
            step: "listing \"s3://b/\"",
            target: .unknown("shop", advice: "look")
        )
        #expect(error.code == .internalError)
        #expect(error.message == "listing \"s3://b/\": something odd")
        #expect(error.target == .unknown("shop", advice: "look"))
        #expect(error.causes == ["Unexpected: something odd"])
    }

    /// A PGCloneError passes through as it is: its own code and words, no step before them; the
    /// caller's target only if it has none.
    @Test func aPGCloneErrorPassesThrough() {
        let bare = PGCloneError(.lockHeld, "another restore of \"shop\" holds its lock")
        let passed = PGCloneError.from(bare, step: "restoring into \"shop__temp\"", target: .unchanged("shop"))
        #expect(passed.code == .lockHeld)
        #expect(passed.message == "another restore of \"shop\" holds its lock")
        #expect(passed.target == .unchanged("shop"))
        let placed = PGCloneError(.swapFailed, "no", target: .replaced("shop"))
        #expect(PGCloneError.from(placed, target: .unchanged("shop")).target == .replaced("shop"))
        #expect(PGCloneError.from(placed).target == .replaced("shop"))
    }

    @Test func libpqErrorsNameTheStepAndKeepTheirFields() {
        let lost = PGCloneError.from(
            LibPQError(
                sqlState: "57P01",
                message: "terminating connection due to administrator command",
                connectionLost: true
            ),
            step: "restoring into \"d__temp\"",
            target: .unchanged("d")
        )
        #expect(lost.code == .databaseUnavailable)
        #expect(
            lost.description == """
                restoring into \"d__temp\": the connection to PostgreSQL was lost (terminating connection due to \
                administrator command); \"d\" is unchanged
                """
        )
        let failed = PGCloneError.from(
            LibPQError(
                sqlState: "42501",
                message: "permission denied",
                detail: "the detail",
                hint: "the hint",
                statement: "DROP DATABASE \"x\""
            ),
            step: "cleaning up"
        )
        #expect(failed.code == .databaseError)
        #expect(failed.description == "cleaning up: permission denied")
        #expect(
            failed.details == [
                .init("detail", "the detail"), .init("hint", "the hint"), .init("statement", "DROP DATABASE \"x\""),
            ]
        )
        #expect(failed.causes.first?.hasPrefix("LibPQError: permission denied") == true)
        // An error that already names its state keeps it; one that does not gets the caller's.
        let refused = PGCloneError(.insufficientPrivilege, "no", target: .refusingConnections("d", advice: "a"))
        #expect(PGCloneError.from(refused, target: .unchanged("d")).target == .refusingConnections("d", advice: "a"))
        #expect(
            PGCloneError.from(CancellationError(), target: .unchanged("d")).description
                == "interrupted; \"d\" is unchanged"
        )
    }

    @Test func controlCharactersInAMessageStayOnOneLine() {
        let error = PGCloneError(
            .objectNotFound,
            "no dump shop/20261126T075200.123456Z.de\nfault.dump\u{1B}[2J in .pgclone/"
        )
        #expect(error.description == "no dump shop/20261126T075200.123456Z.de\\nfault.dump\\u{1B}[2J in .pgclone/")
        #expect(!error.description.contains("\n"))
        // A tab keeps a line one line, and a hook's columns as they were.
        #expect("a\tb\r".escapingControlCharacters == "a\tb\\r")
    }
}
