import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// What PostgreSQL said under an error — HINT, DETAIL, the statement — reaches the user with it,
/// in the text output and in `--json`.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct ErrorDetailTests {
    private func json(_ result: CommandResult) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// A command line pgclone cannot read still gets its JSON document with `--json`.
    @Test func aWrongCommandLineWithJSONPrintsTheError() async throws {
        let pgclone = try PGCloneHarness.offline()
        // The last quotes a URL with its password, which is not shown.
        for arguments in [
            ["ls", "--json", "--bogus"], ["verify", "--json"],
            ["restore", "--json", "-j", "-dpostgresql://u:Sekret9@127.0.0.1:5/x", "x"],
        ] {
            let result = try await pgclone.run(arguments)
            #expect(!result.stdout.contains("Sekret9") && !result.stderr.contains("Sekret9"), "\(result)")
            #expect(result.exitCode == 2, "\(result)")
            let error = json(result)["error"] as? [String: Any]
            #expect(error?["code"] as? String == "invalid_configuration", "\(result)")
            #expect(error?["exit_code"] as? Int == 2, "\(result)")
            #expect(result.errorLines == ["pgclone: error: \(error?["message"] as? String ?? "")"], "\(result)")
        }
    }

    @Test func anExtensionOnlyASuperuserMayCreateKeepsItsHint() async throws {
        let server = try PostgresServer.shared
        let app = try PGCloneHarness(server: try await server.createRole("app", attributes: "CREATEDB"))
        let source = TestEnvironment.uniqueName("hint_src")
        let target = TestEnvironment.uniqueName("hint_dst")
        try await server.createDatabase(source)
        try await server.psql("CREATE EXTENSION pageinspect; CREATE TABLE t (v int)", database: source)
        // Dumped by the superuser into the application's storage (the harness's directory).
        let dumped = try await app.run(["dump", "--database", server.url(source)])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let appKey = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let result = try await app.restore(appKey, into: target, ["--json"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines.first?.contains(
                "only a superuser may create extension \"pageinspect\", which the dump holds"
            ) == true,
            "\(result)"
        )
        #expect(result.stderrLines.contains("pgclone: hint: Must be superuser to create this extension."), "\(result)")
        #expect(
            result.stderrLines.contains {
                $0.hasPrefix("pgclone: statement: CREATE EXTENSION IF NOT EXISTS pageinspect")
            },
            "\(result)"
        )
        let error = json(result)["error"] as? [String: Any]
        #expect(error?["code"] as? String == "restore_failed")
        #expect(
            (error?["details"] as? [String: String])?["hint"] == "Must be superuser to create this extension.",
            "\(result)"
        )
        #expect(try await server.databases(startingWith: target).isEmpty)
    }

    @Test func aForeignKeyThatFailsKeepsItsDetailAndStatement() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("detail_src")
        let target = TestEnvironment.uniqueName("detail_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE u (uid int PRIMARY KEY); CREATE TABLE o (uid int REFERENCES u); INSERT INTO u VALUES \
            (1); INSERT INTO o VALUES (1)
            """,
            database: source
        )
        // Without u's rows, o's foreign key cannot be restored.
        let dumped = try await pgclone.run(["dump", "--database", server.url(source), "--exclude-table-data", "u"])
        #expect(dumped.exitCode == 0, "\(dumped)")
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let result = try await pgclone.restore(key, into: target, ["--json"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(
            result.errorLines.first?.contains("violates foreign key constraint \"o_uid_fkey\"") == true,
            "\(result)"
        )
        #expect(
            result.stderrLines.contains("pgclone: detail: Key (uid)=(1) is not present in table \"u\"."),
            "\(result)"
        )
        #expect(
            result.stderrLines.contains { $0.hasPrefix("pgclone: statement: ALTER TABLE ONLY public.o") },
            "\(result)"
        )
        let error = json(result)["error"] as? [String: Any]
        let details = error?["details"] as? [String: String]
        #expect(details?["detail"] == "Key (uid)=(1) is not present in table \"u\".", "\(result)")
        #expect(details?["statement"]?.hasPrefix("ALTER TABLE ONLY public.o") == true, "\(result)")
        #expect(error?["database_state"] as? String == "unchanged")
        #expect(error?["exit_code"] as? Int == 1)

        // With JSON logs, the error is one record and its lines are its metadata, even with -q.
        let logged = try await pgclone.restore(key, into: target, ["--log-format", "json", "-q"])
        #expect(logged.exitCode == 1, "\(logged)")
        let records = logged.stderrLines.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let errors = records.filter { $0["level"] as? String == "error" }
        #expect(errors.count == 1, "\(logged)")
        let metadata = errors.first?["metadata"] as? [String: String]
        #expect(metadata?["detail"] == "Key (uid)=(1) is not present in table \"u\".", "\(logged)")
        // Every record has the same keys, metadata empty or not.
        #expect(!records.isEmpty && records.allSatisfy { Set($0.keys) == ["time", "level", "message", "metadata"] })
    }
}
