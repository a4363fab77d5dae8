import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// dump_configs and restore_configs in pgclone.yaml, overridden by flags and the environment.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct NamedConfigTests {
    @Test func excludeModelsKeepsTheTableButNotItsRows() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("cfg_src")
        let target = TestEnvironment.uniqueName("cfg_dst")
        try await server.createDatabase(source)
        try await server.psql(
            """
            CREATE TABLE auth_user (id int, email text); INSERT INTO auth_user VALUES (1, 'a@example.com');
            CREATE TABLE shop_order (id int); INSERT INTO shop_order VALUES (1), (2);
            """,
            database: source
        )
        try """
        dump_configs:
          default:
            exclude_models: [auth.User]
          orders_only:
            exclude_tables: [shop_order]
        restore_configs:
          default:
            pre_swap_hooks: "psql -X -q -c 'INSERT INTO shop_order VALUES (99)'"
          picky:
            dump_config: orders_only
        """.write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)

        let key = try await pgclone.dump(source)
        #expect(key.hasSuffix(".default.dump"))
        let restored = try await pgclone.restore(key, into: target)
        #expect(restored.exitCode == 0, "\(restored)")
        #expect(try await server.psql("SELECT count(*) FROM auth_user", database: target) == "0")
        // The default restore config's hook ran.
        #expect(
            try await server.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM shop_order", database: target)
                == "1,2,99"
        )

        let named = try await pgclone.run(["dump", "--database", server.url(source), "--config", "orders_only"])
        #expect(named.stdout.hasSuffix(".orders_only.dump\n"), "\(named)")
        // A flag overrides the config's list (here exclude_models); the hook flag overrides the
        // restore config's hooks.
        let flagged = try await pgclone.run(["dump", "--database", server.url(source), "--exclude-model", "shop.Order"])
        #expect(flagged.stdout.hasSuffix("._custom.dump\n"), "\(flagged)")
        let flaggedKey = flagged.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let restoredFlagged = try await pgclone.restore(flaggedKey, into: target, ["--pre-swap-hook", "true"])
        #expect(restoredFlagged.exitCode == 0, "\(restoredFlagged)")
        #expect(try await server.psql("SELECT count(*) FROM auth_user", database: target) == "1")
        #expect(try await server.psql("SELECT count(*) FROM shop_order", database: target) == "0")

        // A restore config that picks a dump config says so only of a key made with another.
        let namedKey = named.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for (source, warns) in [(namedKey, false), (key, true), (":\(source)", false)] {
            let picked = try await pgclone.restore(source, into: target, ["--config", "picky"])
            #expect(picked.exitCode == 0, "\(picked)")
            #expect(
                picked.stderr.contains("picks dumps made with dump config \"orders_only\"") == warns,
                "\(source): \(picked)"
            )
        }

        let unknown = try await pgclone.run(["dump", "--database", server.url(source), "--config", "nope"])
        #expect(unknown.exitCode == 2)
        #expect(
            unknown.errorLines == [
                """
                pgclone: error: there is no config \"nope\" in dump_configs of pgclone.yaml (it has default, \
                orders_only)
                """
            ]
        )
    }

    /// A config file that is a pipe (`--config-file <(envsubst < pgclone.yaml)`, as CI jobs write
    /// them) or /dev/null is read to its end; it has no size to read by.
    @Test func aConfigFileThatIsAPipeIsRead() async throws {
        let pgclone = try PGCloneHarness.offline()
        let piped = try await runCommand(
            "bash",
            ["-c", #""$0" ls --config-file <(printf 'lock_timeout: soon\n')"#, TestEnvironment.binary],
            workingDirectory: pgclone.directory
        )
        #expect(piped.exitCode == 2, "\(piped)")
        #expect(
            piped.errorLines.first?.contains("lock_timeout is \"soon\", which is not a duration") == true,
            "\(piped)"
        )
        let empty = try await pgclone.run(["ls", "--config-file", "/dev/null"])
        #expect(empty.exitCode == 0, "\(empty)")
    }

    /// A config file that is not valid YAML is said so with where and what, never its text (Yams
    /// quotes the file, a connection string's password with it).
    @Test func aYAMLErrorShowsNoneOfTheFile() async throws {
        let pgclone = try PGCloneHarness.offline()
        for (contents, problem) in [
            (
                "database: postgresql://app:SuperSecretPW1@h/db\nstorage_location: /a\nstorage_location: /b\n",
                "line 2: \"storage_location\" appears more than once"
            ),
            (
                "database: postgresql://app:SuperSecretPW1@h/db\nmemory_limit: [\n",
                "line 3, column 1: did not find expected"
            ),
        ] {
            try contents.write(toFile: pgclone.directory + "/bad.yaml", atomically: true, encoding: .utf8)
            let result = try await pgclone.run(["ls", "--config-file", "bad.yaml"])
            #expect(result.exitCode == 2, "\(result)")
            #expect(result.errorLines.count == 1, "\(result)")
            #expect(
                result.errorLines.first?.hasPrefix("pgclone: error: bad.yaml is not valid YAML: \(problem)") == true,
                "\(result)"
            )
            #expect(!result.stderr.contains("SuperSecretPW1"), "\(result)")
        }
    }

    @Test func timeoutsApplyToPgclonesOwnSQL() async throws {
        let pgclone = try PGCloneHarness()
        let target = TestEnvironment.uniqueName("timeouts")
        try "statement_timeout: 5min\nlock_timeout: soon\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        try pgclone.store(Data("x".utf8), as: "db/20240101T000000.000000Z.default.dump")
        let result = try await pgclone.restore("db", into: target)
        #expect(result.exitCode == 2)
        #expect(
            result.errorLines == [
                """
                pgclone: error: pgclone.yaml: lock_timeout is \"soon\", which is not a duration; write it like 30s, \
                5min or 0 (no limit)
                """
            ],
            "\(result)"
        )
        #expect(try await pgclone.server.databases(startingWith: target).isEmpty)
        try "statement_timeout: forever\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let forever = try await pgclone.run(["dump", "--database", pgclone.server.url("postgres")])
        #expect(forever.exitCode == 2)
        #expect(
            forever.errorLines == [
                """
                pgclone: error: pgclone.yaml: statement_timeout is \"forever\", which is not a duration; write it \
                like 30s, 5min or 0 (no limit)
                """
            ],
            "\(forever)"
        )
        try "lock_timeout: 99999999999h\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let huge = try await pgclone.run(["dump", "--database", pgclone.server.url("postgres")])
        #expect(huge.exitCode == 2, "\(huge)")
        #expect(
            huge.errorLines.first?.hasPrefix(
                "pgclone: error: pgclone.yaml: lock_timeout is \"99999999999h\", which is not a duration"
            ) == true,
            "\(huge)"
        )
        // A valid one reaches the server: 1 ms is too short for anything pgclone does.
        try "statement_timeout: 1ms\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        try await pgclone.server.createDatabase(target)
        let short = try await pgclone.run(["dump", "--database", pgclone.server.url(target)])
        #expect(short.exitCode == 1, "\(short)")
        #expect(short.errorLines.first?.contains("canceling statement due to statement timeout") == true, "\(short)")
    }

    @Test func theEnvironmentOverridesTheFile() async throws {
        let pgclone = try PGCloneHarness.offline()
        try "allow_restore: true\n".write(
            toFile: pgclone.directory + "/pgclone.yaml",
            atomically: true,
            encoding: .utf8
        )
        let refused = try await pgclone.run(["restore", "db"], environment: ["PGCLONE_ALLOW_RESTORE": "off"])
        #expect(refused.exitCode == 3)
        // A file pgclone cannot use: one line, exit 2.
        let wrongFiles = [
            (
                "dump_configs:\n  default:\n    exclude_modles: [auth.User]\n",
                """
                pgclone.yaml: unknown setting \"exclude_modles\" in dump_configs.default; the settings are \
                exclude_tables, exclude_models, pre_dump_hooks, exclude_extensions, no_owner, no_acl
                """
            ),
            // pgclone's own name for dumps made with content flags would share their series.
            (
                "dump_configs:\n  _custom:\n    no_acl: true\n",
                """
                pgclone.yaml: dump_configs cannot name a config _custom: it is what dumps made with content flags \
                and no --config are recorded as; give it another name
                """
            ),
            // YAML's null as a hook would run a command named "null".
            (
                "dump_configs:\n  default:\n    pre_dump_hooks: [~]\n",
                """
                pgclone.yaml: an item of dump_configs.default.pre_dump_hooks has no value (~ is YAML's null); write \
                one, or leave the key out
                """
            ),
        ]
        for (file, line) in wrongFiles {
            try file.write(toFile: pgclone.directory + "/pgclone.yaml", atomically: true, encoding: .utf8)
            let refused = try await pgclone.run(["ls"])
            #expect(refused.exitCode == 2, "\(refused)")
            #expect(refused.errorLines == ["pgclone: error: \(line)"], "\(refused)")
        }
    }
}
