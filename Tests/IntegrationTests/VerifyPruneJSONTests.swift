import Foundation
import PGCloneActors
import PGCloneStreams
import PGCloneTestSupport
import Testing

/// `verify`, `prune` and `--json`: what scripts and people rely on around dumps.
@Suite(.enabled(if: TestEnvironment.hasPostgres, "run with scripts/test.sh (needs PGCLONE_TEST_POSTGRES_URL)"))
struct VerifyPruneJSONTests {
    private func object(_ result: CommandResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result)")
    }

    @Test func dumpAndRestoreReportAsJSON() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("json_src")
        let target = TestEnvironment.uniqueName("json_dst")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) FROM generate_series(1, 5000) AS i",
            database: source
        )
        let dumped = try object(try await pgclone.run(["dump", "--database", server.url(source), "--json"]))
        let key = try #require(dumped["key"] as? String)
        #expect(key.hasPrefix("\(source)/"))
        #expect(dumped["database"] as? String == source)
        #expect(dumped["config"] as? String == "default")
        let stored = try #require(dumped["stored_bytes"] as? Int)
        #expect(stored > 0 && (dumped["archive_bytes"] as? Int ?? 0) > stored)
        #expect((dumped["phases"] as? [String: Double])?["dump"] != nil)
        #expect(
            stored == (try FileManager.default.attributesOfItem(atPath: pgclone.storage + "/" + key)[.size] as? Int)
        )

        try await server.createDatabase(target)
        let restored = try object(try await pgclone.restore(key, into: target, ["--json"]))
        #expect(restored["source"] as? String == key)
        #expect(restored["database"] as? String == target)
        #expect(restored["restore_errors"] as? Int == 0)
        #expect((restored["errors"] as? [Any])?.isEmpty == true)
        let swap = try #require(restored["swap"] as? [String: Any])
        #expect(swap["replaced_existing"] as? Bool == true)
        #expect((swap["unavailable_seconds"] as? Double ?? -1) >= 0)
        let phases = try #require(restored["phases"] as? [String: Double])
        #expect(Set(phases.keys).isSuperset(of: ["lock_wait", "prepare", "restore", "settings", "swap", "cleanup"]))
        // The archive's size, however it was restored (in pieces it counted the table data only).
        let archiveBytes = try #require(dumped["archive_bytes"] as? Int)
        #expect(restored["archive_bytes"] as? Int == archiveBytes)
        let inPieces = try object(try await pgclone.restore(key, into: target, ["--json", "--jobs", "2"]))
        #expect(inPieces["archive_bytes"] as? Int == archiveBytes, "\(inPieces)")
    }

    @Test func verifyPassesGoodDumpsAndFailsDamagedOnes() async throws {
        let pgclone = try PGCloneHarness()
        let server = pgclone.server
        let source = TestEnvironment.uniqueName("verify")
        try await server.createDatabase(source)
        try await server.psql(
            "CREATE TABLE t AS SELECT i, md5(i::text) FROM generate_series(1, 20000) AS i",
            database: source
        )
        let key = try await pgclone.dump(source)
        let good = try await pgclone.run(["verify", key])
        #expect(good.exitCode == 0, "\(good)")
        let local = try await pgclone.run(["verify", ":\(source)"])
        #expect(local.exitCode == 2, "\(local)")
        #expect(
            local.errorLines == [
                "pgclone: error: verify checks dumps in storage; :\(source) is a database on the server"
            ]
        )
        #expect(good.stdout.hasPrefix("\(key): OK (zstd, "), "\(good)")
        #expect(good.stdout.contains("pgclone 0.1.0, PostgreSQL 15"))
        // django-pgclone's and plain pg_dump's archives verify too.
        let plainKey = "\(source)/20200101T000000.000000Z.plain.dump"
        let plain = try await runCommand(
            "pg_dump",
            ["-Fc", "-f", "\(pgclone.storage)/\(plainKey)", source],
            environment: server.environment()
        )
        #expect(plain.exitCode == 0)
        #expect(
            try await pgclone.run(["verify", plainKey]).stdout.hasPrefix("\(plainKey): OK (custom-format archive, ")
        )

        // A byte of the last zstd frame's checksum, just before the index's frame.
        var flipped = try pgclone.storedData(key)
        let indexLength = try #require(try ArchiveIndexTests.index(of: [UInt8](flipped))).skippableFrame().count
        flipped[flipped.count - indexLength - 3] ^= 0x01
        let flippedKey = "\(source)/20210101T000000.000000Z.flipped.dump"
        try pgclone.store(flipped, as: flippedKey)
        let original = try pgclone.storedData(key)
        let truncatedKey = "\(source)/20210101T000000.000000Z.truncated.dump"
        try pgclone.store(original.prefix(original.count / 2), as: truncatedKey)
        let junkKey = "\(source)/20210101T000000.000000Z.junk.dump"
        try pgclone.store(Data("just some text\n".utf8), as: junkKey)
        // A byte of the index's JSON.
        var badIndex = original
        badIndex[badIndex.count - indexLength + 10] ^= 0x20
        let badIndexKey = "\(source)/20210101T000000.000000Z.badindex.dump"
        try pgclone.store(badIndex, as: badIndexKey)
        for (damaged, line) in [
            (flippedKey, "is corrupt (restored data doesn't match checksum)"),
            (truncatedKey, "is truncated: its zstd stream ends in the middle of a frame"),
            (
                junkKey,
                "is not a pgclone dump or a pg_dump custom-format archive: it is text beginning \"just some text\""
            ),
            (badIndexKey, "has a damaged index: its JSON does not read as an index"),
        ] {
            let result = try await pgclone.run(["verify", damaged])
            #expect(result.exitCode == 1, "\(result)")
            #expect(result.stdout.isEmpty)
            #expect(result.errorLines == ["pgclone: error: the dump \(damaged) \(line)"], "\(result)")
        }
    }

    /// Dumps of one database over six weeks, newest first, and the keys a policy keeps.
    static let keys = [
        "20261120T100000.000000Z", "20261120T090000.000000Z", "20261119T100000.000000Z", "20261118T100000.000000Z",
        "20261110T100000.000000Z", "20261101T100000.000000Z", "20261001T100000.000000Z",
    ].map { "p/\($0).default.dump" }
    /// Last 2, daily 3 (20, 19, 18 Nov) and weekly 3 (ISO weeks 47, 46, 44): all but 1 Oct.
    static let kept = Array(keys.prefix(6))

    @Test func pruneKeepsExactlyWhatThePolicySaysOnLocalStorage() async throws {
        let pgclone = try PGCloneHarness.offline()
        // Enough of a dump for prune, which reads what every object it would delete is.
        for key in Self.keys { try pgclone.store(Data("PGDMP".utf8), as: key) }
        let foreign = ["p/notes.txt", "p/.20200101T000000.000000Z.default.dump.1.partial", "other/readme"]
        for path in foreign { try pgclone.store(Data("keep me".utf8), as: path) }
        let arguments = ["prune", "--keep-last", "2", "--keep-daily", "3", "--keep-weekly", "3"]

        let dryRun = try await pgclone.run(arguments)
        #expect(dryRun.exitCode == 0, "\(dryRun)")
        #expect(dryRun.stdout == "would delete p/20261001T100000.000000Z.default.dump\n")
        #expect(pgclone.storedFiles().count == Self.keys.count + foreign.count)

        let confirmed = try await pgclone.run(arguments + ["--confirm", "--json"])
        let json = try object(confirmed)
        #expect(json["deleted"] as? [String] == ["p/20261001T100000.000000Z.default.dump"])
        #expect(json["kept"] as? [String] == Self.kept)
        #expect(json["dry_run"] as? Bool == false)
        // The partial file no running pgclone holds goes too, the others stay.
        #expect(pgclone.storedFiles() == (Self.kept + foreign.filter { !$0.hasSuffix(".partial") }).sorted())

        // Age alone: everything older than the cutoff goes — here, a cutoff early on 5 or 6 November.
        let days = Int(Date().timeIntervalSince1970 - 1_793_836_800) / 86_400  // whole days since 2026-11-05T00:00Z
        let aged = try await pgclone.run(["prune", "--older-than", "\(days)d", "--confirm"])
        #expect(aged.exitCode == 0, "\(aged)")
        #expect(aged.stdout == "deleted p/20261101T100000.000000Z.default.dump\n", "\(aged)")
        // Age alone keeps the newest dump, however old: dumps that stopped are no reason to lose
        // the last one. --keep-last 0 says to.
        let all = try await pgclone.run(["prune", "--older-than", "1s", "--confirm", "--json"])
        #expect(try object(all)["kept"] as? [String] == [Self.keys[0]], "\(all)")
        #expect(pgclone.storedFiles().filter { $0.hasSuffix(".dump") } == [Self.keys[0]])
        // A number without a unit is refused: seconds would delete everything a day count spares.
        let before = pgclone.storedFiles()
        let bare = try await pgclone.run(["prune", "--older-than", "30", "--confirm"])
        #expect(bare.exitCode == 2, "\(bare)")
        #expect(
            bare.errorLines == [
                "pgclone: error: --older-than 30 has no unit: write 30d for days (or 30h, 30m, 30s)"
            ],
            "\(bare)"
        )
        #expect(pgclone.storedFiles() == before)
        // A negative count is a wrong value, not a missing one.
        let negative = try await pgclone.run(["prune", "--keep-last", "-1"])
        #expect(
            negative.errorLines == ["pgclone: error: --keep-last takes a number of dumps (it is -1)"],
            "\(negative)"
        )
        let refused = try await pgclone.run(["prune"])
        #expect(refused.exitCode == 2)
        #expect(
            refused.errorLines == [
                """
                pgclone: error: say what to keep: --keep-last, --keep-daily, --keep-weekly and/or --older-than; \
                nothing \
                was deleted
                """
            ]
        )
    }

    @Test(.enabled(if: TestEnvironment.hasPostgresAndS3, "needs moto"))
    func pruneOnS3LeavesForeignObjectsAlone() async throws {
        let s3 = try #require(S3TestServer.shared)
        let pgclone = try PGCloneHarness.offline()
        let bucket = try await s3.makeBucket()
        let foreign = ["dumps/p/notes.txt", "dumps/readme.md", "elsewhere/p/20200101T000000.000000Z.default.dump"]
        let all = Self.keys.map { "dumps/\($0)" } + foreign
        try await s3.boto3("for key in \(all): s3.put_object(Bucket=\"\(bucket)\", Key=key, Body=b\"PGDMP\")")
        let result = try await pgclone.run(
            ["prune", "--keep-last", "2", "--keep-daily", "3", "--keep-weekly", "3", "--confirm"],
            environment: s3.environment(location: "s3://\(bucket)/dumps")
        )
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout == "deleted p/20261001T100000.000000Z.default.dump\n")
        #expect(try await s3.keys(bucket).sorted() == (Self.kept.map { "dumps/\($0)" } + foreign).sorted())
    }
}
