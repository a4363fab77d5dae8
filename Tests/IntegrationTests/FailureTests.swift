import Foundation
import PGCloneActors
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// Failures leave nothing behind: no dump in storage, no temporary database, the target as it was,
/// and one line saying what went wrong.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct FailureTests {
    @Test func dumpOfAMissingDatabaseLeavesNothing() async throws {
        let pgclone = try PGCloneHarness()
        let missing = TestEnvironment.uniqueName("missing")
        let result = try await pgclone.run(["dump", "--database", pgclone.server.url(missing)])
        #expect(result.exitCode == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1, "\(result)")
        #expect(result.errorLines.first?.contains("database \"\(missing)\" does not exist") == true, "\(result)")
        #expect(!result.stderr.contains(pgclone.server.password))
        #expect(pgclone.storedFiles().isEmpty)
    }

    /// A connection option libpq refuses before connecting is a wrong command line (exit 2), for
    /// the database dumped as for the maintenance database.
    @Test func aConnectionOptionLibpqRefusesIsAConfigurationError() async throws {
        let pgclone = try PGCloneHarness()
        for (option, said) in [
            ("sslmode=bogus", "invalid sslmode value: \"bogus\""),
            ("connect_timeout=abc", "invalid integer value \"abc\" for connection option \"connect_timeout\""),
        ] {
            let url = pgclone.server.url("postgres") + "?" + option
            for arguments in [
                ["dump", "--database", url], ["ls", "--local", "--database", url],
                ["restore", ":snap", "--database", url], ["copy", ":snap", "--database", url],
            ] {
                let result = try await pgclone.run(arguments)
                #expect(result.exitCode == 2, "\(result)")
                #expect(result.errorLines.first?.contains(said) == true, "\(result)")
                #expect(!result.stderr.contains(pgclone.server.password))
            }
        }
        let service = try await pgclone.run(["dump"], environment: ["PGSERVICE": "nosuch", "DATABASE_URL": nil])
        #expect(service.exitCode == 2, "\(service)")
        #expect(service.errorLines.first?.hasSuffix("definition of service \"nosuch\" not found") == true, "\(service)")
        #expect(pgclone.storedFiles().isEmpty)
    }

    /// An archive pg_restore rejects at once while 64 MiB of it are still coming: what pg_restore
    /// said is the error, not that it stopped reading.
    @Test func anArchivePgRestoreRejectsIsReportedInItsWords() async throws {
        let pgclone = try PGCloneHarness()
        let target = TestEnvironment.uniqueName("reject_dst")
        let bomb = try await ZstdFixtures.encode(Array("PGDMP".utf8) + Array(repeating: 0, count: 64 << 20))
        try pgclone.store(Data(bomb), as: "bomb/20261129T000000.000000Z.default.dump")
        let result = try await pgclone.restore("bomb", into: target)
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines == [
                """
                pgclone: error: pg_restore exited with status 1: unsupported version (0.0) in file header; \
                \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await pgclone.server.databases(startingWith: target).isEmpty)
    }

    @Test func aDumpWhosePgDumpIsKilledLeavesNothing() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("killed")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE big AS SELECT i, repeat(md5(i::text), 8) AS payload FROM generate_series(1, 400000) AS i",
            database: source
        )
        async let dumping = pgclone.run(["dump", "--database", server.url(source)])
        // Wait until the dump is streaming into its hidden temporary file, then kill pg_dump.
        var killed: [Int32] = []
        for _ in 0..<3000 where killed.isEmpty {
            if pgclone.storedFiles().contains(where: { $0.hasSuffix(".partial") }) {
                killed = pgclone.signal(SIGKILL, processesMatching: ["pg_dump"])
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let result = try await dumping
        #expect(!killed.isEmpty, "pg_dump finished before it could be killed")
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.errorLines == ["pgclone: error: pg_dump was killed by signal 9: it printed no message"])
        #expect(pgclone.storedFiles().isEmpty)
        #expect(try await pgclone.run(["ls"]).stdout.isEmpty)
    }

    /// A dump whose session the server ends (`pg_terminate_backend`, a failover) says why, from
    /// pg_dump's `detail:` line: it said only "… failed: PQgetResult() failed.".
    @Test func aDumpWhoseSessionIsTerminatedSaysWhy() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("terminated")
        try await server.createDatabase(source)
        let (result, terminated) = try await pgclone.dumpEndingItsSession(source, as: server)
        #expect(terminated, "pg_dump finished before its session could be terminated")
        #expect(result.exitCode == 1, "\(result)")
        // Which of libpq's calls sees the end, and whether the server's FATAL arrives before the
        // socket closes, depends on timing: either way, the line gives the reason.
        let line = try #require(result.errorLines.first, "\(result)")
        #expect(result.errorLines.count == 1, "\(result)")
        #expect(
            line.hasPrefix(
                #"pgclone: error: pg_dump exited with status 1: Dumping the contents of table "big" failed: "#
            ),
            "\(result)"
        )
        #expect(
            line.hasSuffix("() failed. FATAL: terminating connection due to administrator command")
                || line.hasSuffix("() failed. server closed the connection unexpectedly"),
            "\(result)"
        )
        #expect(pgclone.storedFiles().isEmpty)
    }

    /// A mistyped local storage location holds no dumps, as a new one does: `ls` says it does not
    /// exist, and a restore says so in its error.
    @Test func aStorageLocationThatDoesNotExistIsNamed() async throws {
        let pgclone = try PGCloneHarness()
        let missing = try pgclone.makeDirectory("store") + "/mistyped"
        let listed = try await pgclone.run(["ls", "--storage-location", missing])
        #expect(listed.exitCode == 0, "\(listed)")
        #expect(listed.stdout.isEmpty)
        #expect(
            listed.stderrLines == ["pgclone: warning: \(missing) does not exist: no dump was made there"],
            "\(listed)"
        )
        let restored = try await pgclone.run(
            ["restore", "app", "--storage-location", missing, "--database", pgclone.server.url("app")]
        )
        #expect(restored.exitCode != 0, "\(restored)")
        #expect(
            restored.errorLines == [
                """
                pgclone: error: no dumps of database \"app\" in \(missing); \(missing) does not exist (a dump makes \
                it); is --storage-location right?
                """
            ],
            "\(restored)"
        )
        #expect(FileManager.default.fileExists(atPath: missing) == false)
    }

    @Test func aWrongPgBinDirIsAConfigurationErrorNotAnotherVersion() async throws {
        let pgclone = try PGCloneHarness()
        let (target, key, fingerprint) = try await prepare(pgclone)
        let line = """
            pgclone: error: PGCLONE_PG_BIN_DIR=/nonexistent has no pg_dump and pg_restore; set it to the bin \
            directory of PostgreSQL's client programs
            """
        let restore = try await pgclone.run(
            ["restore", key, "--database", pgclone.server.url(target)],
            environment: ["PGCLONE_PG_BIN_DIR": "/nonexistent"]
        )
        #expect(restore.exitCode == 2, "\(restore)")
        #expect(restore.errorLines == [line + "; \"\(target)\" is unchanged"])
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
        #expect(try await pgclone.server.tableFingerprints(target) == fingerprint)
        let dump = try await pgclone.run(
            ["dump", "--database", pgclone.server.url(target)],
            environment: ["PGCLONE_PG_BIN_DIR": "/nonexistent"]
        )
        #expect(dump.exitCode == 2, "\(dump)")
        #expect(dump.errorLines == [line])
        #expect(pgclone.storedFiles() == [key], "\(pgclone.storedFiles())")
    }

    /// A target with known content, and a valid dump of another database to damage.
    private func prepare(
        _ pgclone: PGCloneHarness
    ) async throws -> (target: String, key: String, fingerprint: [String: String]) {
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("bad_src")
        let target = TestEnvironment.uniqueName("bad_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 50000) AS i",
            database: source
        )
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE existing (v text); INSERT INTO existing VALUES ('untouched')",
            database: target
        )
        let key = try await pgclone.dump(source)
        return (target, key, try await server.tableFingerprints(target))
    }

    private func expectFailedRestore(
        _ pgclone: PGCloneHarness,
        key: String,
        target: String,
        fingerprint: [String: String],
        errorLine: (String) -> Bool
    ) async throws {
        let result = try await pgclone.restore(key, into: target)
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.errorLines.count == 1, "\(result)")
        #expect(errorLine(result.errorLines.first ?? ""), "\(result)")
        #expect(try await pgclone.server.tableFingerprints(target) == fingerprint)
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    @Test func aCorruptDumpFailsAndLeavesTheTargetAlone() async throws {
        let pgclone = try PGCloneHarness()
        let (target, key, fingerprint) = try await prepare(pgclone)
        var bytes = try pgclone.storedData(key)
        // The last frame's content checksum, just before the index: every block decodes, the end
        // does not verify.
        let indexLength = try #require(try ArchiveIndexTests.index(of: [UInt8](bytes))).skippableFrame().count
        bytes[bytes.count - indexLength - 2] ^= 0xFF
        let corrupt = key.replacingOccurrences(of: ".default.", with: ".corrupt.")
        try pgclone.store(bytes, as: corrupt)
        try await expectFailedRestore(pgclone, key: corrupt, target: target, fingerprint: fingerprint) {
            $0 == """
                pgclone: error: the dump \(corrupt) is corrupt (restored data doesn't match checksum); \"\(target)\" \
                is unchanged
                """
        }
        // Damage in the middle is caught wherever it surfaces first, zstd or pg_restore.
        var damaged = try pgclone.storedData(key)
        for index in (damaged.count / 2)..<(damaged.count / 2 + 256) { damaged[index] ^= 0x55 }
        let middle = key.replacingOccurrences(of: ".default.", with: ".damaged.")
        try pgclone.store(damaged, as: middle)
        try await expectFailedRestore(pgclone, key: middle, target: target, fingerprint: fingerprint) {
            $0.hasPrefix("pgclone: error: ") && $0.hasSuffix("\"\(target)\" is unchanged")
        }
    }

    @Test func aTruncatedDumpFailsAndLeavesTheTargetAlone() async throws {
        let pgclone = try PGCloneHarness()
        let (target, key, fingerprint) = try await prepare(pgclone)
        let bytes = try pgclone.storedData(key)
        let truncated = key.replacingOccurrences(of: ".default.", with: ".truncated.")
        try pgclone.store(bytes.prefix(bytes.count * 2 / 3), as: truncated)
        try await expectFailedRestore(pgclone, key: truncated, target: target, fingerprint: fingerprint) {
            $0 == """
                pgclone: error: the dump \(truncated) is truncated: its zstd stream ends in the middle of a frame; \
                \"\(target)\" is unchanged
                """
        }
    }

    @Test func aFileThatIsNoDumpFailsAndLeavesTheTargetAlone() async throws {
        let pgclone = try PGCloneHarness()
        let (target, key, fingerprint) = try await prepare(pgclone)
        let notADump = key.replacingOccurrences(of: ".default.", with: ".text.")
        try pgclone.store(Data("hello, I am a text file\n".utf8), as: notADump)
        try await expectFailedRestore(pgclone, key: notADump, target: target, fingerprint: fingerprint) {
            $0 == """
                pgclone: error: the dump \(notADump) is not a pgclone dump or a pg_dump custom-format archive: it is \
                text beginning \"hello, I am a text file\"; \"\(target)\" is unchanged
                """
        }
    }

    @Test func pgRestoreErrorsFailBeforeTheSwapUnlessIgnored() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("err_src")
        let target = TestEnvironment.uniqueName("err_dst")
        let role = TestEnvironment.uniqueName("gone")
        try await server.createDatabase(source)
        try await server.createDatabase(target)
        try await server.psql(
            "CREATE TABLE existing (v text); INSERT INTO existing VALUES ('untouched')",
            database: target
        )
        let fingerprint = try await server.tableFingerprints(target)
        // A policy names its role in its definition (neither --no-owner nor --no-acl removes it);
        // once the role is gone, pg_restore fails that one statement and restores the rest.
        try await server.psql(
            """
            CREATE ROLE \(role);
            CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2);
            CREATE POLICY p ON t TO \(role) USING (true);
            """,
            database: source
        )
        let key = try await pgclone.dump(source)
        try await server.psql("DROP POLICY p ON t; DROP ROLE \(role);", database: source)

        // A user whose desktop speaks German (LC_ALL, LANGUAGE=de, as Debian's sets it): pg_restore's
        // messages, which pgclone reads, are in English all the same (they were translated, and
        // its error went unread).
        let failed = try await pgclone.restore(
            key,
            into: target,
            environment: ["LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8"]
        )
        #expect(failed.exitCode == 1, "\(failed)")
        #expect(
            failed.errorLines == [
                """
                pgclone: error: pg_restore reported 1 error (first: could not execute query: ERROR: role \
                \"\(role)\" does not exist); \"\(target)\" is unchanged
                """
            ]
        )
        #expect(failed.stderr.contains("pgclone: warning:   statement: CREATE POLICY p ON public.t"), "\(failed)")
        #expect(failed.stderr.contains("pgclone: warning:   toc entry: from TOC entry "), "\(failed)")
        // The first error's lines stay under the error line too.
        #expect(
            failed.stderr.contains("\npgclone: statement: CREATE POLICY p ON public.t TO \(role) USING (true);\n"),
            "\(failed)"
        )
        #expect(try await server.tableFingerprints(target) == fingerprint)
        #expect(try await server.databases(startingWith: target) == [target])

        let accepted = try await pgclone.restore(key, into: target, ["--ignore-restore-errors"])
        #expect(accepted.exitCode == 0, "\(accepted)")
        #expect(accepted.stderr.contains("pgclone: warning: pg_restore: could not execute query: ERROR: role"))
        #expect(try await server.psql("SELECT count(*) FROM t", database: target) == "2")
    }
}
