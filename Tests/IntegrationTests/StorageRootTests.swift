import Foundation
import PGCloneActors
import PGCloneTestSupport
import Testing

/// Nothing is read, written or deleted outside the storage root, and a location pgclone cannot
/// use is one line and exit 2 for every command.
@Suite(
    .serialized,
    .enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)")
)
struct StorageRootTests {
    @Test func symbolicLinksBelowTheRootAreNeverFollowed() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("linked")
        try await server.createDatabase(source)
        try await server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)", database: source)
        let key = try await pgclone.dump(source)
        let file = String(key.split(separator: "/")[1])
        // Outside the root: a directory holding a dump, and a lone dump file.
        let outside = try pgclone.makeDirectory("outside")
        try FileManager.default.copyItem(atPath: pgclone.storage + "/" + key, toPath: outside + "/" + file)
        try FileManager.default.copyItem(atPath: pgclone.storage + "/" + key, toPath: pgclone.directory + "/lone.dump")
        let manager = FileManager.default
        let victim = TestEnvironment.uniqueName("victim")
        try manager.createSymbolicLink(atPath: pgclone.storage + "/" + victim, withDestinationPath: outside)
        let linkedFile = "\(source)/20200101T000000.000000Z.default.dump"
        try manager.createSymbolicLink(
            atPath: pgclone.storage + "/" + linkedFile,
            withDestinationPath: pgclone.directory + "/lone.dump"
        )

        let listed = try await pgclone.run(["ls"])
        #expect(listed.exitCode == 0 && listed.stdout == key + "\n", "\(listed)")
        #expect(listed.stderr.contains("skipped .pgclone/\(victim): a symbolic link"), "\(listed)")
        #expect(listed.stderr.contains("skipped .pgclone/\(linkedFile): a symbolic link"), "\(listed)")

        for command in [
            ["restore", "\(victim)/\(file)", "--database", server.url(source)], ["verify", "\(victim)/\(file)"],
            ["verify", linkedFile],
        ] {
            let refused = try await pgclone.run(command)
            #expect(refused.exitCode == 2, "\(command): \(refused)")
            #expect(
                refused.errorLines.count == 1
                    && refused.errorLines[0].contains("is a symbolic link; pgclone does not follow links"),
                "\(refused)"
            )
        }
        // A dump of a database whose directory is a link is not written through it.
        try await server.createDatabase(victim)
        let dumped = try await pgclone.run(["dump", "--database", server.url(victim)])
        #expect(dumped.exitCode == 2, "\(dumped)")
        #expect(
            dumped.errorLines == [
                """
                pgclone: error: .pgclone/\(victim) is a symbolic link; pgclone does not follow links below the storage \
                location, so that nothing outside it is read, written or deleted
                """
            ]
        )

        let pruned = try await pgclone.run(["prune", "--keep-last", "0", "--confirm"])
        #expect(pruned.exitCode == 0, "\(pruned)")
        #expect(manager.fileExists(atPath: outside + "/" + file))
        #expect(manager.fileExists(atPath: pgclone.directory + "/lone.dump"))
        #expect(try manager.contentsOfDirectory(atPath: outside) == [file])
        #expect(pgclone.storedFiles() == [linkedFile])
        try await server.dropDatabase(source)
        try await server.dropDatabase(victim)
    }

    @Test func anUnusableLocationIsOneLineAndExitTwoForEveryCommand() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("unusable")
        try await server.createDatabase(source)
        let file = pgclone.directory + "/a-file"
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: file))
        let dangling = pgclone.directory + "/dangling"
        try FileManager.default.createSymbolicLink(
            atPath: dangling,
            withDestinationPath: pgclone.directory + "/nowhere"
        )
        let cases: [(String, String)] = [
            (file, "the storage location \(file) is a file, not a directory; give a directory or s3://bucket/prefix"),
            (
                "gs://bucket/dumps",
                """
                the storage location gs://bucket/dumps (PGCLONE_STORAGE_LOCATION) is a gs:// URL; pgclone stores \
                dumps in a local directory or in s3://bucket/prefix
                """
            ),
            (
                "s3://bucket/../x",
                """
                the prefix \"../x\" in s3://bucket/../x has an empty, \".\" or \"..\" segment; write the prefix as it \
                is, e.g. s3://bucket/dumps
                """
            ),
            (
                dangling,
                """
                the storage location \(dangling) is a symbolic link to something that does not exist; make its \
                target, or give another directory
                """
            ),
            (
                "s3:mybucket",
                """
                the storage location s3:mybucket (PGCLONE_STORAGE_LOCATION) is not an S3 location; write \
                s3://bucket/prefix, in lower case
                """
            ),
            (
                "S3://bucket",
                """
                the storage location S3://bucket (PGCLONE_STORAGE_LOCATION) is not an S3 location; write \
                s3://bucket/prefix, in lower case
                """
            ),
            (
                " ",
                """
                the storage location (PGCLONE_STORAGE_LOCATION) is empty or blank; give a directory or \
                s3://bucket/prefix
                """
            ),
            (
                "s3://bucket//x",
                """
                the prefix \"/x\" in s3://bucket//x has an empty, \".\" or \"..\" segment; write the prefix as it is, \
                e.g. s3://bucket/dumps
                """
            ),
            // A key and its secret (which may hold a "/") before an "@" are never shown.
            (
                "s3://AKIAX:SEC/RET9@bucket/x",
                """
                an s3:// location names no user or password (this one has one before an \"@\"): give the credentials \
                in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile, and the location as s3://bucket/prefix
                """
            ),
            (
                "S3://AKIAX:SECRET9@bucket/x",
                """
                the storage location S3://****@bucket/x (PGCLONE_STORAGE_LOCATION) is not an S3 location; write \
                s3://bucket/prefix, in lower case
                """
            ),
            (
                "https://AKIAX:SECRET9@bucket.s3.amazonaws.com/x",
                """
                the storage location https://****@bucket.s3.amazonaws.com/x (PGCLONE_STORAGE_LOCATION) is a https:// \
                URL; pgclone stores dumps in a local directory or in s3://bucket/prefix
                """
            ),
        ]
        let commands = [
            ["ls"], ["ls", source], ["dump", "--database", server.url(source)],
            ["restore", source, "--database", server.url(source)],
            ["verify", source], ["prune", "--keep-last", "1", "--confirm"],
            // These do not use the location, but refuse one that cannot be used all the same.
            ["copy", ":\(source)_snap", "--database", server.url(source)],
            ["ls", "--local", "--database", server.url(source)],
        ]
        for (location, message) in cases {
            for command in commands {
                let result = try await pgclone.run(command, environment: ["PGCLONE_STORAGE_LOCATION": location])
                #expect(result.exitCode == 2, "\(location) \(command): \(result)")
                #expect(result.errorLines == ["pgclone: error: \(message)"], "\(location) \(command): \(result)")
                #expect(result.stdout.isEmpty)
            }
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "not a directory")
        #expect(try await server.databases(startingWith: source) == [source])
        #expect(!FileManager.default.fileExists(atPath: pgclone.directory + "/nowhere"))
        try await server.dropDatabase(source)
    }
}
