import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Archives placed as django-pgclone 1.x and 2+ wrote them (`pg_dump -Fc`, gzip-compressed, no
/// pgclone metadata) are listed, restored by key and by name, verified, and left alone by prune
/// unless it is asked.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct ForeignLayoutTests {
    @Test(arguments: SeriesTests.Location.allCases)
    func djangoPgclonesLayoutsAreRead(_ location: SeriesTests.Location) async throws {
        let (pgclone, environment) = try await SeriesTests.setUp(location)
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("django")
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (0)", database: source)
        let older = "\(source)/2019_01_02_03_04_05_000006.default.dump"
        let first = "\(source)/2020_01_02_03_04_05_000006.default.dump"
        // 2+ names the Django alias, not the database: its archive's header says which it is.
        let second = "web-1/default/none/2021-01-02-03-04-05-000006.dump"
        // Another instance's dump of the same database: a series of its own.
        let otherInstance = "web-2/default/none/2020-12-31-00-00-00-000001.dump"
        for (value, key) in [(0, older), (1, first), (2, second), (2, otherInstance)] {
            try await server.psql("UPDATE t SET v = \(value)", database: source)
            try await Self.place(pgDumpOf: source, as: key, pgclone, environment)
        }
        // What a django-pgclone killed mid-way left (it streamed pg_dump into the key): no dump.
        let empty = "web-9/default/none/2030-01-01-00-00-00-000000.dump"
        try await Self.place(Data(), as: empty, pgclone, environment)

        let listed = try await pgclone.run(["ls", "--json"], environment: environment)
        let entries = try JSONDecoder().decode([[String: JSONValue]].self, from: Data(listed.stdout.utf8))
        #expect(entries.map { $0["key"]?.string } == [empty, second, otherInstance, first, older], "\(listed)")
        #expect(entries.map { $0["database"]?.string } == [nil, source, source, source, source])
        #expect(entries.map { $0["config"]?.string } == ["none", "none", "none", "default", "default"])
        #expect(
            entries.map { $0["layout"]?.string } == [
                "django-pgclone-2", "django-pgclone-2", "django-pgclone-2", "django-pgclone-1", "django-pgclone-1",
            ]
        )
        #expect(entries.map { $0["created_at"]?.string }[1] == "2021-01-02T03:04:05.000006Z")
        let names = try await pgclone.run(["ls", "--only-db-names"], environment: environment)
        #expect(names.stdout == source + "\n", "\(names)")

        let target = TestEnvironment.uniqueName("django_target")
        for (source, value) in [(first, "1"), (second, "2"), (source, "2")] {
            let restored = try await SeriesTests.restore(source, into: target, pgclone, environment)
            #expect(restored.exitCode == 0, "\(restored)")
            #expect(try await server.psql("SELECT v FROM t", database: target) == value, "\(source)")
        }
        for key in [first, second] {
            let verified = try await pgclone.run(["verify", key], environment: environment)
            #expect(
                verified.exitCode == 0 && verified.stdout.hasPrefix("\(key): OK (custom-format archive"),
                "\(verified)"
            )
        }
        // The newest across both tools: pgclone's own dump, made now.
        try await server.psql("UPDATE t SET v = 3", database: source)
        let ours = try await SeriesTests.dump(source, pgclone, environment)
        let newest = try await SeriesTests.restore(source, into: target, pgclone, environment)
        #expect(newest.stdout == ours + "\n", "\(newest)")
        #expect(newest.stderr.contains("passed over \(empty): it is not a dump (it is empty)"), "\(newest)")
        #expect(try await server.psql("SELECT v FROM t", database: target) == "3")

        let left = try await pgclone.run(
            ["prune", "--keep-last", "0", "--confirm", "--json"],
            environment: environment
        )
        #expect(left.stdout.contains("\"deleted\":[\"\(ours)\"]"), "\(left)")
        let asked = try await pgclone.run(
            ["prune", "--keep-last", "1", "--include-django-pgclone", "--confirm", "--json"],
            environment: environment
        )
        #expect(asked.stdout.contains("\"deleted\":[\"\(older)\"]"), "\(asked)")
        #expect(asked.stderr.contains("left \(empty) alone: it is not a dump (it is empty)"), "\(asked)")
        let remaining = try await pgclone.run(["ls"], environment: environment)
        #expect(SeriesTests.lines(remaining.stdout) == [empty, second, otherInstance, first], "\(remaining)")
        for name in [target, source] { try await server.dropDatabase(name) }
    }

    /// `pg_dump -Fc` of `database` (gzip-compressed, as django-pgclone ran it), stored under `key`.
    static func place(
        pgDumpOf database: String,
        as key: String,
        _ pgclone: PGCloneHarness,
        _ environment: [String: String?]
    ) async throws {
        let file = pgclone.directory + "/archive.dump"
        let dumped = try await runCommand(
            "pg_dump",
            ["-Fc", "--no-acl", "--no-owner", "-f", file, "-d", database],
            environment: pgclone.server.environment()
        )
        guard dumped.exitCode == 0 else { throw TestSetupError("pg_dump failed: \(dumped.stderr)") }
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await place(try Data(contentsOf: URL(fileURLWithPath: file)), as: key, pgclone, environment)
    }

    /// `bytes` stored under `key`, in the directory or the bucket.
    static func place(
        _ bytes: Data,
        as key: String,
        _ pgclone: PGCloneHarness,
        _ environment: [String: String?]
    ) async throws {
        let file = pgclone.directory + "/object"
        try bytes.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard let location = environment["PGCLONE_STORAGE_LOCATION"] ?? nil else {
            return try pgclone.store(bytes, as: key)
        }
        let (bucket, prefix) = try #require(SeriesTests.bucketAndPrefix(location))
        try await S3TestServer.shared!.boto3("s3.upload_file(\"\(file)\", \"\(bucket)\", \"\(prefix)\(key)\")")
    }
}
