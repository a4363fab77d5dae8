import Foundation
import PGCloneTestSupport
import Testing

/// Settings resolution, guards and usage errors, through the binary. None of these needs a server:
/// each fails (or lists) before connecting.
@Suite struct SettingsTests {
    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func flagsBeatEnvironmentBeatConfigFile() async throws {
        let pgclone = try PGCloneHarness.offline()
        for place in ["fromfile", "fromenv", "fromflag"] {
            try FileManager.default.createDirectory(
                atPath: "\(pgclone.directory)/\(place)/db",
                withIntermediateDirectories: true
            )
            try write("x", to: "\(pgclone.directory)/\(place)/db/20240101T000000.000000Z.\(place).dump")
        }
        try write("storage_location: fromfile\n", to: "\(pgclone.directory)/pgclone.yaml")
        let file = try await pgclone.run(["ls"])
        #expect(file.stdout == "db/20240101T000000.000000Z.fromfile.dump\n", "\(file)")
        let env = try await pgclone.run(["ls"], environment: ["PGCLONE_STORAGE_LOCATION": "fromenv"])
        #expect(env.stdout == "db/20240101T000000.000000Z.fromenv.dump\n", "\(env)")
        let flag = try await pgclone.run(
            ["ls", "--storage-location", "fromflag"],
            environment: ["PGCLONE_STORAGE_LOCATION": "fromenv"]
        )
        #expect(flag.stdout == "db/20240101T000000.000000Z.fromflag.dump\n", "\(flag)")

        // `~/` is the home directory, as in a shell; YAML's null is no location (not "null").
        try write("storage_location: ~/fromfile\n", to: "\(pgclone.directory)/pgclone.yaml")
        let home = try await pgclone.run(["ls"], environment: ["HOME": pgclone.directory])
        #expect(home.stdout == "db/20240101T000000.000000Z.fromfile.dump\n", "\(home)")
        for null in ["~", "null", ""] {
            try write("storage_location: \(null)\n", to: "\(pgclone.directory)/pgclone.yaml")
            let refused = try await pgclone.run(["ls"])
            #expect(refused.exitCode == 2, "\(refused)")
            #expect(
                refused.errorLines == [
                    """
                    pgclone: error: pgclone.yaml: storage_location has no value (\(null.isEmpty ? "empty" : null) is \
                    YAML's null); write one, or leave the key out
                    """
                ],
                "\(refused)"
            )
        }
    }

    @Test func guardsRefuseWithExitCode3() async throws {
        let pgclone = try PGCloneHarness.offline()
        try write("allow_restore: false\nallow_dump: no\n", to: "\(pgclone.directory)/pgclone.yaml")
        let restore = try await pgclone.run(["restore", "somedb"])
        #expect(restore.exitCode == 3)
        #expect(
            restore.stderr
                == """
                pgclone: error: restores are disabled here (allow_restore in pgclone.yaml is false); nothing was \
                done\n
                """
        )
        let dump = try await pgclone.run(["dump"])
        #expect(dump.exitCode == 3)
        #expect(
            dump.errorLines == [
                "pgclone: error: dumps are disabled here (allow_dump in pgclone.yaml is false); nothing was done"
            ]
        )
        // The environment overrides the file.
        let env = try await pgclone.run(["dump"], environment: ["PGCLONE_ALLOW_DUMP": "0"])
        #expect(env.errorLines == ["pgclone: error: dumps are disabled here (PGCLONE_ALLOW_DUMP=0); nothing was done"])
    }

    @Test(arguments: [
        (["frobnicate"], [String: String](), "pgclone: error: Unexpected argument 'frobnicate' (see pgclone --help)"),
        (["restore"], [:], "pgclone: error: Missing expected argument '<source>' (see pgclone --help)"),
        // Settings libpq cannot read are said so, with libpq's reason, not taken for no database.
        (
            ["restore", "db", "--database", "service=nosuch dbname=x"],
            ["PGSERVICEFILE": "/nonexistent/pg_service.conf"],
            """
            pgclone: error: cannot read the connection settings: service file "/nonexistent/pg_service.conf" not \
            found; check --database (or DATABASE_URL), PGSERVICE and PGSERVICEFILE
            """
        ),
        (
            ["copy", ":snap", "--database", "service=nosuch"],
            ["PGSERVICEFILE": "/nonexistent/pg_service.conf"],
            """
            pgclone: error: cannot read the connection settings: service file "/nonexistent/pg_service.conf" not \
            found; check --database (or DATABASE_URL), PGSERVICE and PGSERVICEFILE
            """
        ),
        (
            ["ls", "--memory-limit", "lots"], [:],
            "pgclone: error: --memory-limit \"lots\" is not a size; write it like 64MiB, 512MiB or 1GiB"
        ),
        (
            ["ls"], ["PGCLONE_MEMORY_LIMIT": "8MiB"],
            "pgclone: error: the memory limit 8 MiB is too small; pgclone needs at least 16 MiB"
        ),
        (
            ["ls"], ["PGCLONE_ALLOW_DUMP": "maybe"],
            "pgclone: error: PGCLONE_ALLOW_DUMP must be true or false (it is \"maybe\")"
        ),
        (
            ["dump", "--compression-level", "20"], [:],
            "pgclone: error: --compression-level \"20\" is not a zstd level; give a whole number from 1 to 19"
        ),
        (
            ["dump"], ["PGCLONE_COMPRESSION_LEVEL": "12"],
            """
            pgclone: error: PGCLONE_COMPRESSION_LEVEL 12 needs 49.5 MiB for zstd's tables, more than the 16 MiB a \
            memory limit of 64 MiB allows; choose a level of at most 9 or a memory limit of 256MiB
            """
        ),
        (
            ["ls", "--log-level", "loud"], [:],
            "pgclone: error: --log-level must be one of trace, debug, info, notice, warning, error (it is \"loud\")"
        ),
        (["ls", "--config-file", "nope.yaml"], [:], "pgclone: error: the config file nope.yaml does not exist"),
        (
            ["ls", "--config-file", "."], [:],
            "pgclone: error: the config file . is a directory; give the path of a YAML file such as pgclone.yaml"
        ),
        (
            ["restore", "db", "--wait=-5s"], [:],
            "pgclone: error: --wait takes a duration like 30s, 10m or 2h (it is \"-5s\")"
        ),
        (
            ["restore", "db", "--jobs", "-1"], [:],
            """
            pgclone: error: --jobs takes a number of parallel sessions, 1 or more (it is -1) (see pgclone \
            --help)
            """
        ),
        (
            ["ls", "--memory-limit", "-5MiB"], [:],
            "pgclone: error: --memory-limit \"-5MiB\" is not a size; write it like 64MiB, 512MiB or 1GiB"
        ),
        (
            ["ls", "--storage-location", "/etc/hostname"], [:],
            """
            pgclone: error: the storage location /etc/hostname is a file, not a directory; give a directory or \
            s3://bucket/prefix
            """
        ),
        (
            ["dump"], ["DATABASE_URL": "postgresql+psycopg2://app:hunter2@db.example/shop"],
            """
            pgclone: error: the connection string in DATABASE_URL is a postgresql+psycopg2:// URL, which libpq \
            does not read; write it as postgresql://user@host:5432/dbname
            """
        ),
        (
            ["dump", "--database", "postgresql://app:Sup3r%zzSecret@db.example/shop"], [:],
            """
            pgclone: error: invalid connection string in --database: invalid percent-encoded token: \"****\"; \
            give a postgresql:// URI or key=value pairs
            """
        ),
        (
            ["ls", ""], [:],
            "pgclone: error: the database name is empty; give one, or none for every database (see pgclone --help)"
        ),
        (
            ["prune", "", "--keep-last", "0"], [:],
            "pgclone: error: the database name is empty; give one, or none for every database (see pgclone --help)"
        ),
        (
            ["ls", "--dump-config", ""], [:],
            "pgclone: error: --dump-config takes the name of a dump config (see pgclone --help)"
        ),
        (
            ["prune", "--dump-config", "", "--keep-last", "0"], [:],
            "pgclone: error: --dump-config takes the name of a dump config (see pgclone --help)"
        ),
        (
            ["restore", "db", "--dump-config", ""], [:],
            "pgclone: error: --dump-config takes the name of a dump config (see pgclone --help)"
        ),
        (
            ["restore", ":db", "--dump-config", "anon"], [:],
            """
            pgclone: error: --dump-config picks among a database's dumps; :db is a database on the server (see \
            pgclone --help)
            """
        ),
        (
            ["verify", "db/20261126T075200.123456Z.default.dump", "--dump-config", "anon"], [:],
            """
            pgclone: error: --dump-config picks among a database's dumps; db/20261126T075200.123456Z.default.dump is \
            a dump key (see pgclone --help)
            """
        ),
        (
            ["dump", "--config", ""], [:],
            "pgclone: error: --config takes the name of a dump config (see pgclone --help)"
        ),
        (
            ["restore", "db/notakey.dump"], [:],
            """
            pgclone: error: \"db/notakey.dump\" is not a dump key; keys look like \
            mydb/20261126T075200.123456Z.default.dump, or django-pgclone's (see `pgclone ls`)
            """
        ),
        (
            ["dump", "--database", "host=localhost port=x port"], [:],
            """
            pgclone: error: invalid connection string in --database: missing \"=\" after \"port\" in connection info \
            string; give a postgresql:// URI or key=value pairs
            """
        ),
        (
            ["ls", "--local", "--maintenance-db", ""], [:],
            """
            pgclone: error: --maintenance-db is empty; name a database, or leave it out to connect to postgres, else \
            template1
            """
        ),
        (
            ["restore", "db"], ["PGCLONE_MAINTENANCE_DB": " "],
            """
            pgclone: error: PGCLONE_MAINTENANCE_DB is empty; name a database, or leave it out to connect to postgres, \
            else template1
            """
        ),
        (
            ["ls", "--maintenance-db", "admin"], [:],
            """
            pgclone: error: --maintenance-db is where ls --local connects; without --local, ls reads only the storage \
            location (see pgclone --help)
            """
        ),
    ])
    func usageErrorsExitWith2AndOneLine(arguments: [String], environment: [String: String], line: String) async throws {
        let pgclone = try PGCloneHarness.offline()
        let result = try await pgclone.run(arguments, environment: environment)
        #expect(result.exitCode == 2, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == line + "\n")
    }

    @Test func unknownConfigKeysAreErrors() async throws {
        let pgclone = try PGCloneHarness.offline()
        try write("storage_locaton: typo\n", to: "\(pgclone.directory)/pgclone.yaml")
        let result = try await pgclone.run(["ls"])
        #expect(result.exitCode == 2)
        #expect(
            result.stderr.hasPrefix(
                "pgclone: error: pgclone.yaml: unknown setting \"storage_locaton\"; the settings are "
            )
        )
    }

    @Test func helpAndVersionExitZero() async throws {
        let pgclone = try PGCloneHarness.offline()
        let help = try await pgclone.run(["--help"])
        #expect(help.exitCode == 0)
        #expect(help.stdout.contains("USAGE: pgclone <subcommand>"))
        // A subcommand's help is its own, however it is asked for.
        for arguments in [["dump", "--help"], ["help", "restore"], ["ls", "-h"]] {
            let result = try await pgclone.run(arguments)
            #expect(result.exitCode == 0, "\(result)")
            #expect(
                result.stdout.contains("USAGE: pgclone \(arguments.contains("help") ? arguments[1] : arguments[0])"),
                "\(result)"
            )
        }
        let version = try await pgclone.run(["--version"])
        #expect(version.exitCode == 0)
        #expect(version.stdout == "pgclone 0.1.0\n")
    }

    @Test func jsonLogsAreOneObjectPerLineToTheEnd() async throws {
        let pgclone = try PGCloneHarness.offline()
        let result = try await pgclone.run(
            ["dump", "--database", pgclone.server.url("app"), "--log-format", "json", "--log-level", "debug"]
        )
        #expect(result.exitCode == 1, "\(result)")
        let records = try result.stderrLines.map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
        }
        #expect(records.count >= 2, "\(result)")
        #expect(
            records.allSatisfy {
                ($0["time"] as? String)?.hasSuffix("Z") == true && $0["level"] is String && $0["message"] is String
            }
        )
        let last = try #require(records.last)
        #expect(last["level"] as? String == "error")
        #expect(
            (last["message"] as? String)?.hasPrefix("cannot connect to database \"app\" to dump it: ") == true,
            "\(result)"
        )
    }
}
