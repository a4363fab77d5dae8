import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Pre-dump and pre-swap hooks, as django-pgclone's README promises them.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct HookTests {
    @Test func aPreSwapHookRunsAgainstTheTemporaryDatabase() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hook")
        let hook =
            #"psql -X -q -v ON_ERROR_STOP=1 -c "INSERT INTO marker VALUES ('hook saw ' || current_database())" && "#
            + #"echo "PGDATABASE=$PGDATABASE" && psql -X -At "$DATABASE_URL" -c 'SELECT count(*) FROM marker'"#
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        #expect(result.exitCode == 0, "\(result)")
        let rows = try await pgclone.server.psql("SELECT v FROM marker ORDER BY v", database: target)
        #expect(rows == "hook saw \(target)__temp\nnew")
        #expect(result.stderr.contains("pgclone: pre-swap hook 1: PGDATABASE=\(target)__temp"), "\(result)")
        #expect(result.stderr.contains("pgclone: pre-swap hook 1: 2"))
    }

    @Test func aFailingPreSwapHookLeavesTheTargetAlone() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hookfail")
        let result = try await pgclone.restore(
            key,
            into: target,
            [
                "--pre-swap-hook", "echo first hook", "--pre-swap-hook",
                "echo migrating; echo 'table missing' >&2; exit 3",
            ]
        )
        #expect(result.exitCode == 1)
        #expect(
            result.errorLines == [
                """
                pgclone: error: pre-swap hook 2 (echo migrating; echo 'table missing' >&2; exit 3) exited with \
                status 3: migrating / table missing; \"\(target)\" is unchanged
                """
            ],
            "\(result)"
        )
        #expect(try await pgclone.server.psql("SELECT v FROM marker", database: target) == "old")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    /// A hook's command may hold a connection string: its password is never shown.
    @Test func aPasswordInAHookIsNotShown() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hookpw")
        // The last one psql repeats in its own error, which pgclone shows too.
        let hook = """
            psql 'postgresql://someone:s3cr3t-pw@127.0.0.1:9/x' -c 'SELECT 1' 2>/dev/null; psql 'host=127.0.0.1 \
            port=9 password=an0ther-pw' 2>/dev/null; PGPASSWORD=th1rd-pw psql --api-token=f0urth-pw; exit 4
            """
        let result = try await pgclone.restore(key, into: target, ["--pre-swap-hook", hook, "--json"])
        #expect(result.exitCode == 1, "\(result)")
        #expect(!result.stderr.contains("s3cr3t-pw") && !result.stdout.contains("s3cr3t-pw"), "\(result)")
        for secret in ["an0ther-pw", "th1rd-pw", "f0urth-pw"] {
            #expect(!result.stderr.contains(secret) && !result.stdout.contains(secret), "\(result)")
        }
        #expect(result.stderr.contains("'--api-token=****'"), "psql's own error: \(result)")
        #expect(result.stderr.contains("postgresql://someone:****@127.0.0.1:9/x"), "\(result)")
        #expect(result.stderr.contains("password=****"), "\(result)")
    }

    /// The password pgclone hands a hook (PGPASSWORD, DATABASE_URL) and the secrets it inherits
    /// (AWS_SECRET_ACCESS_KEY) are shown in none of its lines, however the hook prints them: a
    /// failing `manage.py migrate` that prints its settings, or a script run with `set -x`.
    @Test func secretsAHookIsGivenAreNotShownWhenItPrintsThem() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hookenv")
        let password = pgclone.server.password
        // As it is, after KEY= (where the mask of KEY=value stopped at a space or ";"), in a URL,
        // in JSON (Python's, ASCII only), and straddling the longest line shown.
        // With a backslash-r that sh's echo turns into a carriage return, which pgclone shows as \r.
        let secret = #"in herited;Sé\rcret"9/x'%"#
        let python = """
            import json, os, shlex, urllib.parse as u; s = os.environ['AWS_SECRET_ACCESS_KEY']; \
            print(json.dumps(s)); print(u.quote(s, safe='')); print('x' * 1990 + s); print(u.quote_plus(s)); \
            print(u.quote(s)); print(''.join('%%%02x' % b for b in s.encode())); print(shlex.quote(s)); \
            print(repr(s)); print(s.replace(chr(39), chr(39) * 2))
            """
        let hook = """
            echo "{'PASSWORD': '$PGPASSWORD'}"; echo "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY"; \
            printf '%s\\n' '- name: DB_PASSWORD' '  value: helm-pw-7'; \
            python3 -c "\(python)"; set -x; : "$PGPASSWORD"; exit 3
            """
        let result = try await pgclone.restore(
            key,
            into: target,
            ["--pre-swap-hook", hook, "--json"],
            environment: ["AWS_SECRET_ACCESS_KEY": secret]
        )
        #expect(result.exitCode == 1, "\(result)")
        for shown in [password, secret, "herited", "S\\u00e9", "S%C3%A9", "S%c3%a9", "in%20her", "in+her", "%69%6e%20"]
        {
            #expect(!result.stderr.contains(shown) && !result.stdout.contains(shown), "\(shown): \(result)")
        }
        #expect(result.stderr.contains("pre-swap hook 1: {'PASSWORD': '****'}"), "\(result)")
        #expect(result.stderr.contains("pre-swap hook 1: AWS_SECRET_ACCESS_KEY=****\n"), "\(result)")
        // A value on the line after its name (Kubernetes' env, as `helm template` prints it).
        #expect(result.stderr.contains("pre-swap hook 1:   value: ****\n"), "\(result)")
        #expect(
            !result.stderrLines.contains {
                $0.contains("pre-swap hook 1: ") && !$0.contains("running ") && $0.contains("helm-pw-7")
            },
            "\(result)"
        )
        // What it cannot mask part by part (form-encoded, lowercase, shell-quoted, repr, SQL), it
        // hides line by line.
        let hidden = result.stderrLines.filter {
            $0.hasSuffix("a line that shows a secret in a form pgclone does not mask part by part)")
        }
        #expect(hidden.count >= 4, "\(result)")
        // The long line: its first 2,000 characters, the secret masked before they were cut.
        #expect(
            result.stderr.contains("pre-swap hook 1: " + String(repeating: "x", count: 1990) + "****\n"),
            "\(result)"
        )
    }

    /// stderr whose reader has gone (`pgclone … 2>&1 | head -1`) costs pgclone its messages, not
    /// its run: it wrote on and died of SIGILL (exit 132) in the middle of the restore.
    @Test func aClosedStderrDoesNotStopTheRestore() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("closedpipe")
        let script = #""$0" restore "$1" --database "$2" --pre-swap-hook 'seq 1 3000' 2>&1 | head -1"#
        let result = try await runCommand(
            "bash",
            ["-c", script + #"; exit "${PIPESTATUS[0]}""#, TestEnvironment.binary, key, pgclone.server.url(target)],
            workingDirectory: pgclone.directory
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(try await pgclone.server.markers(target) == "new")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
    }

    @Test func preDumpHooksRunBeforePgDumpAndAFailingOneMakesNoDump() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("predump")
        let target = TestEnvironment.uniqueName("predump_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE users (email text); INSERT INTO users VALUES ('real@example.com')",
            database: source
        )

        let failed = try await pgclone.run(["dump", "--database", server.url(source), "--pre-dump-hook", "exit 7"])
        #expect(failed.exitCode == 1)
        #expect(failed.errorLines == ["pgclone: error: pre-dump hook 1 (exit 7) exited with status 7"], "\(failed)")
        #expect(pgclone.storedFiles().isEmpty)

        let anonymise = #"psql -X -q -c "UPDATE users SET email = 'anonymous@example.com'""#
        let dumped = try await pgclone.run(["dump", "--database", server.url(source), "--pre-dump-hook", anonymise])
        #expect(dumped.exitCode == 0, "\(dumped)")
        #expect(dumped.stdout.hasSuffix("._custom.dump\n"))
        let key = dumped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await pgclone.restore(key, into: target).exitCode == 0)
        #expect(try await server.psql("SELECT email FROM users", database: target) == "anonymous@example.com")
    }

    @Test func sigtermDuringAHookStopsItAndDropsTheTemporaryDatabase() async throws {
        let pgclone = try PGCloneHarness()
        let (key, target) = try await pgclone.targetAndDump("hooksig")
        let marker = pgclone.directory + "/hook-started"
        let hook = "touch \(marker); sleep 300 & wait"
        async let restoring = pgclone.restore(key, into: target, ["--pre-swap-hook", hook])
        while !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!pgclone.signal(SIGTERM).isEmpty)
        let signalled = ContinuousClock.now
        let result = try await restoring
        // The hook's shell waits for its sleep: only a signal to the whole tree ends it soon.
        #expect(ContinuousClock.now - signalled < .seconds(60), "the hook outlived SIGTERM")
        #expect(result.exitCode == 128 + SIGTERM, "\(result)")
        #expect(try await pgclone.server.databases(startingWith: target) == [target])
        #expect(try await pgclone.server.psql("SELECT v FROM marker", database: target) == "old")
        // The hook's own children went with it.
        #expect(try await pgclone.processesAlive(after: .seconds(15)).isEmpty)
    }
}
